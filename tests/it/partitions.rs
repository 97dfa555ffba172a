//! Faults at the network, between regions: replication links and replag's
//! own connections through fault-injecting proxies (tests/it/common/netfault.rs).
//! A black hole — packets vanish, no reset — is what every replication
//! protocol notices only after a 60 s timeout; replag must say within its
//! heartbeat interval plus two polls that the link is silent, at idle as
//! under writes, and must tell "replag cannot see the replica" and "replag
//! cannot see the source" apart from a broken link.
//!
//! Each test prints what replag reported and how fast, next to the targets
//! (docs/operations.md, "What each partition looks like").

use crate::common;

use std::time::{Duration, Instant};

use common::netfault::Proxy;
use common::postgres::{self, PgServer, Workload};
use common::redis::{RedisServer, RedisWorkload};
use common::{Replag, Scrape};

const POLL: &str = "[poll]\ninterval = \"500ms\"\ntimeout = \"400ms\"";

/// PostgreSQL at its defaults (wal_receiver_status_interval 10 s): silent
/// within the interval + 2 polls (≤ 13 s at 1 s polls; 12.5 s at 500 ms).
const PG_SILENT_WITHIN: Duration = Duration::from_millis(13_000);
/// Redis replicas ACK every second: silent within 4 s.
const REDIS_SILENT_WITHIN: Duration = Duration::from_secs(4);

fn value(s: &Scrape, family: &str, replica: &str) -> Option<f64> {
    s.get(family, &[("replica", replica)])
}

fn is(s: &Scrape, family: &str, replica: &str, wanted: f64) -> bool {
    value(s, family, replica) == Some(wanted)
}

fn node_up(s: &Scrape, node: &str) -> Option<f64> {
    s.get("replag_node_up", &[("node", node)])
}

/// A primary (us-east) and a standby (eu-west) streaming through `repl`;
/// replag reaches each through a proxy of its own.
struct PgLab {
    primary: PgServer,
    standby: PgServer,
    repl: Proxy,
    to_primary: Proxy,
    to_standby: Proxy,
    replag: Replag,
}

impl PgLab {
    async fn start(prefix: &str) -> PgLab {
        let primary = postgres::primary(&format!("{prefix}-primary")).await;
        let repl = Proxy::start(primary.port).await;
        let standby = postgres::standby_via(&primary, &format!("{prefix}-standby"), repl.port).await;
        primary.exec("INSERT INTO writes (payload) VALUES ('first')").await;
        postgres::wait_for_standby_caught_up(&primary, &standby).await;
        let (to_primary, to_standby) = (Proxy::start(primary.port).await, Proxy::start(standby.port).await);
        let url = |port: u16| {
            format!("postgresql://{}:{}@127.0.0.1:{port}/postgres", postgres::MONITOR_USER, postgres::MONITOR_PASSWORD)
        };
        // The standby's WAL receiver names the proxy as its sender: `upstream` says who is behind it.
        let config = format!(
            "{POLL}\n\n[[regions.us-east.postgres]]\nname = \"primary\"\nurl = \"{}\"\n\n\
             [[regions.eu-west.postgres]]\nname = \"standby\"\nurl = \"{}\"\nupstream = \"primary\"\n",
            url(to_primary.port),
            url(to_standby.port)
        );
        let replag = Replag::start(&config, &[]).await;
        PgLab { primary, standby, repl, to_primary, to_standby, replag }
    }

    async fn healthy(&self, what: &str) -> Scrape {
        self.replag
            .wait_until(what, Duration::from_secs(40), |s| {
                is(s, "replag_link_up", "standby", 1.0)
                    && is(s, "replag_lag_bytes", "standby", 0.0)
                    && node_up(s, "primary") == Some(1.0)
                    && node_up(s, "standby") == Some(1.0)
            })
            .await
    }
}

