//! The deploy gate against real replication: HTTP and CLI, pass and fail,
//! fail closed, bad parameters.

use crate::common;

use std::time::{Duration, Instant};

use common::postgres::{pair, pair_config, PgServer, Workload};
use common::{run_replag, wait_for, Replag};
use serde_json::Value;

/// The pair's config plus a named gate `deploy`: 500 ms for 2 s.
fn config(primary: &PgServer, standby: &PgServer) -> String {
    format!("{}\n[gates.deploy]\nmax_lag = \"500ms\"\nfor = \"2s\"\n", pair_config(primary, standby))
}

async fn gate(replag: &Replag, path: &str) -> (u16, Value) {
    let (status, body) = replag.get(path).await.expect("gate answers");
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path} body is JSON ({e}): {body}")))
}

/// Run `replag gate …` off the async runtime: (exit code, stdout, stderr).
async fn cli(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_replag(&args, &[])
    })
    .await
    .unwrap()
}

fn gate_args(replag: &Replag, rest: &[&str]) -> Vec<String> {
    let mut args = vec!["gate".to_string(), "--url".to_string(), replag.url("")];
    args.extend(rest.iter().map(|s| s.to_string()));
    args
}

fn failing_links(v: &Value) -> Vec<&Value> {
    v["links"].as_array().unwrap().iter().filter(|l| l["pass"] == Value::Bool(false)).collect()
}

/// Case 1: a caught-up cluster passes: 200, exit 0, `replag_gate_pass` 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caught_up_cluster_passes() {
    let (primary, standby) = pair("gate-ok").await;
    let replag = Replag::start(&config(&primary, &standby), &[]).await;
    let (status, v) = wait_for("the gate to pass", Duration::from_secs(20), || async {
        let (status, v) = gate(&replag, "/gate/deploy").await;
        (status == 200).then_some((status, v))
    })
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["pass"], true);
    assert_eq!(v["gate"], "deploy");
    assert_eq!(v["limits"]["max_lag_seconds"], 0.5);
    assert_eq!(v["links"].as_array().unwrap().len(), 1);
    assert!(v["links"][0]["lag_seconds"].is_number() && v["evaluated_at"].is_string());
    assert_eq!(gate(&replag, "/gate?max_lag=500ms&system=postgres").await.0, 200);
    let (code, out, _) = cli(gate_args(&replag, &["deploy"])).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("PASS"), "{out}");
    let (code, _, _) = cli(gate_args(&replag, &["--max-lag", "500ms", "--for", "10s"])).await;
    assert_eq!(code, 0);
    assert_eq!(replag.scrape().await.get("replag_gate_pass", &[("gate", "deploy")]), Some(1.0));
}

/// Case 2: lag over the limit for longer than `for` fails, naming the link;
/// the same lag against a longer `for` passes; after recovery `--wait` passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_longer_than_for_fails_shorter_passes() {
    let (primary, standby) = pair("gate-lag").await;
    let replag = Replag::start(&config(&primary, &standby), &[]).await;
    let _writes = Workload::start(&primary, Duration::from_millis(50), Duration::from_secs(90)).await;
    wait_for("the gate to pass first", Duration::from_secs(20), || async {
        (gate(&replag, "/gate/deploy").await.0 == 200).then_some(())
    })
    .await;
    standby.exec("SELECT pg_wal_replay_pause()").await;
    // Over 500 ms for at least 3 s.
    let (status, failing) = wait_for("a breach of 3 s", Duration::from_secs(20), || async {
        let (status, v) = gate(&replag, "/gate?max_lag=500ms&for=3s").await;
        (status == 503 && v["links"][0]["breach_seconds"].as_f64().is_some_and(|b| b >= 3.0)).then_some((status, v))
    })
    .await;
    assert_eq!(status, 503);
    let bad = failing_links(&failing);
    assert_eq!(bad.len(), 1);
    assert_eq!((bad[0]["source"].as_str(), bad[0]["replica"].as_str()), (Some("primary"), Some("standby")));
    assert!(bad[0]["reason"].as_str().unwrap().contains("over max_lag"), "{failing}");
    assert!(bad[0]["breach_since"].is_string());
    println!("failing gate body:\n{}", serde_json::to_string_pretty(&failing).unwrap());

    // The same breach, but shorter than `for`: brief spikes pass.
    let (status, v) = gate(&replag, "/gate?max_lag=500ms&for=10m").await;
    assert_eq!(status, 200, "{v}");
    assert!(v["links"][0]["reason"].as_str().unwrap().contains("less than for"));

    let (code, out, _) = cli(gate_args(&replag, &["deploy"])).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAIL") && out.contains("primary (us-east) -> standby (eu-west)"), "{out}");
    println!("replag gate deploy (exit {code}):\n{out}");
    assert_eq!(replag.scrape().await.get("replag_gate_pass", &[("gate", "deploy")]), Some(0.0));

    standby.exec("SELECT pg_wal_replay_resume()").await;
    let started = Instant::now();
    let (code, out, err) = cli(gate_args(&replag, &["--max-lag", "500ms", "--wait", "30s", "--every", "500ms"])).await;
    assert_eq!(code, 0, "--wait passes once the standby catches up: {out}{err}");
    println!("--wait passed after {:.1} s", started.elapsed().as_secs_f64());
}

