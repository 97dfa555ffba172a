//! Lag below one second against ground truth. A writer commits rows on the
//! primary and notes when each committed; a prober on every replica notes
//! every 5 ms which rows it can see. The truth at a moment m is m − the
//! commit time of the oldest row committed by m and not yet visible on the
//! replica (0 when there is none). replag's readings (through its gate, as a
//! pipeline asks) are judged against the truth at the moment each describes.
//!
//! One PostgreSQL primary feeds five links at once, with default 1 s polls:
//! standbys with no apply delay, 400 ms and 700 ms, a standby 50 ms ± 5 ms
//! away (its replication and replag's connection through WAN proxies) with
//! 400 ms, and a logical subscriber. A Redis master feeds three replicas:
//! one on loopback, two through proxies delaying its stream 400 ms and
//! 700 ms. Every write goes to both (a row, an `INCR`); steady writes,
//! bursts, then idle (Redis pinging its replicas every second).

use crate::common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::netfault::{Faults, Proxy};
use common::postgres::{self, PgServer};
use common::redis::RedisServer;
use common::Replag;
use serde_json::Value;

/// When a write committed, by id: somewhere in its round trip. Usually a
/// millisecond; a write that took a second (a server stalled mid-commit,
/// seen in CI: an INSERT of 2 s) leaves the truth that uncertain, and the
/// truth range says so rather than guess the midpoint.
#[derive(Debug, Clone, Copy)]
struct Committed {
    /// The write was sent.
    early: Instant,
    /// Its reply came.
    late: Instant,
}

type Commits = Arc<Mutex<BTreeMap<i64, Committed>>>;

/// A replica's visibility over time: (probe moment, highest id visible).
type Visible = Arc<Mutex<Vec<(Instant, i64)>>>;

const PROBE_EVERY: Duration = Duration::from_millis(5);

/// A 10 ms ticker in the test process that wakes this much late saw the
/// machine stall (two cores shared with the rest of the suite): replag,
/// its servers and the probers stalled too, and no reading whose moment or
/// source samples fall in a stall can be judged to tens of milliseconds.
const STALL: Duration = Duration::from_millis(100);

/// When the machine stalled: (end of the stall, how long).
type Stalls = Arc<Mutex<Vec<(Instant, Duration)>>>;

fn watch_stalls(stalls: Stalls, stop: Arc<std::sync::atomic::AtomicBool>) {
    tokio::spawn(async move {
        let every = Duration::from_millis(10);
        let mut last = Instant::now();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            tokio::time::sleep(every).await;
            let now = Instant::now();
            let late = now.duration_since(last).saturating_sub(every);
            if late > STALL {
                stalls.lock().unwrap().push((now, late));
            }
            last = now;
        }
    });
}

/// A stall overlapped the second before the reading's moment (where the
/// source samples it is judged by lie) or its poll.
fn stalled(stalls: &[(Instant, Duration)], at: Instant) -> bool {
    stalls
        .iter()
        .any(|(end, late)| *end + Duration::from_secs(1) >= at && *end - *late <= at + Duration::from_millis(100))
}
const GATE_LIMIT: f64 = 0.5;

/// A resolution that shows a source sampled between polls (every 25 ms,
/// its replies 100 ms away at most), not placed by 1 s polls alone.
const FINE: f64 = 0.15;

/// Where a replica's prober reads the highest write it has.
enum Replica {
    Postgres(PgServer),
    Redis(RedisServer),
}

struct Link {
    replica: &'static str,
    server: Replica,
    visible: Visible,
}

/// Rows visible at `at` by the last probe at or before it.
fn visible_before(visible: &[(Instant, i64)], at: Instant) -> Option<i64> {
    let idx = visible.partition_point(|(t, _)| *t <= at);
    (idx > 0).then(|| visible[idx - 1].1)
}

/// Rows visible at `at` by the first probe at or after it.
fn visible_after(visible: &[(Instant, i64)], at: Instant) -> Option<i64> {
    let idx = visible.partition_point(|(t, _)| *t < at);
    visible.get(idx).map(|(_, id)| *id)
}

/// How long the oldest row committed by `at` and not among the first `seen`
/// has been committed (0 when every row committed by then is seen).
/// `when` picks the commit's earliest or latest possible moment.
fn lag_of_missing(commits: &BTreeMap<i64, Committed>, seen: i64, at: Instant, when: fn(&Committed) -> Instant) -> f64 {
    match commits.range(seen + 1..).next().map(|(_, c)| when(c)) {
        Some(committed) if committed <= at => at.duration_since(committed).as_secs_f64(),
        _ => 0.0,
    }
}

