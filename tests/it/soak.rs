//! Fault soak: the full lab (PostgreSQL primary/standby, Redis
//! master/replica, SeaweedFS master with volume servers in two data centers)
//! under writes, while a driver injects one real fault after another —
//! freeze, kill, restart, promote, pause, a storm of concurrent scrapes — in
//! a seeded random order. For every fault it waits until replag reports it,
//! heals it, and waits until replag reports recovery. Afterwards: replag
//! never crashed or panicked, every fault and every recovery was observed,
//! its memory stayed bounded, and every link ends healthy.
//!
//! `SOAK_SECONDS` (default 120) bounds the run after every fault kind has
//! run once; `SOAK_SEED` replays an order.

use crate::common;

use std::time::{Duration, Instant};

use common::postgres::{pair, pair_config, reseed, PgServer, Workload};
use common::redis::{RedisServer, RedisWorkload, PASSWORD};
use common::seaweedfs::{master, upload, volume, Weed};
use common::{Replag, Scrape};

const PG_LINK: [(&str, &str); 4] =
    [("system", "postgres"), ("kind", "physical"), ("source", "primary"), ("replica", "standby")];
const REDIS_LINK: [(&str, &str); 4] =
    [("system", "redis"), ("kind", "replica"), ("source", "master"), ("replica", "replica")];
const WEED_EU_LINK: [(&str, &str); 3] = [("system", "seaweedfs"), ("source", "weed"), ("replica", "eu-west")];
/// The bound on replag's resident memory over the whole soak (a debug build).
const MAX_RSS_KIB: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    RedisFreeze,
    RedisKill,
    RedisPromote,
    PgPause,
    PgStop,
    PgPromote,
    WeedKill,
    ScrapeStorm,
}

const ALL: [Fault; 8] = [
    Fault::RedisFreeze,
    Fault::RedisKill,
    Fault::RedisPromote,
    Fault::PgPause,
    Fault::PgStop,
    Fault::PgPromote,
    Fault::WeedKill,
    Fault::ScrapeStorm,
];

/// xorshift64*: a reproducible order from a printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Lab {
    primary: PgServer,
    standby: PgServer,
    redis_master: RedisServer,
    redis_replica: RedisServer,
    weed: Weed,
    _weed_us: Weed,
    weed_eu: Weed,
}

fn config(lab: &Lab) -> String {
    format!(
        "{}\n[[regions.us-east.redis]]\nname = \"master\"\nurl = \"{}\"\n\n\
         [[regions.eu-west.redis]]\nname = \"replica\"\nurl = \"redis://127.0.0.1:{}\"\npassword_env = \"REDIS_PW\"\n\n\
         [[regions.us-east.seaweedfs]]\nname = \"weed\"\nurl = \"{}\"\n",
        pair_config(&lab.primary, &lab.standby),
        lab.redis_master.url(),
        lab.redis_replica.port,
        lab.weed.url()
    )
}

fn link_is(s: &Scrape, link: &[(&str, &str)], up: f64) -> bool {
    s.get("replag_link_up", link) == Some(up)
}

fn lag(s: &Scrape, link: &[(&str, &str)]) -> Option<f64> {
    s.get("replag_lag_seconds", link)
}

/// What a pager would want to hear nothing about: every node up, every link
/// up and under 1 s behind, every SeaweedFS volume with its copies.
fn healthy(s: &Scrape) -> Result<(), String> {
    if let Some(down) = s.all("replag_node_up", &[]).iter().find(|n| n.value != 1.0) {
        return Err(format!("node {} down", down.labels["node"]));
    }
    for link in s.all("replag_link_up", &[]) {
        if link.value != 1.0 {
            return Err(format!("link {}->{} down", link.labels["source"], link.labels["replica"]));
        }
    }
    for link in [&PG_LINK[..], &REDIS_LINK[..]] {
        match lag(s, link) {
            Some(l) if l < 1.0 => {}
            other => return Err(format!("{link:?} lag {other:?}")),
        }
    }
    let under: f64 = s.all("replag_seaweedfs_volumes_under_replicated", &[]).iter().map(|x| x.value).sum();
    if under > 0.0 {
        return Err(format!("{under} volumes under-replicated"));
    }
    if !link_is(s, &WEED_EU_LINK, 1.0) {
        return Err("seaweedfs eu-west link missing".into());
    }
    Ok(())
}

