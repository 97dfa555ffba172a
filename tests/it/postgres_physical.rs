//! PostgreSQL physical streaming replication against real servers: lag is
//! made to happen for real and replag's figures are checked against it.

use crate::common;

use std::time::{Duration, Instant};

use common::postgres::{pair, pair_config, Workload, MONITOR_PASSWORD, MONITOR_USER};
use common::{free_port, run_replag, wait_for, Replag, Scrape};

const PRIMARY_TO_STANDBY: [(&str, &str); 6] = [
    ("system", "postgres"),
    ("kind", "physical"),
    ("source", "primary"),
    ("source_region", "us-east"),
    ("replica", "standby"),
    ("replica_region", "eu-west"),
];

fn lag_seconds(s: &Scrape) -> Option<f64> {
    s.get("replag_lag_seconds", &PRIMARY_TO_STANDBY)
}

fn lag_bytes(s: &Scrape) -> Option<f64> {
    s.get("replag_lag_bytes", &PRIMARY_TO_STANDBY)
}

fn link_up(s: &Scrape) -> Option<f64> {
    s.get("replag_link_up", &PRIMARY_TO_STANDBY)
}

async fn wait_for_lag(replag: &Replag, what: &str, limit: Duration, ok: impl Fn(f64, f64) -> bool) -> Scrape {
    wait_for(what, limit, || async {
        let s = replag.scrape().await;
        match (lag_seconds(&s), lag_bytes(&s)) {
            (Some(secs), Some(bytes)) if ok(secs, bytes) => Some(s),
            _ => None,
        }
    })
    .await
}

/// Case 1: an idle primary and a caught-up standby show 0 s and 0 bytes, for
/// a sustained period, although the last replayed commit gets ever older
/// (which is what `now() - pg_last_xact_replay_timestamp()` reports as lag).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_primary_and_caught_up_standby_report_zero() {
    let (primary, standby) = pair("idle").await;
    let replag = Replag::start(&pair_config(&primary, &standby), &[]).await;
    // Up, and measured: the primary's own first poll (its WAL history) is in.
    wait_for("the link to be up and measured", Duration::from_secs(20), || async {
        let s = replag.scrape().await;
        (link_up(&s) == Some(1.0) && lag_seconds(&s).is_some()).then_some(())
    })
    .await;
    let started = Instant::now();
    let mut scrapes = 0;
    let mut last = None;
    while started.elapsed() < Duration::from_secs(12) {
        let s = replag.scrape().await;
        assert_eq!(lag_seconds(&s), Some(0.0), "idle lag seconds at {:?}\n{}", started.elapsed(), s.text);
        assert_eq!(lag_bytes(&s), Some(0.0), "idle lag bytes at {:?}", started.elapsed());
        assert_eq!(link_up(&s), Some(1.0));
        assert_eq!(s.get("replag_lag_lower_bound", &PRIMARY_TO_STANDBY), Some(0.0));
        scrapes += 1;
        last = Some(s);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let last = last.unwrap();
    assert_eq!(last.all("replag_link_up", &[]).len(), 1, "one link, no phantom discoveries: {}", last.text);
    let node = [("node", "standby")];
    let replay_ts = last.get("replag_pg_last_xact_replay_timestamp_seconds", &node).unwrap();
    let naive = chrono::Utc::now().timestamp() as f64 - replay_ts;
    println!("idle: {scrapes} scrapes over 12 s, all lag 0 s / 0 bytes; now() - pg_last_xact_replay_timestamp() = {naive:.1} s");
    assert!(naive >= 10.0, "the naive metric would have alarmed: {naive}");
}