/// Case 3: a link down fails closed with that reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_down_fails_closed() {
    let (primary, mut standby) = pair("gate-down").await;
    let replag = Replag::start(&config(&primary, &standby), &[]).await;
    wait_for("the gate to pass first", Duration::from_secs(20), || async {
        (gate(&replag, "/gate/deploy").await.0 == 200).then_some(())
    })
    .await;
    standby.stop();
    let v = wait_for("the gate to fail", Duration::from_secs(20), || async {
        let (status, v) = gate(&replag, "/gate?max_lag=10s&for=60s").await;
        (status == 503).then_some(v)
    })
    .await;
    let reason = failing_links(&v)[0]["reason"].as_str().unwrap().to_string();
    assert!(reason.starts_with("link down") || reason.contains("is down"), "{reason}");
    let (code, out, _) = cli(gate_args(&replag, &["deploy"])).await;
    assert_eq!(code, 1, "{out}");
}

/// Case 4: replag just started on a link that is already behind: less
/// history than `for`, over the limit for all of it — fails closed (documented).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_at_start_with_short_history_fails_closed() {
    let (primary, standby) = pair("gate-start").await;
    let _writes = Workload::start(&primary, Duration::from_millis(50), Duration::from_secs(60)).await;
    standby.exec("SELECT pg_wal_replay_pause()").await;
    // Behind before replag starts: the standby has received WAL it has not replayed.
    wait_for("the standby to fall behind", Duration::from_secs(10), || async {
        let row = standby
            .admin()
            .await
            .query_one("SELECT pg_last_wal_receive_lsn() - pg_last_wal_replay_lsn() > 10000", &[])
            .await
            .ok()?;
        row.get::<_, bool>(0).then_some(())
    })
    .await;
    let replag = Replag::start(&config(&primary, &standby), &[]).await;
    let v = wait_for("lag data", Duration::from_secs(20), || async {
        let (_, v) = gate(&replag, "/gate?max_lag=500ms&for=60s").await;
        v["links"][0]["lag_seconds"].is_number().then_some(v)
    })
    .await;
    assert_eq!(v["pass"], false, "{v}");
    let reason = v["links"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("history"), "{reason}");
    println!("just started, lagging: {reason}");
}

/// Case 5: bad parameters are 400 naming the parameter, an unknown gate is
/// 404; the CLI maps them to exit 2, honours `--wait`, and exits 2 when the
/// server is unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_cli_exit_codes() {
    let (primary, mut standby) = pair("gate-bad").await;
    let replag = Replag::start(&config(&primary, &standby), &[]).await;
    for (query, param) in [
        ("max_lag=banana", "max_lag"),
        ("max_lag=-1s", "max_lag"),
        ("max_lag=1000d", "max_lag"),
        ("for=2h", "for"),
        ("max_lag_bytes=lots", "max_lag_bytes"),
        ("system=oracle", "system"),
        ("colour=blue", "colour"),
    ] {
        let (status, v) = gate(&replag, &format!("/gate?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(v["param"], param, "{query}: {v}");
        assert!(v["error"].as_str().unwrap().starts_with(param), "{v}");
    }
    let (status, v) = gate(&replag, "/gate/nope").await;
    assert_eq!(status, 404);
    assert!(v["error"].as_str().unwrap().contains("deploy"), "lists the configured gates: {v}");

    let (code, _, err) = cli(gate_args(&replag, &["--max-lag", "banana"])).await;
    assert_eq!(code, 2);
    assert!(err.contains("max_lag"), "{err}");
    assert_eq!(cli(gate_args(&replag, &["nope"])).await.0, 2);

    // A failing gate with --wait: exit 1 once the deadline has passed, not long after.
    // First passing, so the failure below is the stop's, not start-up's "no data yet".
    wait_for("the gate to pass", Duration::from_secs(20), || async {
        (gate(&replag, "/gate/deploy").await.0 == 200).then_some(())
    })
    .await;
    standby.stop();
    wait_for("the gate to fail", Duration::from_secs(20), || async {
        (gate(&replag, "/gate/deploy").await.0 == 503).then_some(())
    })
    .await;
    let started = Instant::now();
    let (code, _, _) = cli(gate_args(&replag, &["deploy", "--wait", "3s", "--every", "1s"])).await;
    let waited = started.elapsed();
    assert_eq!(code, 1);
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(8),
        "waited {waited:?} for a 3 s deadline"
    );

    // Unreachable: exit 2, at once and after --wait.
    let nowhere = format!("http://127.0.0.1:{}", common::free_port());
    let (code, _, err) =
        cli(vec!["gate".into(), "--url".into(), nowhere.clone(), "--max-lag".into(), "1s".into()]).await;
    assert_eq!(code, 2);
    assert!(err.contains("cannot reach"), "{err}");
    let (code, _, _) = cli(vec![
        "gate".into(),
        "--url".into(),
        nowhere,
        "--max-lag".into(),
        "1s".into(),
        "--wait".into(),
        "2s".into(),
    ])
    .await;
    assert_eq!(code, 2);
}