/// The truth at `at`, as a range: the prober sees each change only at its
/// next probe, and a reading's moment is known to within half its poll's
/// round trip, so both are allowed for (`slack` either side); a write
/// committed somewhere in its own round trip.
fn truth(
    commits: &BTreeMap<i64, Committed>,
    visible: &[(Instant, i64)],
    at: Instant,
    slack: Duration,
) -> Option<(f64, f64)> {
    let fewest = visible_before(visible, at - slack)?;
    let most = visible_after(visible, at + slack)?;
    Some((lag_of_missing(commits, most, at, |c| c.late), lag_of_missing(commits, fewest, at, |c| c.early)))
}

/// How far a reading is from the truth range.
fn error(lag: f64, (low, high): (f64, f64)) -> f64 {
    (low - lag).max(lag - high).max(0.0)
}

/// Probe `replica` every 5 ms for the highest write it shows.
fn probe(replica: &Replica, visible: Visible, stop: Arc<std::sync::atomic::AtomicBool>) {
    let mut read = reader(replica);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PROBE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            every.tick().await;
            let started = Instant::now();
            let Some(highest) = read().await else { continue };
            let at = started + started.elapsed() / 2;
            visible.lock().unwrap().push((at, highest));
        }
    });
}

type Read = Box<dyn FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<i64>> + Send>> + Send>;

/// A function reading the highest write `replica` shows: the highest row id,
/// or the Redis counter.
fn reader(replica: &Replica) -> Read {
    match replica {
        Replica::Postgres(server) => {
            let (socket, port) = (server.socket_dir().to_path_buf(), server.port);
            let client = Arc::new(tokio::sync::OnceCell::new());
            Box::new(move || {
                let (client, socket) = (client.clone(), socket.clone());
                Box::pin(async move {
                    let client = client
                        .get_or_init(|| async {
                            let mut config = tokio_postgres::Config::new();
                            config.host_path(&socket).port(port).user("postgres").dbname("postgres");
                            let (client, connection) =
                                config.connect(tokio_postgres::NoTls).await.expect("prober connects");
                            tokio::spawn(connection);
                            client
                        })
                        .await;
                    let row = client.query_one("SELECT coalesce(max(id), 0) FROM writes", &[]).await.ok()?;
                    Some(row.get(0))
                })
            })
        }
        Replica::Redis(server) => {
            let url = server.url();
            let client = Arc::new(tokio::sync::OnceCell::new());
            Box::new(move || {
                let (client, url) = (client.clone(), url.clone());
                Box::pin(async move {
                    let client: &redis::aio::MultiplexedConnection = client
                        .get_or_init(|| async {
                            let client = redis::Client::open(url).unwrap();
                            client.get_multiplexed_async_connection().await.expect("prober connects")
                        })
                        .await;
                    let value: Option<i64> =
                        redis::cmd("GET").arg("truth").query_async(&mut client.clone()).await.ok()?;
                    Some(value.unwrap_or(0))
                })
            })
        }
    }
}

/// A tiny deterministic generator for burst sizes and gaps.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The writer: each write is a row on the primary and an `INCR` on the
/// master, at once, each noted with when it committed.
struct Writer {
    postgres: tokio_postgres::Client,
    redis: redis::aio::MultiplexedConnection,
    rows: Commits,
    increments: Commits,
}

impl Writer {
    async fn write(&self) {
        let row = async {
            let started = Instant::now();
            let sql = "INSERT INTO writes (payload) VALUES (repeat('x', 200)) RETURNING id";
            let row = self.postgres.query_one(sql, &[]).await.expect("insert");
            self.rows.lock().unwrap().insert(row.get(0), Committed { early: started, late: Instant::now() });
        };
        let increment = async {
            let started = Instant::now();
            let value: i64 = redis::cmd("INCR").arg("truth").query_async(&mut self.redis.clone()).await.expect("INCR");
            self.increments.lock().unwrap().insert(value, Committed { early: started, late: Instant::now() });
        };
        tokio::join!(row, increment);
    }
}

/// One reading of one link: the moment it describes, its lag, the gate's verdict.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    /// How far off `at` may be: half the poll's round trip (the replica's,
    /// or the publisher's for a logical link), plus the prober's interval.
    slack: Duration,
    lag: f64,
    /// How finely replag says it placed the reading.
    resolution: f64,
    pass: bool,
    phase: &'static str,
}

/// Ask each replag's gate (every link, 500 ms) and keep one reading per link
/// per poll, keyed by the link's replica and the replag's name.
async fn read_gates(observers: &[(&str, &Replag)], phase: &'static str, readings: &mut BTreeMap<String, Vec<Reading>>) {
    for (name, replag) in observers {
        read_gate(replag, name, phase, readings).await;
    }
}

