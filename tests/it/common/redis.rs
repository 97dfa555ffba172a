//! Real `redis-server` masters and replicas for the tests, each in a temp dir
//! on a loopback port, stopped when dropped.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{free_port, wait_for};

pub const PASSWORD: &str = "Redis-pw-9b2e71";

pub struct RedisServer {
    pub name: String,
    pub port: u16,
    master_port: Option<u16>,
    /// More `redis-server` arguments (cluster mode), kept for a restart.
    extra: Vec<String>,
    child: Child,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Start a server (a replica of `master` if given), password-protected,
    /// pinging its replicas every second so an idle master still writes.
    pub async fn start(name: &str, master: Option<&RedisServer>) -> RedisServer {
        Self::start_replicating(name, master.map(|m| m.port)).await
    }

    /// Start a server replicating from `127.0.0.1:master_port` (a master, or
    /// a proxy in front of one), if given.
    pub async fn start_replicating(name: &str, master_port: Option<u16>) -> RedisServer {
        Self::start_with(name, master_port, Vec::new()).await
    }

    /// Start a server with more `redis-server` arguments.
    pub async fn start_with(name: &str, master_port: Option<u16>, extra: Vec<String>) -> RedisServer {
        let dir = tempfile::Builder::new().prefix(&format!("replag-{name}-")).tempdir().unwrap();
        let port = free_port();
        let child = Self::spawn(port, dir.path(), master_port, &extra);
        let server = RedisServer { name: name.into(), port, master_port, extra, child, _dir: dir };
        server.wait_ready().await;
        server
    }

    /// The server's temp dir (its log is `redis.log`).
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Start it again as a master, as a crashed master comes back with its
    /// own config (Sentinel then makes it a replica).
    pub async fn restart_as_master(&mut self) {
        self.master_port = None;
        self.restart().await;
    }

    /// Start it again (after `kill`) on the same port: empty, as after a crash
    /// without persistence; a replica syncs again from its master.
    pub async fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(self.port, self._dir.path(), self.master_port, &self.extra);
        self.wait_ready().await;
    }

    fn spawn(port: u16, dir: &std::path::Path, master_port: Option<u16>, extra: &[String]) -> Child {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--requirepass", PASSWORD, "--masterauth", PASSWORD, "--repl-ping-replica-period", "1"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .args(extra);
        if let Some(port) = master_port {
            command.args(["--replicaof", "127.0.0.1", &port.to_string()]);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/setup installs the redis-server package)")
    }

    /// Until it answers PING and, for a replica, has finished its first sync.
    async fn wait_ready(&self) {
        let (name, log_path) = (&self.name, self._dir.path().join("redis.log"));
        wait_for(&format!("{name} to answer PING"), Duration::from_secs(20), || async {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            assert!(!log.contains("# Could not") && !log.contains("# Failed"), "{name} did not start:\n{log}");
            let mut c = self.try_client().await?;
            redis::cmd("PING").query_async::<String>(&mut c).await.ok()
        })
        .await;
        if self.master_port.is_some() {
            wait_for(&format!("{name} to finish its first sync"), Duration::from_secs(30), || async {
                let info = self.info("replication").await;
                (info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0")).then_some(())
            })
            .await;
        }
    }

    pub async fn try_client(&self) -> Option<redis::aio::MultiplexedConnection> {
        let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", self.port);
        redis::Client::open(url).ok()?.get_multiplexed_async_connection().await.ok()
    }

    pub async fn client(&self) -> redis::aio::MultiplexedConnection {
        self.try_client().await.expect("admin connection to redis")
    }

    pub async fn info(&self, section: &str) -> String {
        let mut c = self.client().await;
        redis::cmd("INFO").arg(section).query_async(&mut c).await.unwrap()
    }

    pub async fn command(&self, args: &[&str]) -> redis::Value {
        let mut c = self.client().await;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut c).await.unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    pub fn url(&self) -> String {
        format!("redis://:{PASSWORD}@127.0.0.1:{}", self.port)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill {signal} {}", self.name);
    }

    /// `kill -STOP`: the process holds its sockets but does nothing.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.child.id().to_string()]).stderr(Stdio::null()).status();
        self.kill();
    }
}

/// SETs a key every `every` on the master until dropped (at most `limit`).
pub struct RedisWorkload {
    stop: Arc<AtomicBool>,
}

impl RedisWorkload {
    pub async fn start(master: &RedisServer, every: Duration, limit: Duration) -> RedisWorkload {
        let mut c = master.client().await;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + limit;
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
                n += 1;
                let _ = redis::cmd("SET")
                    .arg(format!("key:{}", n % 1000))
                    .arg("x".repeat(100))
                    .query_async::<()>(&mut c)
                    .await;
                tokio::time::sleep(every).await;
            }
        });
        RedisWorkload { stop }
    }
}

impl Drop for RedisWorkload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A master in us-east and one replica in eu-west, polled every 500 ms.
pub fn pair_config(master: &RedisServer, replica: &RedisServer) -> String {
    format!(
        "[poll]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\n\
         [[regions.us-east.redis]]\nname = \"master\"\nurl = \"{}\"\n\n\
         [[regions.eu-west.redis]]\nname = \"replica\"\nurl = \"redis://127.0.0.1:{}\"\npassword_env = \"REDIS_PW\"\n",
        master.url(),
        replica.port
    )
}