/// Black hole of the standby's replication connection, at idle and under
/// writes; then replag cut from the standby only, then from the primary only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_partitions() {
    let lab = PgLab::start("part-pg").await;
    lab.healthy("the link to stream").await;

    // 1. Black hole at idle: nothing to replicate, so lag is truthfully 0,
    // but the link is cut: silent after the status interval plus margin.
    let cut = Instant::now();
    lab.repl.black_hole(true);
    let s = lab
        .replag
        .wait_until("the idle cut link to be silent", Duration::from_secs(30), |s| {
            is(s, "replag_link_silent", "standby", 1.0)
        })
        .await;
    let detected = cut.elapsed();
    assert!(is(&s, "replag_link_up", "standby", 0.0), "a silent link is down");
    assert!(
        detected <= PG_SILENT_WITHIN && detected >= Duration::from_secs(10),
        "idle black hole detected after {detected:?}: not within the 10 s status interval + 2 polls"
    );
    let quiet = value(&s, "replag_link_last_message_age_seconds", "standby").unwrap();
    assert!((10.0..=14.0).contains(&quiet), "last message {quiet:.1} s ago");
    let (status, body) = lab.replag.get("/gate?max_lag=1s").await.unwrap();
    assert_eq!(status, 503, "the gate fails on a silent link: {body}");
    assert!(body.contains("silent for"), "{body}");
    let (_, status_json) = lab.replag.get("/api/v1/status").await.unwrap();
    assert!(status_json.contains("\"state\": \"silent\""), "{status_json}");
    println!("postgres, idle black hole: silent after {:.1} s (target <= 13 s)", detected.as_secs_f64());

    let healed = Instant::now();
    lab.repl.black_hole(false);
    lab.healthy("the healed link to be up").await;
    println!("postgres, idle black hole healed: up again after {:.1} s", healed.elapsed().as_secs_f64());

    // 2. Black hole under writes: lag grows 1 s/s at once; silent as above.
    let workload = Workload::start(&lab.primary, Duration::from_millis(50), Duration::from_secs(120)).await;
    lab.replag
        .wait_until("lag measured under writes", Duration::from_secs(10), |s| {
            value(s, "replag_lag_seconds", "standby").is_some_and(|l| l < 1.0)
        })
        .await;
    let cut = Instant::now();
    lab.repl.black_hole(true);
    let s = lab
        .replag
        .wait_until("the cut link under writes to be silent", Duration::from_secs(30), |s| {
            is(s, "replag_link_silent", "standby", 1.0)
        })
        .await;
    let detected = cut.elapsed();
    let lag = value(&s, "replag_lag_seconds", "standby").unwrap();
    let truth = detected.as_secs_f64();
    assert!(detected <= PG_SILENT_WITHIN, "black hole under writes detected after {detected:?}");
    assert!((lag - truth).abs() <= 1.5, "lag {lag:.2} s after {truth:.2} s cut: it must grow 1 s/s");
    println!("postgres, black hole under writes: lag {lag:.2} s after {truth:.2} s; silent after {truth:.1} s");
    let healed = Instant::now();
    lab.repl.black_hole(false);
    lab.replag
        .wait_until("lag to recover after the heal", Duration::from_secs(20), |s| {
            is(s, "replag_link_up", "standby", 1.0)
                && value(s, "replag_lag_seconds", "standby").is_some_and(|l| l < 1.0)
        })
        .await;
    println!("postgres, healed under writes: up and < 1 s after {:.1} s", healed.elapsed().as_secs_f64());

    // 3. replag cut from the standby only: the node is down, the link is
    // measured from the primary's pg_stat_replication — never a fake 0.
    lab.to_standby.black_hole(true);
    let s = lab
        .replag
        .wait_until("the standby node to be down", Duration::from_secs(15), |s| node_up(s, "standby") == Some(0.0))
        .await;
    let (_, status_json) = lab.replag.get("/api/v1/status").await.unwrap();
    assert!(status_json.contains("figures from primary's pg_stat_replication"), "{status_json}");
    assert!(is(&s, "replag_link_up", "standby", 1.0), "replication itself is fine");
    assert!(value(&s, "replag_lag_seconds", "standby").is_some(), "lag from the upstream's view");
    let (status, _) = lab.replag.get("/gate?max_lag=5s").await.unwrap();
    assert_eq!(status, 503, "a gate fails closed while a node is unreachable");
    lab.to_standby.black_hole(false);
    lab.replag
        .wait_until("the standby node back", Duration::from_secs(30), |s| node_up(s, "standby") == Some(1.0))
        .await;

    // 4. replag cut from the primary only: lag is as of the primary's last
    // poll, and says so; the data age grows; gates fail closed.
    lab.to_primary.black_hole(true);
    lab.replag
        .wait_until("the primary node to be down", Duration::from_secs(15), |s| node_up(s, "primary") == Some(0.0))
        .await;
    let s = lab
        .replag
        .wait_until("the link data to age", Duration::from_secs(15), |s| {
            value(s, "replag_link_data_age_seconds", "standby").is_some_and(|a| a >= 3.0)
        })
        .await;
    let (_, status_json) = lab.replag.get("/api/v1/status").await.unwrap();
    assert!(status_json.contains("source primary unreachable"), "{status_json}");
    let (status, body) = lab.replag.get("/gate?max_lag=5s").await.unwrap();
    assert_eq!(status, 503, "{body}");
    println!(
        "postgres, replag cut from the primary: data {:.1} s old, gate 503",
        value(&s, "replag_link_data_age_seconds", "standby").unwrap()
    );
    lab.to_primary.black_hole(false);
    drop(workload);
    lab.healthy("everything healthy after the cuts heal").await;
    let (status, _) = lab.replag.get("/gate?max_lag=1s").await.unwrap();
    assert_eq!(status, 200);
    let _ = &lab.standby;
}

