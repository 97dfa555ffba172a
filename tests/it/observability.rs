//! The bundled alerts and dashboard against what replag really emits: every
//! metric they name exists in a lab scrape, every dashboard query evaluates
//! with data in a real Prometheus, and ReplicationLagHigh reaches a real
//! Alertmanager when lag is made to happen.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::postgres::{primary, standby, subscribe, wait_for_standby_caught_up, Workload};
use common::prometheus::{alertmanager, prometheus, query};
use common::redis::{RedisServer, RedisWorkload, PASSWORD};
use common::redis_topology::{Cluster as RedisCluster, Sentinel};
use common::seaweedfs::{filer_sync, master, upload, volume, Cluster};
use common::{wait_for, Replag};
use serde_json::Value;

const RULES: &str = include_str!("../../alerts/replag.rules.yml");
const DASHBOARD: &str = include_str!("../../dashboards/replag-overview.json");

/// Every `replag_*` metric name in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("replag_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Every panel query of the dashboard, with Grafana's variables filled in.
fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(DASHBOARD).unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$region", ".*")
                .replace("$system", ".*")
                .replace("$__rate_interval", "1m");
            out.push((panel["title"].as_str().unwrap().to_string(), expr));
        }
    }
    out
}

fn promtool(args: &[&str]) -> String {
    let out = std::process::Command::new("promtool")
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts"))
        .output()
        .expect("promtool is installed (scripts/setup installs the prometheus package)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn rules_pass_promtool_check_and_unit_tests() {
    let checked = promtool(&["check", "rules", "replag.rules.yml"]);
    assert!(checked.contains(&format!("SUCCESS: {} rules found", RULES.matches("- alert:").count())), "{checked}");
    let tested = promtool(&["test", "rules", "replag.rules.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    // Every alert has a unit test, a severity, and a runbook section.
    let tests = include_str!("../../alerts/replag.rules.test.yml");
    let runbooks = include_str!("../../alerts/runbooks.md");
    for line in RULES.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")) {
        assert!(tests.contains(&format!("alertname: {line}")), "{line} has promtool tests");
        assert!(runbooks.contains(&format!("## {line}")), "{line} has a runbook");
        assert!(RULES.contains(&format!("runbooks.md#{}", line.to_lowercase())), "{line} links its runbook");
    }
    println!("promtool: {}", tested.lines().last().unwrap_or("").trim());
}

#[test]
fn dashboard_works_under_file_provisioning() {
    assert!(!DASHBOARD.contains("${DS_") && !DASHBOARD.contains("__inputs"), "no import placeholders");
    let dashboard: Value = serde_json::from_str(DASHBOARD).unwrap();
    let vars: Vec<&str> =
        dashboard["templating"]["list"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(vars, ["datasource", "region", "system"]);
    for panel in dashboard["panels"].as_array().unwrap().iter().filter(|p| p["type"] != "row") {
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{}", panel["title"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_dashboard_match_what_replag_emits() {
    // The lab: physical standby, logical subscriber, Redis replica, a gate.
    let pg = primary("obs-primary").await;
    pg.exec("CREATE PUBLICATION pub FOR TABLE writes").await;
    let pg_standby = standby(&pg, "obs-standby").await;
    wait_for_standby_caught_up(&pg, &pg_standby).await;
    let pg_subscriber = primary("obs-subscriber").await;
    subscribe(&pg_subscriber, "sub", &pg, "pub").await;
    let redis_master = RedisServer::start("obs-master", None).await;
    let redis_replica = RedisServer::start("obs-replica", Some(&redis_master)).await;
    let weed = master().await;
    let _weed_us = volume(&weed, "us-east").await;
    let _weed_eu = volume(&weed, "eu-west").await;
    upload(&weed, 3).await;
    let (filers_us, filers_eu) = tokio::join!(Cluster::start(), Cluster::start());
    let sync = filer_sync(&filers_us, &filers_eu, false).await;
    // Redis topologies: a Sentinel watching the Redis master, and a cluster.
    let sentinel = Sentinel::start(redis_master.port).await;
    let cluster = RedisCluster::start(3).await;
    let config = format!(
        "[poll]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\n\
         [[regions.us-east.postgres]]\nname = \"primary\"\nurl = \"{}\"\n\n\
         [[regions.eu-west.postgres]]\nname = \"standby\"\nurl = \"{}\"\n\n\
         [[regions.ap-south.postgres]]\nname = \"subscriber\"\nurl = \"{}\"\n\n\
         [[regions.us-east.redis]]\nname = \"redis-master\"\nurl = \"{}\"\n\n\
         [[regions.eu-west.redis]]\nname = \"redis-replica\"\nurl = \"{}\"\n\n\
         [[regions.us-east.seaweedfs]]\nname = \"weed\"\nurl = \"{}\"\n\n\
         [[regions.us-east.seaweedfs]]\nname = \"filer-us\"\nurl = \"{}\"\nrole = \"filer\"\n\n\
         [[regions.eu-west.seaweedfs]]\nname = \"filer-eu\"\nurl = \"{}\"\nrole = \"filer\"\n\n\
         [[regions.us-east.seaweedfs]]\nname = \"filer-sync\"\nurl = \"{}\"\nrole = \"filer_sync\"\n\
         filer_a = \"filer-us\"\nfiler_b = \"filer-eu\"\n\n\
         [[regions.us-east.redis]]\nname = \"sentinel\"\nurl = \"redis://127.0.0.1:{}\"\nrole = \"sentinel\"\n\
         password_env = \"REDIS_PW\"\n\n\
         [[regions.us-east.redis]]\nname = \"cluster\"\nurl = \"redis://127.0.0.1:{}\"\nrole = \"cluster\"\n\
         password_env = \"REDIS_PW\"\n\n\
         [gates.deploy]\nmax_lag = \"500ms\"\nfor = \"10s\"\n",
        pg.monitor_url(),
        pg_standby.monitor_url(),
        pg_subscriber.monitor_url(),
        redis_master.url(),
        redis_replica.url(),
        weed.url(),
        filers_us.filer.url(),
        filers_eu.filer.url(),
        sync.url(),
        sentinel.port,
        cluster.nodes[0].port
    );
    let replag = Replag::start(&config, &[("REDIS_PW", PASSWORD)]).await;
    let _pg_writes = Workload::start(&pg, Duration::from_millis(100), Duration::from_secs(180)).await;
    let _redis_writes = RedisWorkload::start(&redis_master, Duration::from_millis(100), Duration::from_secs(180)).await;

    // 1. Every metric an alert or a panel names is one replag emits: in a
    //    healthy lab, but for what exists only while a primary is lost
    //    (tests/it/failover.rs sees those against a real failover).
    let only_while_failing = ["replag_data_at_risk_bytes"];
    let referenced: BTreeSet<String> = metric_names(RULES)
        .union(&metric_names(DASHBOARD))
        .filter(|n| !only_while_failing.contains(&n.as_str()))
        .cloned()
        .collect();
    let missing = wait_for("every referenced metric in a scrape", Duration::from_secs(30), || async {
        let s = replag.scrape().await;
        let emitted: BTreeSet<String> = s.samples.iter().map(|x| x.name.clone()).collect();
        let missing: Vec<&String> = referenced.iter().filter(|n| !emitted.contains(*n)).collect();
        missing.is_empty().then_some(missing.len())
    })
    .await;
    assert_eq!(missing, 0);
    println!("{} metric names referenced by alerts and the dashboard, all emitted", referenced.len());

    // 2. A real Prometheus scrapes replag with the rules, `for` of
    //    ReplicationLagHigh shortened to 5s in this copy only.
    let at = RULES.find("- alert: ReplicationLagHigh").unwrap();
    let for_at = at + RULES[at..].find("for: 5m").unwrap();
    let test_rules = format!("{}for: 5s{}", &RULES[..for_at], &RULES[for_at + "for: 5m".len()..]);
    let am = alertmanager().await;
    let prom = prometheus(&format!("127.0.0.1:{}", replag.port), &test_rules, &am).await;
    let rules_loaded = prom.get_json("/api/v1/rules").await.unwrap();
    let loaded = rules_loaded["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().unwrap().len())
        .sum::<usize>();
    assert_eq!(loaded, RULES.matches("- alert:").count(), "Prometheus loaded every rule");

    // 3. Every dashboard query evaluates and returns data.
    let queries = dashboard_queries();
    wait_for("every dashboard query to return data", Duration::from_secs(60), || async {
        for (_, expr) in &queries {
            match query(&prom, expr).await {
                Some(result) if !result.is_empty() => {}
                _ => return None,
            }
        }
        Some(())
    })
    .await;
    for (title, expr) in &queries {
        let result = query(&prom, expr).await.unwrap_or_else(|| panic!("{title}: {expr} fails"));
        assert!(!result.is_empty(), "{title}: {expr} returns no data");
    }
    println!("{} dashboard queries evaluated with data", queries.len());
    let healthy = prom.get_json("/api/v1/alerts").await.unwrap();
    let firing: Vec<&Value> =
        healthy["data"]["alerts"].as_array().unwrap().iter().filter(|a| a["state"] == "firing").collect();
    assert!(firing.is_empty(), "nothing fires on a healthy lab: {firing:?}");

    // 4. Lag for real: the standby pauses replay under writes; past 30 s
    //    ReplicationLagHigh goes pending, then firing, then reaches Alertmanager.
    pg_standby.exec("SELECT pg_wal_replay_pause()").await;
    let alert = wait_for("ReplicationLagHigh to fire", Duration::from_secs(90), || async {
        let v = prom.get_json("/api/v1/alerts").await?;
        v["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == "ReplicationLagHigh" && a["state"] == "firing")
            .cloned()
    })
    .await;
    assert_eq!(alert["labels"]["replica"], "standby");
    assert_eq!(alert["labels"]["severity"], "warning");
    assert!(alert["annotations"]["summary"].as_str().unwrap().starts_with("Cross-region replication lag is "));
    let received = wait_for("Alertmanager to receive it", Duration::from_secs(30), || async {
        let v = am.get_json("/api/v2/alerts").await?;
        v.as_array()?.iter().find(|a| a["labels"]["alertname"] == "ReplicationLagHigh").cloned()
    })
    .await;
    assert_eq!(received["labels"]["source"], "primary");
    assert_eq!(received["labels"]["replica_region"], "eu-west");
    let others = prom.get_json("/api/v1/alerts").await.unwrap();
    for a in others["data"]["alerts"].as_array().unwrap() {
        if a["labels"]["alertname"] == "ReplicationLagHigh" {
            assert_eq!(a["labels"]["replica"], "standby", "only the paused link alerts: {a}");
        }
    }
    println!(
        "ReplicationLagHigh fired for primary -> standby and reached Alertmanager: {}",
        received["annotations"]["summary"]
    );
    pg_standby.exec("SELECT pg_wal_replay_resume()").await;
}