async fn read_gate(
    replag: &Replag,
    observer: &str,
    phase: &'static str,
    readings: &mut BTreeMap<String, Vec<Reading>>,
) {
    let started = Instant::now();
    let (_, body) = replag.get("/gate?max_lag=500ms&always_200=true").await.expect("gate answers");
    let asked = started + started.elapsed() / 2;
    let verdict: Value = serde_json::from_str(&body).expect("gate JSON");
    let scrape = replag.scrape().await;
    for link in verdict["links"].as_array().expect("links") {
        let (Some(lag), Some(age)) = (link["lag_seconds"].as_f64(), link["data_age_seconds"].as_f64()) else {
            continue;
        };
        let at = asked - Duration::from_secs_f64(age);
        let replica = link["replica"].as_str().unwrap();
        let pass = link["pass"].as_bool().unwrap();
        let resolution = link["lag_resolution_seconds"].as_f64().expect("a position-history lag has a resolution");
        // A logical link's reading is the publisher's poll.
        let source = link["source"].as_str().unwrap();
        let round_trip = [replica, source]
            .iter()
            .filter_map(|node| scrape.get("replag_poll_duration_seconds", &[("node", node)]))
            .fold(0.0, f64::max);
        let slack = PROBE_EVERY + Duration::from_secs_f64(round_trip / 2.0);
        let seen = readings.entry(format!("{replica}{observer}")).or_default();
        // The same poll, read again: one reading.
        if seen.last().is_some_and(|r| r.at + Duration::from_millis(100) > at) {
            continue;
        }
        seen.push(Reading { at, slack, lag, resolution, pass, phase });
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_below_one_second_matches_the_truth_and_the_500ms_gate_is_never_wrong() {
    let primary = postgres::primary("truth-primary").await;
    primary.exec("CREATE PUBLICATION pub FOR TABLE writes").await;
    // Autovacuum's ANALYZE commits (new statistics, of `writes` or of a
    // catalog the set-up changed) whenever its worker comes round: data a
    // delayed standby is rightly behind on, which the prober cannot see.
    primary.exec("ALTER SYSTEM SET autovacuum = off").await;
    primary.exec("SELECT pg_reload_conf()").await;
    primary.exec("INSERT INTO writes (payload) VALUES ('first')").await;
    let wan = Faults::wan(Duration::from_millis(50), Duration::from_millis(5));
    let replication_proxy = Proxy::start(primary.port).await;
    let mut standbys = Vec::new();
    for (name, delay) in [("standby-0ms", 0u32), ("standby-400ms", 400), ("standby-700ms", 700)] {
        let server = postgres::standby(&primary, name).await;
        server.exec(&format!("ALTER SYSTEM SET recovery_min_apply_delay = '{delay}ms'")).await;
        server.exec("SELECT pg_reload_conf()").await;
        standbys.push((name, server));
    }
    let far = postgres::standby_via(&primary, "standby-wan-400ms", replication_proxy.port).await;
    far.exec("ALTER SYSTEM SET recovery_min_apply_delay = '400ms'").await;
    far.exec("SELECT pg_reload_conf()").await;
    replication_proxy.set(wan);
    let replag_proxy = Proxy::start(far.port).await;
    replag_proxy.set(wan);
    let subscriber = postgres::primary("truth-subscriber").await;
    postgres::subscribe(&subscriber, "sub", &primary, "pub").await;
    let master = RedisServer::start("truth-master", None).await;
    let mut redis_links = vec![("redis-0ms", RedisServer::start("redis-0ms", Some(&master)).await, None)];
    for (name, delay) in [("redis-400ms", 400), ("redis-700ms", 700)] {
        let stream = Proxy::start(master.port).await;
        stream.set(Faults::wan(Duration::from_millis(delay), Duration::from_millis(5)));
        redis_links.push((name, RedisServer::start_replicating(name, Some(stream.port)).await, Some(stream)));
    }

    let mut config = format!(
        "[[regions.us-east.postgres]]\nname = \"primary\"\nurl = \"{}\"\n\n\
         [[regions.eu-west.postgres]]\nname = \"subscriber\"\nurl = \"{}\"\n\n\
         [[regions.eu-west.postgres]]\nname = \"standby-wan-400ms\"\nurl = \"{}\"\n",
        primary.monitor_url(),
        subscriber.monitor_url(),
        far.monitor_url().replace(&far.port.to_string(), &replag_proxy.port.to_string()),
    );
    for (name, server) in &standbys {
        config.push_str(&format!(
            "\n[[regions.eu-west.postgres]]\nname = \"{name}\"\nurl = \"{}\"\n",
            server.monitor_url()
        ));
    }
    config.push_str(&format!("\n[[regions.us-east.redis]]\nname = \"redis-master\"\nurl = \"{}\"\n", master.url()));
    for (name, server, _) in &redis_links {
        config.push_str(&format!(
            "\n[[regions.eu-west.redis]]\nname = \"{name}\"\nurl = \"{}\"\nupstream = \"redis-master\"\n",
            server.url()
        ));
    }
    let mut links: Vec<Link> = standbys
        .into_iter()
        .map(|(replica, server)| Link { replica, server: Replica::Postgres(server), visible: Visible::default() })
        .collect();
    links.push(Link { replica: "standby-wan-400ms", server: Replica::Postgres(far), visible: Visible::default() });
    links.push(Link { replica: "subscriber", server: Replica::Postgres(subscriber), visible: Visible::default() });
    let mut redis_proxies = Vec::new();
    for (replica, server, proxy) in redis_links {
        links.push(Link { replica, server: Replica::Redis(server), visible: Visible::default() });
        redis_proxies.extend(proxy);
    }
    let replag = Replag::start(&config, &[]).await;
    // A second replag reaching the primary and the master across a WAN, 50 ms
    // ± 5 ms each way: its samples of them take a 100 ms round trip.
    let (to_primary, to_master) = (Proxy::start(primary.port).await, Proxy::start(master.port).await);
    to_primary.set(wan);
    to_master.set(wan);
    let far_config = config
        .replace(
            &primary.monitor_url(),
            &primary.monitor_url().replace(&primary.port.to_string(), &to_primary.port.to_string()),
        )
        .replace(&master.url(), &master.url().replace(&master.port.to_string(), &to_master.port.to_string()));
    let far_replag = Replag::start(&far_config, &[]).await;
    let observers = [("", &replag), (" (replag 50 ms from the sources)", &far_replag)];

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stalls = Stalls::default();
    watch_stalls(stalls.clone(), stop.clone());
    for link in &links {
        probe(&link.server, link.visible.clone(), stop.clone());
    }
    let writer = Writer {
        postgres: primary.admin().await,
        redis: master.client().await,
        rows: Commits::default(),
        increments: Commits::default(),
    };
    // Until every link is measured (not a lower bound: replag's history
    // reaches back past each replica) and finely (each source sampled
    // between polls: in the first second or so only polls place the lag, to
    // within a poll interval, as replag's resolution says), under writes.
    common::wait_for("every link measured by both", Duration::from_secs(30), || async {
        writer.write().await;
        for (_, replag) in &observers {
            replag.sampling(&["primary", "redis-master"]).await.then_some(())?;
            let (_, body) = replag.get("/gate?max_lag=500ms&always_200=true").await.ok()?;
            let verdict: Value = serde_json::from_str(&body).ok()?;
            let measured = verdict["links"]
                .as_array()?
                .iter()
                .filter(|l| l["lag_seconds"].is_number() && l["lag_is_lower_bound"] == false && l["up"] == true)
                .filter(|l| l["lag_resolution_seconds"].as_f64().is_some_and(|r| r < FINE))
                .count();
            (measured == links.len()).then_some(())?;
        }
        Some(())
    })
    .await;

    let mut readings: BTreeMap<String, Vec<Reading>> = BTreeMap::new();
    // Steady: 20 commits/s for 40 s.
    let phase_end = Instant::now() + Duration::from_secs(40);
    let mut next_read = Instant::now();
    while Instant::now() < phase_end {
        writer.write().await;
        if Instant::now() >= next_read {
            read_gates(&observers, "steady", &mut readings).await;
            next_read += Duration::from_millis(100);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Bursts: 10–60 rows at once, every 0.5–4 s, for 40 s.
    let mut random = XorShift(0x9E37_79B9_7F4A_7C15);
    let phase_end = Instant::now() + Duration::from_secs(40);
    let mut next_burst = Instant::now();
    while Instant::now() < phase_end {
        if Instant::now() >= next_burst {
            for _ in 0..10 + random.below(51) {
                writer.write().await;
            }
            next_burst = Instant::now() + Duration::from_millis(500 + random.below(3500));
        }
        read_gates(&observers, "bursts", &mut readings).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Idle: what was written settles (the 700 ms delay), then 15 s of nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let phase_end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < phase_end {
        read_gates(&observers, "idle", &mut readings).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let rows = writer.rows.lock().unwrap().clone();
    let increments = writer.increments.lock().unwrap().clone();
    let stalls = stalls.lock().unwrap().clone();
    let mut failures = Vec::new();
    println!(
        "machine stalls over {} ms during the run: {} (longest {:?})",
        STALL.as_millis(),
        stalls.len(),
        stalls.iter().map(|(_, late)| *late).max().unwrap_or_default()
    );
    println!("link | phase | readings (stalled, not judged) | truth median | error p50 / p99 / max (s) | gate wrong");
    for (link, observer) in links.iter().flat_map(|l| observers.iter().map(move |(o, _)| (l, *o))) {
        let label = format!("{}{observer}", link.replica);
        let visible = link.visible.lock().unwrap().clone();
        let commits = match link.server {
            Replica::Postgres(_) => &rows,
            Replica::Redis(_) => &increments,
        };
        let mine = readings.get(&label).cloned().unwrap_or_default();
        let far = label.contains("wan") || !observer.is_empty();
        for phase in ["steady", "bursts", "idle"] {
            let taken: Vec<(Reading, (f64, f64))> = mine
                .iter()
                .filter(|r| r.phase == phase)
                .filter_map(|r| Some((*r, truth(commits, &visible, r.at, r.slack)?)))
                .collect();
            // Idle is judged whatever the machine did: no write, no lag.
            let (judged, unjudged): (Vec<_>, Vec<_>) =
                taken.iter().copied().partition(|(r, _)| phase == "idle" || !stalled(&stalls, r.at));
            if judged.len() < taken.len() / 2 || judged.is_empty() {
                failures.push(format!(
                    "{label} {phase}: {} of {} readings in machine stalls: too few to judge",
                    unjudged.len(),
                    taken.len()
                ));
                continue;
            }
            let mut errors: Vec<f64> = judged.iter().map(|(r, t)| error(r.lag, *t)).collect();
            errors.sort_by(f64::total_cmp);
            let mut truths: Vec<f64> = judged.iter().map(|(_, t)| t.1).collect();
            truths.sort_by(f64::total_cmp);
            let wrong: Vec<&(Reading, (f64, f64))> = judged
                .iter()
                .filter(|(r, t)| (t.1 <= GATE_LIMIT - 0.05 && !r.pass) || (t.0 >= GATE_LIMIT + 0.05 && r.pass))
                .collect();
            let (p50, p99, max) = (quantile(&errors, 0.5), quantile(&errors, 0.99), quantile(&errors, 1.0));
            println!(
                "{} | {phase} | {} ({}) | {:.3} | {p50:.3} / {p99:.3} / {max:.3} | {}",
                label,
                taken.len(),
                unjudged.len(),
                quantile(&truths, 0.5),
                wrong.len()
            );
            for (r, t) in &wrong {
                println!("    gate wrong: read {:.3} s, truth {:.3}–{:.3} s, pass {}", r.lag, t.0, t.1, r.pass);
            }
            let start = judged[0].0.at;
            for (r, t) in judged.iter().filter(|(r, t)| error(r.lag, *t) > 0.03) {
                let seen = visible_before(&visible, r.at).unwrap_or(0);
                let next: Vec<String> = commits
                    .range(seen + 1..seen + 3)
                    .map(|(id, c)| {
                        let since = |t: Instant| t.saturating_duration_since(start).as_secs_f64();
                        format!("{id} committed in {:+.3}..{:+.3}", since(c.early), since(c.late))
                    })
                    .collect();
                println!(
                    "    off: at {:+.3} read {:.3} s (resolution {:.3} s), truth {:.3}–{:.3} s; visible up to {seen}, next {next:?}",
                    r.at.duration_since(start).as_secs_f64(),
                    r.lag,
                    r.resolution,
                    t.0,
                    t.1
                );
            }
            // Today's targets are 0.05 s (p99) and 0.10 s (max) on loopback,
            // 0.10 / 0.15 s across the WAN; asserted with room for a shared CI
            // machine, still far below the 0.4–0.8 s errors of 1 s histories.
            let (p99_limit, max_limit) = if far { (0.15, 0.25) } else { (0.10, 0.20) };
            if p99 > p99_limit || max > max_limit {
                failures.push(format!("{} {phase}: error p99 {p99:.3} s, max {max:.3} s", label));
            }
            if !wrong.is_empty() {
                failures.push(format!("{} {phase}: the 500 ms gate was wrong {} times", label, wrong.len()));
            }
            if phase == "idle" {
                if let Some((r, _)) = judged.iter().find(|(r, _)| r.lag != 0.0) {
                    failures.push(format!("{} idle: read {:.4} s", label, r.lag));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}\nreplag log:\n{}", replag.log());
}
