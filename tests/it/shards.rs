//! Sharding and the Prometheus-backed gate, end to end: a Redis
//! master/replica group and a PostgreSQL primary/standby group, two replag
//! shards reading one config (each polls one group), a real Prometheus
//! scraping both, and `replag gate --prometheus` answering for all of it —
//! while the standby's replay is really paused under writes, and while a
//! shard is really gone (SIGKILL).

use crate::common;

use std::time::Duration;

use common::postgres::{pair, PgServer, Workload};
use common::prometheus::{prometheus_scraping, query};
use common::redis::{RedisServer, PASSWORD};
use common::{run_replag, wait_for, Replag, Scrape};
use replag::config::shard::Shard;
use serde_json::Value;

/// Two group names that land in different shards of two.
fn groups_in_both_shards() -> [String; 2] {
    let names: Vec<String> = (0..).map(|i| format!("cache-{i}")).take(64).collect();
    let zero = names.iter().find(|n| Shard::of_group(n, 2) == 0).expect("a group for shard 0");
    let one = names.iter().find(|n| Shard::of_group(n, 2) == 1).expect("a group for shard 1");
    [zero.clone(), one.clone()]
}

/// Redis in the first group, PostgreSQL in the second; the shard index comes
/// from each instance's environment.
fn config(groups: &[String; 2], redis: (&RedisServer, &RedisServer), pg: (&PgServer, &PgServer)) -> String {
    format!(
        "[poll]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\n[shard]\ncount = 2\nindex = 0\n\n\
         [[regions.us-east.redis]]\nname = \"master-0\"\nurl = \"{}\"\ngroup = \"{g0}\"\n\n\
         [[regions.eu-west.redis]]\nname = \"replica-0\"\nurl = \"redis://127.0.0.1:{}\"\n\
         password_env = \"REDIS_PW\"\ngroup = \"{g0}\"\n\n\
         [[regions.us-east.postgres]]\nname = \"master-1\"\nurl = \"{}\"\ngroup = \"{g1}\"\n\n\
         [[regions.eu-west.postgres]]\nname = \"replica-1\"\nurl = \"{}\"\nupstream = \"master-1\"\n",
        redis.0.url(),
        redis.1.port,
        pg.0.monitor_url(),
        pg.1.monitor_url(),
        g0 = groups[0],
        g1 = groups[1],
    )
}

fn nodes(s: &Scrape) -> Vec<String> {
    let mut names: Vec<String> = s.all("replag_node_up", &[]).iter().map(|n| n.labels["node"].clone()).collect();
    names.sort();
    names
}

/// `replag gate --prometheus …` (off the async runtime): (exit code, verdict JSON).
async fn prometheus_gate(prometheus_url: &str, args: &[&str]) -> (i32, Value) {
    let all: Vec<String> = ["gate", "--prometheus", prometheus_url, "--selector", "job=\"replag\"", "--json"]
        .iter()
        .chain(args)
        .map(|s| s.to_string())
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = run_replag(&args, &[]);
        let verdict = serde_json::from_str(&stdout).unwrap_or_else(|_| Value::String(format!("{stdout}{stderr}")));
        (code, verdict)
    })
    .await
    .unwrap()
}

