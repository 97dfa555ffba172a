//! Process lifecycle: replag stops cleanly on SIGTERM and SIGINT, reloads
//! on SIGHUP, and takes the command-line conventions of exporters.

use crate::common;

use std::time::{Duration, Instant};

use common::{free_port, run_replag, Replag, Scrape};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_stop_replag_cleanly() {
    for signal in ["-TERM", "-INT"] {
        // A node that refuses: replag still serves, and still stops promptly.
        let config = format!(
            "[[regions.r1.postgres]]\nname = \"nowhere\"\nurl = \"postgresql://u:p@127.0.0.1:{}/db\"\n",
            free_port()
        );
        let mut replag = Replag::start(&config, &[]).await;
        assert_eq!(replag.get("/healthz").await.unwrap().0, 200);
        let started = Instant::now();
        let status = std::process::Command::new("kill").args([signal, &replag.pid().to_string()]).status().unwrap();
        assert!(status.success());
        let code = replag.wait_exit(Duration::from_secs(10)).expect("replag exits after the signal");
        assert_eq!(code, Some(0), "{signal}: clean exit");
        // An idle keep-alive connection (the test's own client) must not hold it up.
        assert!(started.elapsed() < Duration::from_secs(3), "{signal}: stopped in {:?}", started.elapsed());
        assert!(replag.log().contains("shut down"), "{}", replag.log());
    }
}

/// SIGHUP: a valid new config adds nodes and swaps gates without a restart;
/// an invalid one is refused, the old one stays, and both are visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_config_or_keeps_the_old_one() {
    let node = |name: &str| {
        format!("[[regions.r.postgres]]\nname = \"{name}\"\nurl = \"postgresql://u:p@127.0.0.1:{}/db\"\n", free_port())
    };
    let first = format!("[poll]\ninterval = \"200ms\"\n\n{}\n[gates.alpha]\nmax_lag = \"1s\"\n", node("one"));
    let mut replag = Replag::start(&first, &[]).await;
    let hangup = |pid: u32| {
        let status = std::process::Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap();
        assert!(status.success());
    };
    assert_eq!(replag.get("/gate/alpha").await.unwrap().0, 503, "alpha exists (and fails closed: no node answers)");

    // Valid: a second node and a different gate.
    let header = format!("[server]\nlisten = \"127.0.0.1:{}\"\n\n", replag.port);
    std::fs::write(
        &replag.config_path,
        format!(
            "{header}[poll]\ninterval = \"200ms\"\n\n{}\n{}\n[gates.beta]\nmax_lag = \"2s\"\n",
            node("one"),
            node("two")
        ),
    )
    .unwrap();
    hangup(replag.pid());
    let s = common::wait_for("the new config to be in force", Duration::from_secs(10), || async {
        let s = replag.scrape().await;
        let in_force = s.get("replag_node_up", &[("node", "two")]).is_some()
            && s.get("replag_config_last_reload_successful", &[]).is_some();
        (in_force && replag.get("/gate/beta").await.ok()?.0 != 404).then_some(s)
    })
    .await;
    assert_eq!(s.get("replag_config_last_reload_successful", &[]), Some(1.0));
    assert_eq!(replag.get("/gate/alpha").await.unwrap().0, 404, "a removed gate is gone");

    // Invalid: refused, and the config in force stays.
    std::fs::write(&replag.config_path, format!("{header}[poll]\ninterval = \"never\"\n")).unwrap();
    hangup(replag.pid());
    let s = common::wait_for("the refusal to show", Duration::from_secs(10), || async {
        let s = replag.scrape().await;
        (s.get("replag_config_last_reload_successful", &[]) == Some(0.0)).then_some(s)
    })
    .await;
    assert!(s.get("replag_node_up", &[("node", "two")]).is_some(), "the previous config stays");
    assert_ne!(replag.get("/gate/beta").await.unwrap().0, 404);
    assert!(
        replag.log().contains("config reload refused") && replag.log().contains("poll.interval"),
        "{}",
        replag.log()
    );
    assert!(replag.is_running());
}

/// What people type for exporters out of habit: `--version`,
/// `--web.listen-address`, `--web.telemetry-path`, `--log.level`,
/// `--log.format`; and the `process_*` families on /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporter_conventions() {
    let (code, out, _) = run_replag(&["--version"], &[]);
    assert_eq!(code, 0);
    let revision = out.split("(revision ").nth(1).and_then(|r| r.split(',').next()).unwrap_or("");
    assert!(out.starts_with(&format!("replag {} (revision ", env!("CARGO_PKG_VERSION"))), "{out}");
    assert!(revision.len() == 12 || revision == "unknown", "a git revision: {out}");
    assert!(out.contains(", built 20"), "a build date: {out}");

    let (code, _, err) = run_replag(&["--log.level", "banana", "check"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--log.level") && err.contains("banana"), "{err}");
    let (code, _, err) = run_replag(&["serve", "--web.telemetry-path", "/healthz"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("--web.telemetry-path") && err.contains("another of replag's endpoints"), "{err}");

    let node = format!("[[regions.r1.redis]]\nname = \"gone\"\nurl = \"redis://127.0.0.1:{}\"\n", free_port());
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut replag = Replag::spawn(
        &node,
        &[],
        &["--web.listen-address", &address, "--web.telemetry-path", "/prom/metrics", "--log.format", "json"],
    );
    let client = reqwest::Client::new();
    let text = common::wait_for("metrics on the moved path", Duration::from_secs(20), || async {
        let r = client.get(format!("http://{address}/prom/metrics")).send().await.ok()?;
        r.status().is_success().then_some(())?;
        r.text().await.ok()
    })
    .await;
    let s = Scrape::parse(text);
    for family in
        ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"]
    {
        assert!(s.get(family, &[]).is_some_and(|v| v > 0.0 || family == "process_cpu_seconds_total"), "{family}");
    }
    let rss = s.get("process_resident_memory_bytes", &[]).unwrap();
    assert!(rss > 1e6 && rss < 512e6, "resident memory of replag itself: {rss}");
    let old = client.get(format!("http://{address}/metrics")).send().await.unwrap();
    assert_eq!(old.status().as_u16(), 404, "/metrics moved");

    // gzip when asked (Prometheus asks), plain otherwise; either way the same page.
    let asked = |encoding: &'static str| {
        let request = client.get(format!("http://{address}/prom/metrics"));
        async move {
            let r = request.header("Accept-Encoding", encoding).send().await.unwrap();
            let header = |name: &str| r.headers().get(name).map(|v| v.to_str().unwrap().to_string());
            let (encoding, vary) = (header("content-encoding"), header("vary"));
            (encoding, vary, r.bytes().await.unwrap())
        }
    };
    let (encoding, vary, body) = asked("gzip, deflate").await;
    assert_eq!((encoding.as_deref(), vary.as_deref()), (Some("gzip"), Some("Accept-Encoding")));
    let mut unzipped = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut unzipped).expect("valid gzip");
    assert!(body.len() * 3 < unzipped.len(), "compressed: {} of {} bytes", body.len(), unzipped.len());
    let (encoding, vary, plain) = asked("identity").await;
    assert_eq!((encoding, vary.as_deref()), (None, Some("Accept-Encoding")));
    let families = |text: &str| -> std::collections::BTreeSet<String> {
        Scrape::parse(text.to_string()).samples.into_iter().map(|s| s.name).collect()
    };
    assert_eq!(families(&unzipped), families(std::str::from_utf8(&plain).unwrap()));
    replag.kill();
    let log = replag.log();
    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    assert!(lines.iter().any(|l| l["level"] == "WARN" && l["node"] == "gone"), "{log}");
}