/// Scrape until healthy; on timeout, say what was still wrong.
async fn wait_healthy(replag: &Replag, what: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        let problem = match healthy(&replag.scrape().await) {
            Ok(()) => return,
            Err(problem) => problem,
        };
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}: {problem}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The first thing replag reported about `fault` while it lasted.
fn effect(fault: Fault, s: &Scrape) -> Option<String> {
    let down_reason = |link: &[(&str, &str)]| {
        (!link_is(s, link, 1.0)).then(|| format!("link up = {:?}", s.get("replag_link_up", link)))
    };
    match fault {
        Fault::RedisFreeze => lag(s, &REDIS_LINK)
            .filter(|l| *l >= 1.0)
            .map(|l| format!("lag {l:.2} s"))
            .or_else(|| down_reason(&REDIS_LINK)),
        Fault::RedisKill | Fault::RedisPromote => down_reason(&REDIS_LINK),
        Fault::PgPause => lag(s, &PG_LINK)
            .filter(|l| *l >= 1.0 && link_is(s, &PG_LINK, 1.0))
            .map(|l| format!("lag {l:.2} s, link up")),
        Fault::PgStop | Fault::PgPromote => down_reason(&PG_LINK),
        Fault::WeedKill => down_reason(&WEED_EU_LINK).map(|d| {
            let under: f64 = s.all("replag_seaweedfs_volumes_under_replicated", &[]).iter().map(|x| x.value).sum();
            format!("eu-west {d}, {under} volumes under-replicated")
        }),
        Fault::ScrapeStorm => Some("answered".into()),
    }
}

/// replag's resident set, from /proc.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// 64 clients, 25 requests each, over every endpoint at once; every answer
/// complete; and polling goes on meanwhile.
async fn scrape_storm(replag: &Replag) -> String {
    let polls = |s: &Scrape| s.all("replag_node_polls_total", &[]).iter().map(|x| x.value).sum::<f64>();
    let before = polls(&replag.scrape().await);
    let started = Instant::now();
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for c in 0..64 {
        let (client, base) = (client.clone(), replag.url(""));
        tasks.push(tokio::spawn(async move {
            let mut answered = 0;
            for r in 0..25 {
                let path = ["/metrics", "/gate?max_lag=1s", "/api/v1/status", "/"][(c + r) % 4];
                let response = client.get(format!("{base}{path}")).send().await.expect("replag answers");
                let status = response.status().as_u16();
                let body = response.text().await.expect("a complete body");
                assert!(matches!(status, 200 | 503) && !body.is_empty(), "{path}: {status}");
                if path == "/metrics" {
                    assert!(body.contains("replag_build_info"), "a complete /metrics");
                }
                answered += 1;
            }
            answered
        }));
    }
    let mut answered = 0;
    for t in tasks {
        answered += t.await.expect("no client failed");
    }
    let took = started.elapsed();
    let after =
        replag.wait_until("polling to go on through the storm", Duration::from_secs(10), |s| polls(s) > before).await;
    format!("{answered} answers in {:.1} s, {} polls meanwhile", took.as_secs_f64(), polls(&after) - before)
}

async fn inject(fault: Fault, lab: &mut Lab) {
    match fault {
        Fault::RedisFreeze => lab.redis_replica.freeze(),
        Fault::RedisKill => lab.redis_replica.kill(),
        Fault::RedisPromote => {
            lab.redis_replica.command(&["REPLICAOF", "NO", "ONE"]).await;
        }
        Fault::PgPause => lab.standby.exec("SELECT pg_wal_replay_pause()").await,
        Fault::PgStop => lab.standby.stop(),
        Fault::PgPromote => lab.standby.promote(),
        Fault::WeedKill => lab.weed_eu.kill(),
        Fault::ScrapeStorm => {}
    }
}