/// Case 2: `recovery_min_apply_delay = '5s'` under writes: replay lag ≈ 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_delay_is_reported_as_its_duration() {
    let (primary, standby) = pair("delay").await;
    standby.exec("ALTER SYSTEM SET recovery_min_apply_delay = '5s'").await;
    standby.exec("SELECT pg_reload_conf()").await;
    let replag = Replag::start(&pair_config(&primary, &standby), &[]).await;
    let _writes = Workload::start(&primary, Duration::from_millis(50), Duration::from_secs(90)).await;
    // The delay takes effect from the first commit after the reload.
    wait_for_lag(&replag, "lag to reach the apply delay", Duration::from_secs(30), |s, _| s > 4.5).await;
    let mut seen = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let s = replag.scrape().await;
        let (secs, bytes) = (lag_seconds(&s).unwrap(), lag_bytes(&s).unwrap());
        assert!(bytes > 0.0, "a delayed standby under writes trails in bytes too");
        assert_eq!(link_up(&s), Some(1.0), "a delayed standby is still streaming");
        seen.push(secs);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    seen.sort_by(f64::total_cmp);
    let median = seen[seen.len() / 2];
    println!(
        "apply delay 5 s: replag reported min {:.3} s, median {median:.3} s, max {:.3} s over {} scrapes",
        seen[0],
        seen[seen.len() - 1],
        seen.len()
    );
    assert!(seen.iter().all(|s| (4.0..=6.0).contains(s)), "every sample within 5 ± 1 s: {seen:?}");
    assert!((4.5..=5.5).contains(&median), "median within 5 ± 0.5 s: {median}");
}

/// Case 3: `pg_wal_replay_pause()` under writes: lag grows at ~1 s/s; after
/// `pg_wal_replay_resume()` it returns to ~0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_replay_grows_one_second_per_second_then_recovers() {
    let (primary, standby) = pair("pause").await;
    let replag = Replag::start(&pair_config(&primary, &standby), &[]).await;
    let _writes = Workload::start(&primary, Duration::from_millis(50), Duration::from_secs(90)).await;
    wait_for_lag(&replag, "a streaming standby under writes", Duration::from_secs(20), |s, _| s < 1.0).await;

    standby.exec("SELECT pg_wal_replay_pause()").await;
    let first = wait_for_lag(&replag, "lag to start growing", Duration::from_secs(10), |s, _| s > 1.0).await;
    assert_eq!(first.get("replag_pg_replay_paused", &[("node", "standby")]), Some(1.0));
    let (t_a, lag_a, bytes_a) = (Instant::now(), lag_seconds(&first).unwrap(), lag_bytes(&first).unwrap());
    // A measurement window, not a readiness wait: the slope is the assertion.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let second = replag.scrape().await;
    let (t_b, lag_b, bytes_b) = (Instant::now(), lag_seconds(&second).unwrap(), lag_bytes(&second).unwrap());
    let slope = (lag_b - lag_a) / (t_b - t_a).as_secs_f64();
    println!(
        "paused replay: lag {lag_a:.2} s -> {lag_b:.2} s over {:.2} s: {slope:.3} s/s; bytes {bytes_a} -> {bytes_b}",
        (t_b - t_a).as_secs_f64()
    );
    assert!((0.8..=1.2).contains(&slope), "lag grows about 1 s per second while paused: {slope}");
    assert!(bytes_b > bytes_a, "bytes grow while paused under writes");
    assert_eq!(link_up(&second), Some(1.0), "paused replay is not a broken link");

    standby.exec("SELECT pg_wal_replay_resume()").await;
    let caught_up =
        wait_for_lag(&replag, "lag to return to ~0 after resume", Duration::from_secs(20), |s, _| s < 1.0).await;
    println!("after resume: lag {:.3} s, {} bytes", lag_seconds(&caught_up).unwrap(), lag_bytes(&caught_up).unwrap());
}

/// Case 4: standby stopped: link down (series present), the exporter keeps
/// serving, lag keeps growing under writes; it recovers when the standby returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_standby_is_a_down_link_that_recovers() {
    let (primary, mut standby) = pair("stop").await;
    let replag = Replag::start(&pair_config(&primary, &standby), &[]).await;
    let _writes = Workload::start(&primary, Duration::from_millis(50), Duration::from_secs(90)).await;
    wait_for_lag(&replag, "a streaming standby", Duration::from_secs(20), |s, _| s < 1.0).await;

    standby.stop();
    let down = wait_for("the link to go down", Duration::from_secs(15), || async {
        let s = replag.scrape().await;
        (link_up(&s) == Some(0.0)).then_some(s)
    })
    .await;
    assert_eq!(down.get("replag_node_up", &[("node", "standby")]), Some(0.0));
    assert_eq!(down.get("replag_node_up", &[("node", "primary")]), Some(1.0));
    // The open connection breaks first ("query"), the reconnect is refused next.
    wait_for("the standby to be reported as refusing connections", Duration::from_secs(10), || async {
        let s = replag.scrape().await;
        (s.get("replag_node_failing", &[("node", "standby"), ("reason", "connect")]) == Some(1.0)).then_some(())
    })
    .await;
    let lag_then = lag_seconds(&down).expect("the lag series stays while the link is down");
    let grown =
        wait_for_lag(&replag, "lag to keep growing while down", Duration::from_secs(15), |s, _| s > lag_then + 3.0)
            .await;
    assert_eq!(link_up(&grown), Some(0.0));
    assert_eq!(replag.get("/healthz").await.unwrap().0, 200);
    let (_, status) = replag.get("/api/v1/status").await.unwrap();
    assert!(status.contains("not in primary's pg_stat_replication"), "the reason is visible: {status}");

    standby.start();
    let back = wait_for("the link to recover", Duration::from_secs(30), || async {
        let s = replag.scrape().await;
        (link_up(&s) == Some(1.0) && lag_seconds(&s).is_some_and(|l| l < 2.0)).then_some(s)
    })
    .await;
    println!(
        "stopped standby: link down with lag growing ({lag_then:.1} s -> {:.1} s); back up with lag {:.3} s",
        lag_seconds(&grown).unwrap(),
        lag_seconds(&back).unwrap()
    );
}

