//! Golden files: what replag shows people and programs — `/metrics`,
//! `/api/v1/status`, `/gate` JSON, the status page and `replag check` —
//! for one fixed state of a multi-region fleet, byte for byte.
//!
//! The state is built from real server replies (the fuzz seeds, captured
//! from PostgreSQL, Redis and SeaweedFS) fed to the engine at fixed moments,
//! so nothing depends on timing. A change to any output shows here as a
//! diff; when it is meant, `REPLAG_BLESS=1 cargo test --test it golden::` writes
//! the new files (review them like code).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use std::sync::Arc;

use replag::config::{load_from, Source};
use replag::engine::Engine;
use replag::gate::memory::{Memory, Tracked};
use replag::http::InForce;
use replag::model::{FailureKind, PollFailure, Sampled};
use replag::poller::NodeReport;
use replag::systems::{postgres, redis, seaweedfs, Observation};

const CONFIG: &str = r#"
[poll]
interval = "1s"

[[regions.us-east.postgres]]
name = "pg-us-east"
url = "postgresql://monitor@pg-us-east-1.internal:5432/postgres"

[[regions.eu-west.postgres]]
name = "pg-eu-west"
url = "postgresql://monitor@pg-eu-west-1.internal:5432/postgres"

[[regions.ap-south.postgres]]
name = "pg-ap-south"
url = "postgresql://monitor@pg-ap-south-1.internal:5432/postgres"
upstream = "pg-us-east"

[[regions.us-east.redis]]
name = "redis-us-east"
url = "redis://10.0.0.5:6379"

[[regions.eu-west.redis]]
name = "redis-eu-west"
url = "redis://10.0.1.12:6379"

[[regions.us-east.seaweedfs]]
name = "weed-us-east"
url = "http://127.0.0.1:19333"

[heartbeat]
writer = "golden"

[[regions.us-east.seaweedfs]]
name = "filer-us-east"
url = "http://127.0.0.1:18888"
role = "filer"
heartbeat = true

[[regions.eu-west.seaweedfs]]
name = "filer-eu-west"
url = "http://127.0.0.1:18988"
role = "filer"
heartbeat = true

[[regions.us-east.seaweedfs]]
name = "filer-sync"
url = "http://127.0.0.1:19327"
role = "filer_sync"
filer_a = "filer-us-east"
filer_b = "filer-eu-west"
active_passive = true

[gates.deploy]
max_lag = "500ms"
for = "10s"
"#;

fn seed(path: &str) -> Vec<u8> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn pg(path: &str) -> Observation {
    let text = String::from_utf8(seed(path)).unwrap();
    Observation::Postgres(postgres::decode(&text).unwrap())
}