/// A master (us-east) and a replica (eu-west) replicating through `repl`.
async fn redis_lab() -> (RedisServer, RedisServer, Proxy, Replag) {
    let master = RedisServer::start("part-master", None).await;
    let repl = Proxy::start(master.port).await;
    let replica = RedisServer::start_replicating("part-replica", Some(repl.port)).await;
    let config = format!(
        "{POLL}\n\n[[regions.us-east.redis]]\nname = \"master\"\nurl = \"{}\"\n\n\
         [[regions.eu-west.redis]]\nname = \"replica\"\nurl = \"{}\"\nupstream = \"master\"\n",
        master.url(),
        replica.url()
    );
    let replag = Replag::start(&config, &[]).await;
    replag
        .wait_until("the replica link up", Duration::from_secs(20), |s| {
            is(s, "replag_link_up", "replica", 1.0) && is(s, "replag_lag_bytes", "replica", 0.0)
        })
        .await;
    (master, replica, repl, replag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_partitions() {
    let (master, _replica, repl, replag) = redis_lab().await;

    // Idle (the test masters ping every second): silent from the missing ACKs.
    let cut = Instant::now();
    repl.black_hole(true);
    let s = replag
        .wait_until("the cut link to be silent", Duration::from_secs(20), |s| {
            is(s, "replag_link_silent", "replica", 1.0)
        })
        .await;
    let detected = cut.elapsed();
    assert!(is(&s, "replag_link_up", "replica", 0.0));
    assert!(detected <= REDIS_SILENT_WITHIN, "redis black hole detected after {detected:?}");
    let (status, body) = replag.get("/gate?max_lag=10s").await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no ACK"), "{body}");
    println!("redis, black hole: silent after {:.1} s (target <= 4 s)", detected.as_secs_f64());
    repl.black_hole(false);
    let healed = Instant::now();
    replag
        .wait_until("the healed link up", Duration::from_secs(20), |s| {
            is(s, "replag_link_up", "replica", 1.0) && is(s, "replag_lag_bytes", "replica", 0.0)
        })
        .await;
    println!("redis, healed: up and caught up after {:.1} s", healed.elapsed().as_secs_f64());

    // Under writes: lag grows 1 s/s from the cut.
    let workload = RedisWorkload::start(&master, Duration::from_millis(20), Duration::from_secs(60)).await;
    let cut = Instant::now();
    repl.black_hole(true);
    let s = replag
        .wait_until("lag to build under the cut", Duration::from_secs(20), |s| {
            value(s, "replag_lag_seconds", "replica").is_some_and(|l| l >= 5.0)
        })
        .await;
    let truth = cut.elapsed().as_secs_f64();
    let lag = value(&s, "replag_lag_seconds", "replica").unwrap();
    assert!(is(&s, "replag_link_silent", "replica", 1.0));
    assert!((lag - truth).abs() <= 1.0, "lag {lag:.2} s after {truth:.2} s cut");
    println!("redis, black hole under writes: lag {lag:.2} s after {truth:.2} s");
    repl.black_hole(false);
    drop(workload);
    replag
        .wait_until("recovery after the heal", Duration::from_secs(20), |s| {
            is(s, "replag_link_up", "replica", 1.0) && value(s, "replag_lag_seconds", "replica") == Some(0.0)
        })
        .await;
}

/// An idle lab raises nothing: physical, logical and Redis links stay up,
/// never silent, lag 0, for `REPLAG_IDLE_SECONDS` (default 300).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_lab_raises_nothing() {
    let seconds: u64 = std::env::var("REPLAG_IDLE_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    let (primary, standby) = postgres::pair("idle").await;
    let subscriber = postgres::primary("idle-subscriber").await;
    primary.exec("CREATE PUBLICATION idle_pub FOR TABLE writes").await;
    postgres::subscribe(&subscriber, "idle_sub", &primary, "idle_pub").await;
    let master = RedisServer::start("idle-master", None).await;
    let replica = RedisServer::start("idle-replica", Some(&master)).await;
    let config = format!(
        "{POLL}\n\n[[regions.us-east.postgres]]\nname = \"primary\"\nurl = \"{}\"\n\n\
         [[regions.eu-west.postgres]]\nname = \"standby\"\nurl = \"{}\"\n\n\
         [[regions.ap-south.postgres]]\nname = \"subscriber\"\nurl = \"{}\"\n\n\
         [[regions.us-east.redis]]\nname = \"master\"\nurl = \"{}\"\n\n\
         [[regions.eu-west.redis]]\nname = \"replica\"\nurl = \"{}\"\n",
        primary.monitor_url(),
        standby.monitor_url(),
        subscriber.monitor_url(),
        master.url(),
        replica.url()
    );
    let replag = Replag::start(&config, &[]).await;
    let replicas = ["standby", "subscriber", "replica"];
    replag
        .wait_until("every link up and caught up", Duration::from_secs(30), |s| {
            replicas.iter().all(|r| is(s, "replag_link_up", r, 1.0) && is(s, "replag_lag_bytes", r, 0.0))
        })
        .await;
    let end = Instant::now() + Duration::from_secs(seconds);
    let (mut scrapes, mut longest_quiet, mut blips, mut worst) = (0, 0.0f64, 0, 0.0f64);
    while Instant::now() < end {
        let s = replag.scrape().await;
        for r in replicas {
            assert!(is(&s, "replag_link_up", r, 1.0), "{r} down at idle after {scrapes} scrapes:\n{}", s.text);
            assert!(is(&s, "replag_link_silent", r, 0.0), "{r} silent at idle");
            longest_quiet = longest_quiet.max(value(&s, "replag_link_last_message_age_seconds", r).unwrap_or(0.0));
            let lag = value(&s, "replag_lag_seconds", r).unwrap_or_else(|| panic!("{r}: no lag at idle"));
            // An idle primary still writes background WAL now and then (a
            // checkpoint, a standby snapshot): a standby polled in the
            // milliseconds before it replays it truly trails by that much,
            // and a logical slot confirms it at the subscriber's next
            // feedback (about a second). Never more, and rarely.
            let bound = if r == "subscriber" { 1.5 } else { 0.6 };
            assert!(lag < bound, "{r} lag at idle: {lag:.3} s");
            if lag > 0.0 {
                blips += 1;
                worst = worst.max(lag);
            }
        }
        scrapes += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(blips * 20 <= scrapes, "lag above 0 in {blips} of {scrapes} idle scrapes");
    let (status, _) = replag.get("/gate?max_lag=2s&for=0s").await.unwrap();
    assert_eq!(status, 200);
    println!(
        "idle lab for {seconds} s: {scrapes} scrapes, every link up, never silent; lag above 0 in {blips} \
         link readings (max {worst:.3} s); longest wait for a periodic message {longest_quiet:.1} s"
    );
}

/// replag's heartbeat table, as docs/configuration.md tells operators to
/// create it, with the grants of the monitoring role.
const HEARTBEAT_DDL: &str = "CREATE SCHEMA replag;
    CREATE TABLE replag.heartbeat (writer text NOT NULL, source text NOT NULL, seq bigint NOT NULL,
        written_at timestamptz NOT NULL, PRIMARY KEY (writer, source));
    GRANT USAGE ON SCHEMA replag TO replag_mon;
    GRANT SELECT, INSERT, UPDATE ON replag.heartbeat TO replag_mon;";

/// With heartbeats on, a link cut at idle shows lag growing 1 s/s from the
/// first heartbeat the replica misses — long before it is judged silent —
/// on PostgreSQL and Redis; gates fail on it; healing brings it back to ~0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_show_a_cut_link_at_idle() {
    let primary = postgres::primary("hb-primary").await;
    primary.exec(HEARTBEAT_DDL).await;
    let repl = Proxy::start(primary.port).await;
    let standby = postgres::standby_via(&primary, "hb-standby", repl.port).await;
    let master = RedisServer::start("hb-master", None).await;
    let redis_repl = Proxy::start(master.port).await;
    let replica = RedisServer::start_replicating("hb-replica", Some(redis_repl.port)).await;
    let config = format!(
        "{POLL}\n\n[heartbeat]\nwriter = \"test\"\n\n\
         [[regions.us-east.postgres]]\nname = \"primary\"\nurl = \"{}\"\nheartbeat = true\n\n\
         [[regions.eu-west.postgres]]\nname = \"standby\"\nurl = \"{}\"\nupstream = \"primary\"\nheartbeat = true\n\n\
         [[regions.us-east.redis]]\nname = \"master\"\nurl = \"{}\"\nheartbeat = true\n\n\
         [[regions.eu-west.redis]]\nname = \"replica\"\nurl = \"{}\"\nupstream = \"master\"\nheartbeat = true\n",
        primary.monitor_url(),
        standby.monitor_url(),
        master.url(),
        replica.url()
    );
    let replag = Replag::start(&config, &[]).await;
    let replicas = ["standby", "replica"];
    let hb = |s: &Scrape, r: &str| value(s, "replag_heartbeat_lag_seconds", r);
    // Measured, and finely: the sources read between polls (in CI a first
    // reading, placed by 500 ms polls alone, read 0.4 s at idle).
    common::wait_for("heartbeat lag measured finely on both links", Duration::from_secs(30), || async {
        replag.sampling(&["primary", "master"]).await.then_some(())?;
        let s = replag.scrape().await;
        replicas
            .iter()
            .all(|r| {
                hb(&s, r).is_some_and(|l| l < 0.3)
                    && is(&s, "replag_link_up", r, 1.0)
                    && value(&s, "replag_lag_resolution_seconds", r).is_some_and(|res| res < 0.1)
            })
            .then_some(())
    })
    .await;
    // Idle: a replica polled as its source is written to may lack that one
    // heartbeat for the milliseconds it takes to arrive: never a poll's
    // worth, as heartbeat lag or as position lag (the sources are sampled
    // every 25 ms, so a heartbeat is in the source's position soon after it
    // is written: a replica polled before it arrives is that far behind).
    // Unless replication itself stalled: both links run through this test's
    // proxies, on a shared machine. The truth is a prober's (below): a
    // reading may exceed those bounds only by the longest any heartbeat
    // really took to arrive meanwhile.
    let probe = HeartbeatProbe::start(&primary, &standby, &master, &replica);
    let (mut worst, mut readings) = ([0.0f64; 2], Vec::new());
    for _ in 0..10 {
        let s = replag.scrape().await;
        for (i, r) in replicas.iter().enumerate() {
            let (heartbeat, position) = (hb(&s, r).unwrap(), value(&s, "replag_lag_seconds", r).unwrap());
            // A reading is stamped with the middle of its poll's round trip:
            // on a loaded machine (a full-suite run read 0.276 s here with
            // heartbeats arriving in 64 ms) the replica's position may be
            // that much older than its stamp.
            let half_trip = s.get("replag_poll_duration_seconds", &[("node", r)]).unwrap_or(0.0) / 2.0;
            worst[i] = worst[i].max((heartbeat - 0.3).max(position - 0.1 - half_trip));
            readings.push(format!(
                "{r}: heartbeat {heartbeat:.3} s, position {position:.3} s, half its poll {half_trip:.3} s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let took = probe.stop();
    for (i, r) in replicas.iter().enumerate() {
        assert!(
            worst[i] <= took[i],
            "{r}: idle readings up to {:.3} s over 0.3 s (heartbeat) / 0.1 s (position), while heartbeats took \
             at most {:.3} s to arrive:\n{readings:#?}",
            worst[i],
            took[i]
        );
    }
    println!("heartbeats, idle: the longest a heartbeat took to arrive (standby, replica): {took:.3?} s");

    let cut = Instant::now();
    repl.black_hole(true);
    redis_repl.black_hole(true);
    let s = replag
        .wait_until("heartbeat lag to build on both cut links", Duration::from_secs(20), |s| {
            replicas.iter().all(|r| hb(s, r).is_some_and(|l| l >= 4.0))
        })
        .await;
    let truth = cut.elapsed().as_secs_f64();
    for r in replicas {
        let lag = hb(&s, r).unwrap();
        // From the first missed heartbeat: at most a poll after the cut.
        assert!(lag <= truth + 0.1 && lag >= truth - 1.2, "{r}: heartbeat lag {lag:.2} s after {truth:.2} s cut");
        println!("heartbeats, idle black hole: {r} heartbeat lag {lag:.2} s after {truth:.2} s");
    }
    let (status, body) = replag.get("/gate?max_lag=2s&system=postgres").await.unwrap();
    assert_eq!(status, 503, "gates judge the heartbeat lag: {body}");
    repl.black_hole(false);
    redis_repl.black_hole(false);
    replag
        .wait_until("heartbeat lag back to ~0", Duration::from_secs(20), |s| {
            replicas.iter().all(|r| hb(s, r).is_some_and(|l| l < 0.5))
        })
        .await;
    let (status, _) = replag.get("/gate?max_lag=2s").await.unwrap();
    assert_eq!(status, 200);
}

/// The truth about heartbeats at idle: the longest any heartbeat took from
/// its source to its replica (PostgreSQL standby, Redis replica), as a
/// prober saw it reading both ends every 10 ms — on a thread and runtime
/// of its own, so a stall of this test's runtime (where the replication
/// proxies run) does not stall the prober with it.
struct HeartbeatProbe {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<([f64; 2], [usize; 2])>,
}

impl HeartbeatProbe {
    fn start(primary: &PgServer, standby: &PgServer, master: &RedisServer, replica: &RedisServer) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let pg = [(primary.socket_dir().to_owned(), primary.port), (standby.socket_dir().to_owned(), standby.port)];
        let redis = [master.port, replica.port];
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let mut pg_clients = Vec::new();
                for (dir, port) in &pg {
                    let mut config = tokio_postgres::Config::new();
                    config.host_path(dir).port(*port).user("postgres").dbname("postgres");
                    let (client, connection) = config.connect(tokio_postgres::NoTls).await.expect("probe connection");
                    tokio::spawn(connection);
                    pg_clients.push(client);
                }
                let mut redis_clients = Vec::new();
                for port in redis {
                    let url = format!("redis://:{}@127.0.0.1:{port}", common::redis::PASSWORD);
                    redis_clients
                        .push(redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap());
                }
                // Per link: when each sequence was first seen on the source,
                // and the longest from there to the replica seeing it.
                let mut written: [std::collections::HashMap<i64, Instant>; 2] = Default::default();
                let mut took = [0.0f64; 2];
                while !stopped.load(Ordering::Relaxed) {
                    let mut seqs = [[None; 2]; 2];
                    for (end, client) in pg_clients.iter().enumerate() {
                        let row = client
                            .query_opt(
                                "SELECT seq FROM replag.heartbeat WHERE writer = 'test' AND source = 'primary'",
                                &[],
                            )
                            .await
                            .expect("heartbeat row");
                        seqs[0][end] = row.map(|r| r.get::<_, i64>(0));
                    }
                    for (end, client) in redis_clients.iter_mut().enumerate() {
                        let seq: Option<i64> = redis::cmd("HGET")
                            .arg("replag:heartbeat:test")
                            .arg("master")
                            .query_async(client)
                            .await
                            .expect("heartbeat hash");
                        seqs[1][end] = seq;
                    }
                    let now = Instant::now();
                    for link in 0..2 {
                        let [source, replica] = seqs[link];
                        if let Some(seq) = source {
                            written[link].entry(seq).or_insert(now);
                        }
                        // Every sequence written and not yet on the replica
                        // has been on its way this long.
                        for (seq, at) in &written[link] {
                            if replica.is_none_or(|r| r < *seq) {
                                took[link] = took[link].max(now.duration_since(*at).as_secs_f64());
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (took, written.map(|w| w.len()))
            })
        });
        HeartbeatProbe { stop, thread }
    }

    /// Stop probing: the longest a heartbeat took to arrive, per link (it
    /// must have seen a few written, or it knows nothing).
    fn stop(self) -> [f64; 2] {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (took, seen) = self.thread.join().expect("the heartbeat prober");
        assert!(seen.iter().all(|n| *n >= 3), "the prober saw {seen:?} heartbeats written");
        took
    }
}