/// Case 5: standby promoted: no panic, no giant bogus lag, the new role shows,
/// and two primaries with one system identifier are flagged on the link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promoted_standby_shows_its_new_role_without_bogus_lag() {
    let (primary, standby) = pair("promote").await;
    let mut replag = Replag::start(&pair_config(&primary, &standby), &[]).await;
    let writes = Workload::start(&primary, Duration::from_millis(50), Duration::from_secs(90)).await;
    wait_for_lag(&replag, "a streaming standby", Duration::from_secs(20), |s, _| s < 1.0).await;

    standby.promote();
    let promoted = wait_for("the standby to show as a primary", Duration::from_secs(15), || async {
        let s = replag.scrape().await;
        (!s.all("replag_node_info", &[("node", "standby"), ("role", "primary")]).is_empty()).then_some(s)
    })
    .await;
    assert_eq!(promoted.get("replag_pg_timeline", &[("node", "standby")]), Some(2.0));
    // The new primary takes writes on its own timeline.
    let _new_writes = Workload::start(&standby, Duration::from_millis(50), Duration::from_secs(30)).await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        let s = replag.scrape().await;
        for sample in s.all("replag_lag_seconds", &[]) {
            assert!(sample.value < 5.0, "no bogus lag after promotion: {sample:?}");
        }
        assert_eq!(link_up(&s), Some(0.0), "the old link is not streaming any more");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, status) = replag.get("/api/v1/status").await.unwrap();
    assert!(status.contains("same system identifier"), "split brain is named: {status}");
    drop(writes);
    assert!(replag.is_running(), "replag survived the promotion");
}