fn failing(verdict: &Value) -> Vec<String> {
    verdict["links"]
        .as_array()
        .map(|links| {
            links
                .iter()
                .filter(|l| l["pass"] != Value::Bool(true))
                .map(|l| format!("{}->{}: {}", l["source"], l["replica"], l["reason"]))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_one_prometheus_one_gate() {
    let groups = groups_in_both_shards();
    let master_0 = RedisServer::start("master-0", None).await;
    let replica_0 = RedisServer::start("replica-0", Some(&master_0)).await;
    let (master_1, replica_1) = pair("shards").await;
    let body = config(&groups, (&master_0, &replica_0), (&master_1, &replica_1));

    // One config, two instances: each polls exactly its group.
    let env = |index: &'static str| [("REDIS_PW", PASSWORD), ("REPLAG_SHARD__INDEX", index)];
    let mut shard_0 = Replag::start(&body, &env("0")).await;
    let shard_1 = Replag::start(&body, &env("1")).await;
    let measured = |s: &Scrape, i: usize| {
        let link = [("source", format!("master-{i}")), ("replica", format!("replica-{i}"))];
        let link: Vec<(&str, &str)> = link.iter().map(|(k, v)| (*k, v.as_str())).collect();
        s.get("replag_link_up", &link) == Some(1.0) && s.get("replag_lag_seconds", &link).is_some()
    };
    let s0 = shard_0.wait_until("shard 0 to measure its link", Duration::from_secs(20), |s| measured(s, 0)).await;
    let s1 = shard_1.wait_until("shard 1 to measure its link", Duration::from_secs(20), |s| measured(s, 1)).await;
    assert_eq!(nodes(&s0), ["master-0", "replica-0"]);
    assert_eq!(nodes(&s1), ["master-1", "replica-1"]);
    assert_eq!(s0.get("replag_shard_info", &[("index", "0"), ("count", "2")]), Some(1.0));
    assert_eq!(s1.get("replag_shard_info", &[("index", "1"), ("count", "2")]), Some(1.0));
    // A shard alone cannot answer for the other's links: its local gate fails closed.
    let (status, _) = shard_0.get("/gate?max_lag=2s&link=replica-1").await.unwrap();
    assert_eq!(status, 503);

    let targets = [format!("127.0.0.1:{}", shard_0.port), format!("127.0.0.1:{}", shard_1.port)];
    let prom = prometheus_scraping(&[&targets[0], &targets[1]], "groups: []\n", None).await;
    let prom_url = prom.url("");
    wait_for("Prometheus to hold both shards' lag", Duration::from_secs(30), || async {
        let lag = query(&prom, "replag_lag_seconds").await?;
        (lag.len() == 2).then_some(())
    })
    .await;

    // Healthy: both links, from two shards, in one answer.
    let (code, verdict) = prometheus_gate(&prom_url, &["--max-lag", "2s", "--for", "3s"]).await;
    assert_eq!(code, 0, "{verdict:#}");
    assert_eq!(verdict["links"].as_array().map(Vec::len), Some(2), "{verdict:#}");
    assert!(verdict["evaluated_from"].as_str().unwrap().starts_with("prometheus "), "{verdict:#}");

    // Ground truth: replica-1's replay paused while its primary takes writes.
    let _writes = Workload::start(&master_1, Duration::from_millis(50), Duration::from_secs(90)).await;
    replica_1.exec("SELECT pg_wal_replay_pause()").await;
    let frozen_at = std::time::Instant::now();
    // Prometheus must have seen the breach for longer than `for` (scrapes every 1 s).
    wait_for("Prometheus to see replica-1 over 2 s for 3 s", Duration::from_secs(30), || async {
        let over = query(&prom, "min_over_time(replag_lag_seconds{replica=\"replica-1\"}[4s]) > 2").await?;
        (!over.is_empty()).then_some(())
    })
    .await;
    let (code, verdict) = prometheus_gate(&prom_url, &["--max-lag", "2s", "--for", "3s"]).await;
    let frozen_for = frozen_at.elapsed().as_secs_f64();
    assert_eq!(code, 1, "{verdict:#}");
    let fails = failing(&verdict);
    assert_eq!(fails.len(), 1, "only the frozen link fails: {fails:?}");
    assert!(fails[0].contains("replica-1") && fails[0].contains("over max_lag"), "{fails:?}");
    let bad = verdict["links"].as_array().unwrap().iter().find(|l| l["replica"] == "replica-1").unwrap();
    let lag = bad["lag_seconds"].as_f64().unwrap();
    let breach = bad["breach_seconds"].as_f64().unwrap();
    // Lag tracks the freeze (within a poll + a scrape); the breach began when lag crossed 2 s.
    assert!(lag > 2.0 && lag <= frozen_for + 0.2, "lag {lag:.2} s after {frozen_for:.2} s frozen");
    assert!(breach >= 3.0 && breach <= frozen_for - 1.0, "breach {breach:.1} s after {frozen_for:.2} s frozen");
    // The same question, with a `for` longer than the breach, passes; so does a scope without the link.
    let (code, verdict) = prometheus_gate(&prom_url, &["--max-lag", "2s", "--for", "5m"]).await;
    assert_eq!(code, 0, "{verdict:#}");
    let (code, verdict) = prometheus_gate(&prom_url, &["--max-lag", "2s", "--for", "3s", "--link", "replica-0"]).await;
    assert_eq!(code, 0, "{verdict:#}");
    // Shard 1's own gate agrees with the Prometheus-backed one.
    let (status, _) = shard_1.get("/gate?max_lag=2s&for=3s").await.unwrap();
    assert_eq!(status, 503);
    println!(
        "prometheus gate: replica-1 frozen {frozen_for:.1} s -> lag {lag:.2} s, breach {breach:.1} s: FAIL (exit 1)"
    );

    replica_1.exec("SELECT pg_wal_replay_resume()").await;
    wait_for("the gate to pass again after the thaw", Duration::from_secs(30), || async {
        let (code, _) = prometheus_gate(&prom_url, &["--max-lag", "2s", "--for", "3s"]).await;
        (code == 0).then_some(())
    })
    .await;

    // A shard that dies leaves its links unknown: the gate fails closed, by name.
    shard_0.kill();
    let (code, verdict) = wait_for("the gate to notice shard 0 is gone", Duration::from_secs(30), || async {
        let (code, verdict) = prometheus_gate(&prom_url, &["--max-lag", "2s"]).await;
        (code == 1).then_some((code, verdict))
    })
    .await;
    let fails = failing(&verdict);
    assert!(fails.iter().any(|f| f.contains(&targets[0])), "names the dead shard: {fails:?}");
    println!("prometheus gate after SIGKILL of shard 0 (exit {code}): {fails:?}");

    // Unreachable Prometheus: cannot evaluate (2), never a pass.
    let (code, verdict) = prometheus_gate("http://127.0.0.1:1", &["--max-lag", "2s"]).await;
    assert_eq!(code, 2, "{verdict}");
}
