//! Test harness: real servers in temp dirs on loopback ports, the real
//! `replag` binary, and `/metrics` parsed back into numbers.
#![allow(dead_code)]

pub mod browser;
pub mod netfault;
pub mod patroni;
pub mod postgres;
pub mod prometheus;
pub mod redis;
pub mod redis_topology;
pub mod seaweedfs;
pub mod tls;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 for a server the test starts.
///
/// Test processes run side by side (nextest runs every test in a process
/// of its own), so each process claims blocks of ports for itself: a block
/// is claimed by holding a listener on its claim port (61000 + block, above
/// the kernel's ephemeral range 32768–60999), which the kernel releases
/// however the process ends. The ports themselves lie below the ephemeral
/// range, so no outgoing connection can take one between this check and
/// the server's bind.
pub fn free_port() -> u16 {
    use std::net::TcpListener;
    use std::sync::Mutex;
    const FIRST: u16 = 20_000;
    const BLOCK: u16 = 100;
    const BLOCKS: u16 = (32_768 - FIRST) / BLOCK;
    struct Claims {
        held: Vec<TcpListener>,
        next: u16,
        end: u16,
    }
    static CLAIMS: Mutex<Claims> = Mutex::new(Claims { held: Vec::new(), next: 0, end: 0 });
    let mut claims = CLAIMS.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        while claims.next < claims.end {
            let port = claims.next;
            claims.next += 1;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
        // Claim another block, starting from one this process id picks so
        // that processes started together spread out.
        let start = (std::process::id() % u32::from(BLOCKS)) as u16 + claims.held.len() as u16;
        let block = (0..BLOCKS)
            .map(|i| (start + i) % BLOCKS)
            .find_map(|b| TcpListener::bind(("127.0.0.1", 61_000 + b)).ok().map(|claim| (b, claim)));
        let (block, claim) = block.expect("ran out of test port blocks");
        claims.held.push(claim);
        claims.next = FIRST + block * BLOCK;
        claims.end = claims.next + BLOCK;
    }
}

pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// A temp dir the `postgres` user can write to when the tests run as root.
pub fn server_dir(prefix: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix(prefix).tempdir_in("/tmp").unwrap();
    if is_root() {
        let status = Command::new("chown").args(["postgres:postgres"]).arg(dir.path()).status().unwrap();
        assert!(status.success(), "chown of the temp dir to postgres failed");
    }
    dir
}

/// Poll `check` until it returns `Some`, or panic with `what` after `limit`.
pub async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One sample of a scrape.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed `/metrics` page.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Scrape {
    pub fn parse(text: String) -> Scrape {
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
            let value: f64 = value.parse().expect("sample value is a number");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name.to_string(), parse_labels(rest.trim_end_matches('}'))),
                None => (series.to_string(), BTreeMap::new()),
            };
            samples.push(Sample { name, labels, value });
        }
        Scrape { text, samples }
    }

    /// Samples of `name` whose labels include all of `labels`.
    pub fn all(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .collect()
    }

    /// The single sample of `name` with `labels`, if present.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.all(name, labels);
        assert!(found.len() <= 1, "{name} {labels:?} matches {} series", found.len());
        found.first().map(|s| s.value)
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    // Values in replag's output never contain '",' so a simple split suffices.
    let mut labels = BTreeMap::new();
    for pair in text.split("\",").filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once("=\"").expect("label has a value");
        labels.insert(k.to_string(), v.trim_end_matches('"').to_string());
    }
    labels
}

/// A running `replag serve`, killed on drop. Its log goes to a file.
pub struct Replag {
    child: Child,
    pub port: u16,
    pub log_path: PathBuf,
    pub config_path: PathBuf,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

pub fn replag_bin() -> &'static str {
    env!("CARGO_BIN_EXE_replag")
}

/// Write `config` (a TOML body without `[server]`) with a fresh listen port.
pub fn write_config(dir: &Path, port: u16, body: &str) -> PathBuf {
    let path = dir.join("replag.toml");
    let mut file = std::fs::File::create(&path).unwrap();
    write!(file, "[server]\nlisten = \"127.0.0.1:{port}\"\n\n{body}").unwrap();
    path
}

impl Replag {
    /// Start `replag serve` with `body` as config and wait until it answers.
    pub async fn start(body: &str, env: &[(&str, &str)]) -> Replag {
        let replag = Self::spawn(body, env, &[]);
        wait_for("replag to answer /healthz", Duration::from_secs(20), || async {
            replag.get("/healthz").await.ok().filter(|(status, _)| *status == 200)
        })
        .await;
        replag
    }

    /// Start `replag serve` with extra arguments; the caller waits for it.
    pub fn spawn(body: &str, env: &[(&str, &str)], extra_args: &[&str]) -> Replag {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let config_path = write_config(dir.path(), port, body);
        let log_path = dir.path().join("replag.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(replag_bin())
            .args(["serve", "--config"])
            .arg(&config_path)
            .args(extra_args)
            .envs(env.iter().copied())
            .env("REPLAG_LOG", "info,replag=debug")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("replag starts");
        Replag { child, port, log_path, config_path, _dir: dir, http: reqwest::Client::new() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub async fn get(&self, path: &str) -> Result<(u16, String), reqwest::Error> {
        let response = self.http.get(self.url(path)).timeout(Duration::from_secs(5)).send().await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }

    /// Scrape until `ok` holds (or panic with `what` after `limit`).
    pub async fn wait_until(&self, what: &str, limit: Duration, ok: impl Fn(&Scrape) -> bool) -> Scrape {
        wait_for(what, limit, || async {
            let s = self.scrape().await;
            ok(&s).then_some(s)
        })
        .await
    }

    /// Are `sources` read between polls yet (`position_reads_total` in
    /// `/api/v1/status`)? Until then, right after a start, only polls place
    /// lag, to within a poll interval.
    pub async fn sampling(&self, sources: &[&str]) -> bool {
        let Ok((200, body)) = self.get("/api/v1/status").await else { return false };
        let Ok(status) = serde_json::from_str::<serde_json::Value>(&body) else { return false };
        let reads = |name: &str| {
            status["nodes"].as_array().into_iter().flatten().find(|n| n["name"] == name)?["position_reads_total"]
                .as_u64()
        };
        sources.iter().all(|s| reads(s).is_some_and(|n| n > 0))
    }

    pub async fn scrape(&self) -> Scrape {
        let (status, text) = self.get("/metrics").await.expect("scrape succeeds");
        assert_eq!(status, 200);
        Scrape::parse(text)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait up to `limit` for the process to exit: its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<Option<i32>> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGKILL: gone at once, as after a crash or an OOM kill.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Still running (not crashed)?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Replag {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- replag log ----\n{}", self.log());
        }
    }
}

/// Run `replag` with arguments to completion: (exit code, stdout, stderr).
pub fn run_replag(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(replag_bin())
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("replag runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}