/// Case 6: wrong password, refused connection, a server that never answers:
/// those nodes are down with the reason, everything else keeps working, and
/// the password appears nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_nodes_are_down_with_a_reason_and_never_leak_the_password() {
    let (primary, standby) = pair("fail").await;
    let wrong_password = "Wr0ng-pw-d41d8cd9";
    // Accepts TCP, never answers: a hung server.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung_port = hung.local_addr().unwrap().port();
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hung.accept().await {
            held.push(socket);
        }
    });
    let refused_port = free_port();
    let config = format!(
        "{}\n[[regions.ap-south.postgres]]\nname = \"bad-password\"\nurl = \"postgresql://replag_mon:{wrong_password}@127.0.0.1:{}/postgres\"\n\n\
         [[regions.ap-south.postgres]]\nname = \"refused\"\nurl = \"postgresql://replag_mon:{wrong_password}@127.0.0.1:{refused_port}/postgres\"\n\n\
         [[regions.ap-south.postgres]]\nname = \"hung\"\nurl = \"postgresql://replag_mon@127.0.0.1:{hung_port}/postgres\"\npassword_env = \"HUNG_PW\"\n",
        pair_config(&primary, &standby),
        primary.port,
    );
    let replag = Replag::start(&config, &[("HUNG_PW", wrong_password)]).await;
    let s = wait_for("every node to be polled", Duration::from_secs(20), || async {
        let s = replag.scrape().await;
        // The hung server is given poll.connect_timeout (5 s) to answer.
        let reported = [("bad-password", "auth"), ("refused", "connect"), ("hung", "timeout")]
            .iter()
            .all(|(n, reason)| s.get("replag_node_failing", &[("node", n), ("reason", reason)]) == Some(1.0));
        (reported && link_up(&s) == Some(1.0) && lag_seconds(&s).is_some()).then_some(s)
    })
    .await;
    for (node, reason) in [("bad-password", "auth"), ("refused", "connect"), ("hung", "timeout")] {
        assert_eq!(s.get("replag_node_up", &[("node", node)]), Some(0.0), "{node}");
        assert_eq!(
            s.get("replag_node_failing", &[("node", node), ("reason", reason)]),
            Some(1.0),
            "{node} is {reason}"
        );
    }
    assert_eq!(s.get("replag_node_up", &[("node", "primary")]), Some(1.0));
    assert_eq!(s.get("replag_node_up", &[("node", "standby")]), Some(1.0));
    assert_eq!(lag_seconds(&s), Some(0.0));

    let log = replag.log();
    assert!(log.contains("bad-password") && log.contains("password authentication failed"), "reason logged:\n{log}");
    assert!(log.contains("refused") && log.contains("hung"), "every failing node is logged:\n{log}");
    let (_, status) = replag.get("/api/v1/status").await.unwrap();
    let (_, page) = replag.get("/").await.unwrap();
    let (code, check_out, check_err) =
        run_replag(&["check", "--config", replag.config_path.to_str().unwrap()], &[("HUNG_PW", wrong_password)]);
    assert_eq!(code, 1, "check exits non-zero when a node is unreachable:\n{check_out}{check_err}");
    assert!(check_out.contains("password authentication failed"), "{check_out}");
    for (what, text) in [
        ("log", &log),
        ("metrics", &s.text),
        ("api", &status),
        ("page", &page),
        ("check", &check_out),
        ("check stderr", &check_err),
    ] {
        for secret in [wrong_password, MONITOR_PASSWORD] {
            assert!(!text.contains(secret), "the password leaked into the {what}");
        }
    }
}

/// A primary's position reads between polls take a connection of their
/// own. When the server refuses it (here: the role's connection limit,
/// as `max_connections` would), the node stays up and measured at poll
/// resolution, the log says so once, and reads resume when they can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_position_reads_leave_the_node_up_and_resume() {
    let (primary, standby) = pair("sampler").await;
    primary.exec(&format!("ALTER ROLE {MONITOR_USER} CONNECTION LIMIT 1")).await;
    let config =
        pair_config(&primary, &standby).replace("timeout = \"400ms\"", "timeout = \"400ms\"\nmax_backoff = \"2s\"");
    let replag = Replag::start(&config, &[]).await;
    let _writes = Workload::start(&primary, Duration::from_millis(50), Duration::from_secs(60)).await;
    wait_for("the refused reads to be logged", Duration::from_secs(20), || async {
        replag.log().contains("position reads between polls failed").then_some(())
    })
    .await;
    // The standby's first poll may come after the refusal (a loaded machine).
    replag.wait_until("the link up", Duration::from_secs(20), |s| link_up(s) == Some(1.0)).await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        let s = replag.scrape().await;
        assert_eq!(s.get("replag_node_up", &[("node", "primary")]), Some(1.0), "the poll's connection is fine");
        assert_eq!(link_up(&s), Some(1.0));
        let lag = lag_seconds(&s).expect("measured from polls");
        assert!(lag < 1.5, "a caught-up standby reads within a poll interval or so: {lag}");
        assert!(!replag.sampling(&["primary"]).await, "no position read got through the connection limit");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let log = replag.log();
    assert!(log.contains("too many connections for role"), "the server's reason is logged:\n{log}");
    assert_eq!(log.matches("position reads between polls failed").count(), 1, "said once, not per retry:\n{log}");
    primary.exec(&format!("ALTER ROLE {MONITOR_USER} CONNECTION LIMIT -1")).await;
    wait_for("position reads to resume", Duration::from_secs(20), || async {
        replag.log().contains("position reads are back").then_some(())
    })
    .await;
    // And the lag is placed finely again: the standby's readings now fall
    // between samples 25 ms apart, not polls.
    let resolution = |s: &Scrape| s.get("replag_lag_resolution_seconds", &PRIMARY_TO_STANDBY);
    wait_for("readings resolved by the position reads", Duration::from_secs(10), || async {
        let s = replag.scrape().await;
        (replag.sampling(&["primary"]).await && resolution(&s).is_some_and(|r| r < 0.1)).then_some(())
    })
    .await;
    assert!(!replag.log().contains(MONITOR_PASSWORD), "no password in the log");
}

