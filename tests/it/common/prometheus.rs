//! Real Prometheus and Alertmanager (Debian packages `prometheus` and
//! `prometheus-alertmanager`) for the tests, on loopback ports.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{free_port, wait_for};

pub struct Daemon {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn get_json(&self, path: &str) -> Option<Value> {
        let response = reqwest::get(self.url(path)).await.ok()?;
        serde_json::from_slice(&response.bytes().await.ok()?).ok()
    }
}

fn spawn(binary: &str, args: &[String], dir: &Path) -> Child {
    let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
    Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{binary} runs (scripts/setup installs it): {e}"))
}

async fn ready(daemon: &Daemon, what: &str) {
    wait_for(what, Duration::from_secs(30), || async {
        let response = reqwest::get(daemon.url("/-/ready")).await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
}

/// Alertmanager with one receiver that does nothing: alerts are read back
/// through its API.
pub async fn alertmanager() -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: sink\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n  - name: sink\n",
    )
    .unwrap();
    let port = free_port();
    let args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.path={}", dir.path().join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--cluster.listen-address=".to_string(),
    ];
    let child = spawn("prometheus-alertmanager", &args, dir.path());
    let daemon = Daemon { port, child, _dir: dir };
    ready(&daemon, "alertmanager to be ready").await;
    daemon
}

/// Prometheus scraping `target` every second as job `replag`, with `rules`
/// (file text) evaluated every second, alerting to `alertmanager`.
pub async fn prometheus(target: &str, rules: &str, alertmanager: &Daemon) -> Daemon {
    prometheus_scraping(&[target], rules, Some(alertmanager)).await
}

/// Prometheus scraping every one of `targets` every second as job `replag`.
pub async fn prometheus_scraping(targets: &[&str], rules: &str, alertmanager: Option<&Daemon>) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             {alerting}\
             scrape_configs:\n  - job_name: replag\n    static_configs:\n      - targets: ['{targets}']\n",
            rules = dir.path().join("rules.yml").display(),
            alerting = alertmanager.map_or(String::new(), |am| format!(
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{}']\n",
                am.port
            )),
            targets = targets.join("', '"),
        ),
    )
    .unwrap();
    let port = free_port();
    let args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", dir.path().join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    let child = spawn("prometheus", &args, dir.path());
    let daemon = Daemon { port, child, _dir: dir };
    ready(&daemon, "prometheus to be ready").await;
    daemon
}

/// An instant query's result vector (None if the query failed).
pub async fn query(prometheus: &Daemon, expr: &str) -> Option<Vec<Value>> {
    let q: String = form_urlencoded::byte_serialize(expr.as_bytes()).collect();
    let v = prometheus.get_json(&format!("/api/v1/query?query={q}")).await?;
    if v["status"] != "success" {
        return None;
    }
    v["data"]["result"].as_array().cloned()
}