fn redis(path: &str) -> Observation {
    let text = String::from_utf8(seed(path)).unwrap();
    let mut parts = text.splitn(3, '\0');
    let (replication, server, stats) =
        (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    Observation::Redis(redis::decode(replication, server, stats).unwrap())
}

fn seaweed(path: &str) -> Observation {
    let data = seed(path);
    let mut parts = data.splitn(3, |&b| b == 0);
    let cluster = parts.next().unwrap();
    let rest = parts.next().map(|dir| (dir, parts.next().unwrap_or(&[])));
    Observation::Seaweedfs(seaweedfs::decode(cluster, rest).unwrap().into())
}

/// filer.sync's `/metrics` with `received` events taken in so far.
fn filer_sync(received: u64) -> Observation {
    let text = String::from_utf8(seed("seaweedfs_json/filer_sync_metrics.txt")).unwrap();
    let mut sync = seaweedfs::decode_filer_sync(text.as_bytes()).unwrap();
    sync.directions[0].events_received = received;
    Observation::Seaweedfs(seaweedfs::SeaweedObservation::FilerSync(sync))
}

/// A filer that wrote heartbeat `written` (as `name`) and holds `seen`.
fn filer(name: &str, written: u64, seen: &[(&str, u64)]) -> Observation {
    let (version, _) = seaweedfs::decode_listing(&seed("seaweedfs_json/filer_listing.json")).unwrap();
    let heartbeats = replag::model::Heartbeats {
        written: Some((name.to_string(), written)),
        seen: seen.iter().map(|(source, seq)| (source.to_string(), *seq)).collect(),
    };
    Observation::Seaweedfs(seaweedfs::SeaweedObservation::Filer(seaweedfs::FilerObservation { version, heartbeats }))
}

/// Unix time of the fixed wall clock the state is observed at.
const WALL: u64 = 1_800_000_000;

fn wall(offset_ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(WALL) + Duration::from_millis(offset_ms)
}

struct State {
    /// The snapshot and the gates' memory of it.
    tracked: Tracked,
    gates: InForce,
    /// The monotonic moment of the snapshot.
    now: Instant,
}

/// Three polls a second apart: the PostgreSQL primary and the Redis master
/// write, the standby replays behind, the Redis replica is caught up, one
/// PostgreSQL node refuses its password; filer.sync's backlog grows by an
/// event a second and the eu-west filer holds only the first us-east
/// heartbeat.
fn state() -> State {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("replag.toml");
    std::fs::write(&file, CONFIG).unwrap();
    let config = load_from(Source::File(&file), &Default::default()).unwrap();
    let mut engine = Engine::new(config.nodes.clone(), wall(0));
    let t0 = Instant::now();
    let node = |name: &str| config.nodes.iter().position(|n| n.name == name).unwrap();
    for round in 0..3u64 {
        let at = t0 + Duration::from_secs(round);
        let mut report = |node: usize, result: Result<Observation, PollFailure>| {
            engine.ingest(NodeReport {
                node,
                finished: at,
                finished_wall: wall(round * 1000),
                duration: Duration::from_millis(2 + node as u64),
                result: result.map(|observation| Sampled { at, observation }),
            })
        };
        // The primary moves 4 KiB a second from the standby's replay position.
        let mut primary = pg("postgres_json/primary.json");
        if let Observation::Postgres(p) = &mut primary {
            p.current_lsn = Some(postgres::Lsn(0x16_B374_D000 + 4096 * round));
            p.timeline = Some(2);
        }
        report(node("pg-us-east"), Ok(primary));
        let mut standby = pg("postgres_json/standby.json");
        if let Observation::Postgres(s) = &mut standby {
            s.replay_lsn = Some(postgres::Lsn(0x16_B374_D000 + 2048 * round));
        }
        report(node("pg-eu-west"), Ok(standby));
        report(
            node("pg-ap-south"),
            Err(PollFailure::new(FailureKind::Auth, "password authentication failed for user \"monitor\"")),
        );
        report(node("redis-us-east"), Ok(redis("redis_info/master.txt")));
        report(node("redis-eu-west"), Ok(redis("redis_info/replica.txt")));
        report(node("weed-us-east"), Ok(seaweed("seaweedfs_json/leader.bin")));
        report(node("filer-sync"), Ok(filer_sync(5 + round)));
        report(node("filer-us-east"), Ok(filer("filer-us-east", 100 + round, &[("filer-us-east", 100 + round)])));
        let previous = (100 + round).saturating_sub(2).max(100);
        report(node("filer-eu-west"), Ok(filer("filer-eu-west", 200 + round, &[("filer-us-east", previous)])));
    }
    let now = t0 + Duration::from_secs(2);
    let snapshot = Arc::new(engine.snapshot(now, wall(2000)));
    let tracks = Memory::default().observe(&snapshot);
    State { tracked: Tracked { snapshot, tracks }, gates: InForce::of(&config, None), now }
}

/// Lines that differ from build to build.
fn normalise(text: &str) -> String {
    let revision = replag::http::metrics::build_revision();
    text.replace(&format!("revision=\"{revision}\""), "revision=\"REVISION\"")
        .replace(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")), "version=\"VERSION\"")
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("REPLAG_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (REPLAG_BLESS=1 writes it)", path.display()));
    if expected != actual {
        let first = expected.lines().zip(actual.lines()).position(|(a, b)| a != b);
        let line = first.unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from tests/golden/{name} at line {}:\n  expected: {:?}\n  actual:   {:?}\n\
             (REPLAG_BLESS=1 cargo test --test it golden:: rewrites it once the change is meant)",
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

#[test]
fn metrics_text() {
    let s = state();
    golden("metrics.txt", &normalise(&replag::http::metrics::render(&s.tracked, &s.gates)));
}

#[test]
fn status_api_json() {
    let s = state();
    let json = serde_json::to_string_pretty(&*s.tracked.snapshot).unwrap();
    golden("status.json", &format!("{json}\n"));
}

#[test]
fn gate_json() {
    let s = state();
    let mut out = String::new();
    let evaluated = wall(2500);
    for (name, spec) in &s.gates.named {
        let verdict = replag::gate::evaluate(spec, &s.tracked.snapshot, &s.tracked.tracks, s.now, evaluated);
        out += &format!("# /gate/{name}\n{}\n", serde_json::to_string_pretty(&verdict).unwrap());
    }
    for query in ["max_lag=1s&max_lag_bytes=1MiB&for=0s&system=postgres", "max_lag=10s&system=redis", "kind=volume"] {
        let spec = replag::gate::GateSpec::from_query(query, s.gates.default_max_data_age).unwrap();
        let verdict = replag::gate::evaluate(&spec, &s.tracked.snapshot, &s.tracked.tracks, s.now, evaluated);
        out += &format!("# /gate?{query}\n{}\n", serde_json::to_string_pretty(&verdict).unwrap());
    }
    golden("gate.json", &out);
}

#[test]
fn check_report() {
    golden("check.txt", &replag::cli::check::report(&state().tracked.snapshot));
}

#[test]
fn status_page_html() {
    let state = state();
    let page = replag::http::page::full(&state.tracked, &state.gates, "/metrics", state.now, wall(2500));
    golden("page.html", &page);
}