/// Case 7: a bad config file stops start-up with a message naming the key.
#[test]
fn bad_config_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[poll]\ninterval = \"soon\"\n", "poll.interval"),
        ("[poll]\ninterval = \"1s\"\ntimeout = \"5s\"\n", "poll.timeout"),
        ("[server]\nlisten = \"everywhere\"\n", "server.listen"),
        ("[[regions.us-east.postgres]]\nname = \"a\"\n", "regions.us-east.postgres[0].url"),
        (
            "[[regions.us-east.postgres]]\nname = \"a b\"\nurl = \"postgresql://h/db\"\n",
            "regions.us-east.postgres[0].name",
        ),
        (
            "[[regions.us-east.postgres]]\nname = \"a\"\nurl = \"postgresql://h/db\"\nupstream = \"nobody\"\n",
            "upstream",
        ),
        (
            "[[regions.us-east.postgres]]\nname = \"a\"\nurl = \"postgresql://h/db\"\npasword_file = \"/x\"\n",
            "pasword_file",
        ),
        ("this is not toml", "invalid configuration"),
    ];
    for (i, (body, key)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.toml"));
        let body = if body.contains("regions") || body.contains("not toml") {
            body.to_string()
        } else {
            format!("{body}[[regions.r.postgres]]\nname = \"n\"\nurl = \"postgresql://h/db\"\n")
        };
        std::fs::write(&path, body).unwrap();
        for command in ["serve", "check"] {
            let (code, _, err) = run_replag(&[command, "--config", path.to_str().unwrap()], &[]);
            assert_eq!(code, 2, "{command} with bad config {i} exits 2: {err}");
            assert!(err.contains(key), "{command}: error names {key:?}: {err}");
        }
    }
    let (code, _, err) = run_replag(&["serve", "--config", "/nonexistent/replag.toml"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/replag.toml"), "{err}");
}

/// The exposition passes `promtool check metrics`, and every family of the
/// metric contract (docs/metrics.md) is there for a primary/standby pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool_and_cover_the_contract() {
    let (primary, standby) = pair("promtool").await;
    let replag = Replag::start(&pair_config(&primary, &standby), &[]).await;
    let _writes = Workload::start(&primary, Duration::from_millis(100), Duration::from_secs(30)).await;
    let s = wait_for("stage lag for the link", Duration::from_secs(20), || async {
        let s = replag.scrape().await;
        (!s.all("replag_pg_stage_lag_seconds", &PRIMARY_TO_STANDBY).is_empty()).then_some(s)
    })
    .await;
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/setup installs the prometheus package)");
    use std::io::Write;
    promtool.stdin.take().unwrap().write_all(s.text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && report.trim().is_empty(), "promtool check metrics: {report}");

    for family in [
        "replag_build_info",
        "replag_node_up",
        "replag_node_info",
        "replag_poll_duration_seconds",
        "replag_node_last_success_timestamp_seconds",
        "replag_node_failing",
        "replag_node_polls_total",
        "replag_node_poll_failures_total",
        "replag_lag_seconds",
        "replag_lag_bytes",
        "replag_lag_lower_bound",
        "replag_link_up",
        "replag_link_data_age_seconds",
        "replag_pg_stage_lag_bytes",
        "replag_pg_stage_lag_seconds",
        "replag_pg_walsender_info",
        "replag_pg_wal_position_bytes",
        "replag_pg_timeline",
        "replag_pg_replay_paused",
        "replag_pg_last_xact_replay_timestamp_seconds",
        "replag_pg_wal_receiver_streaming",
        "replag_pg_wal_receiver_last_message_age_seconds",
        "replag_pg_slot_retained_bytes",
        "replag_pg_slot_active",
        "replag_pg_slot_wal_status",
    ] {
        assert!(s.text.contains(&format!("# HELP {family} ")), "{family} has HELP");
        assert!(!s.all(family, &[]).is_empty(), "{family} has samples");
    }
    let content_type = reqwest::get(replag.url("/metrics")).await.unwrap().headers()["content-type"].clone();
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    // No DSN, host:port of a configured node or password in any label.
    assert!(!s.text.contains("127.0.0.1") && !s.text.contains("postgresql://"));
}