async fn heal(fault: Fault, lab: &mut Lab) {
    match fault {
        Fault::RedisFreeze => lab.redis_replica.thaw(),
        Fault::RedisKill => lab.redis_replica.restart().await,
        Fault::RedisPromote => {
            let port = lab.redis_master.port.to_string();
            lab.redis_replica.command(&["REPLICAOF", "127.0.0.1", &port]).await;
        }
        Fault::PgPause => lab.standby.exec("SELECT pg_wal_replay_resume()").await,
        Fault::PgStop => lab.standby.start(),
        Fault::PgPromote => reseed(&mut lab.standby, &lab.primary),
        Fault::WeedKill => lab.weed_eu.restart(),
        Fault::ScrapeStorm => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_under_writes_are_reported_and_recovered() {
    let soak = Duration::from_secs(std::env::var("SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(120));
    let seed = std::env::var("SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    println!("soak: seed {seed} (SOAK_SEED={seed} replays this order), {} s", soak.as_secs());
    let mut rng = Rng(seed);

    let (primary, standby) = pair("soak").await;
    let redis_master = RedisServer::start("soak-master", None).await;
    let redis_replica = RedisServer::start("soak-replica", Some(&redis_master)).await;
    let weed = master().await;
    let weed_us = volume(&weed, "us-east").await;
    let weed_eu = volume(&weed, "eu-west").await;
    upload(&weed, 5).await;
    let mut lab = Lab { primary, standby, redis_master, redis_replica, weed, _weed_us: weed_us, weed_eu };
    let limit = soak + Duration::from_secs(300);
    let _pg_writes = Workload::start(&lab.primary, Duration::from_millis(50), limit).await;
    let _redis_writes = RedisWorkload::start(&lab.redis_master, Duration::from_millis(50), limit).await;

    let mut replag = Replag::start(&config(&lab), &[("REDIS_PW", PASSWORD)]).await;
    wait_healthy(&replag, "the lab to be healthy", Duration::from_secs(60)).await;

    // Memory, sampled every 500 ms in the background.
    let pid = replag.pid();
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        while let Some(rss) = rss_kib(pid) {
            samples.push(rss);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        samples
    });

    let started = Instant::now();
    // SOAK_ONLY=PgPromote,RedisKill runs just those kinds (to debug one).
    let only = std::env::var("SOAK_ONLY").unwrap_or_default();
    let mut order: Vec<Fault> =
        ALL.iter().copied().filter(|f| only.is_empty() || only.contains(&format!("{f:?}"))).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut report = Vec::new();
    let mut n = 0;
    while n < order.len() || started.elapsed() < soak {
        let fault = order.get(n).copied().unwrap_or_else(|| order[rng.below(order.len() as u64) as usize]);
        n += 1;
        let hold = Duration::from_millis(2000 + rng.below(4000));
        let injected = Instant::now();
        inject(fault, &mut lab).await;
        let seen = if fault == Fault::ScrapeStorm {
            scrape_storm(&replag).await
        } else {
            let s = replag
                .wait_until(&format!("replag to report {fault:?}"), Duration::from_secs(60), |s| {
                    effect(fault, s).is_some()
                })
                .await;
            effect(fault, &s).unwrap()
        };
        let seen_after = injected.elapsed();
        tokio::time::sleep_until((injected + hold).into()).await;
        heal(fault, &mut lab).await;
        let healed = Instant::now();
        wait_healthy(&replag, &format!("recovery from {fault:?}"), Duration::from_secs(120)).await;
        let line = format!(
            "{fault:?}: reported after {:.1} s: {seen}; healed after {:.1} s; recovery seen {:.1} s later",
            seen_after.as_secs_f64(),
            (healed - injected).as_secs_f64(),
            healed.elapsed().as_secs_f64()
        );
        println!("soak {n:>2}: {line}");
        report.push(line);
        assert!(replag.is_running(), "replag is still running after {fault:?}");
    }

    // The end: healthy for 5 s on end, and the gate agrees.
    let calm = Instant::now();
    while calm.elapsed() < Duration::from_secs(5) {
        let s = replag.scrape().await;
        if let Err(e) = healthy(&s) {
            panic!("not healthy {:.1} s after the last recovery: {e}", calm.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (status, body) = replag.get("/gate?max_lag=1s").await.unwrap();
    assert_eq!(status, 200, "{body}");

    assert!(replag.is_running(), "replag never exited");
    let log = replag.log();
    assert!(!log.contains("panicked"), "no panic in the log");
    replag.kill();
    let samples = sampler.await.unwrap();
    let (first, max, last) = (samples[0], *samples.iter().max().unwrap(), *samples.last().unwrap());
    println!(
        "soak: {n} faults in {:.0} s; replag RSS {:.1} MiB at start, {:.1} MiB max, {:.1} MiB at end ({} samples)",
        started.elapsed().as_secs_f64(),
        first as f64 / 1024.0,
        max as f64 / 1024.0,
        last as f64 / 1024.0,
        samples.len()
    );
    assert!(max < MAX_RSS_KIB, "replag's RSS reached {max} KiB (bound {MAX_RSS_KIB} KiB)");
}
