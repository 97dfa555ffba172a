//! Real Redis Sentinels and a real Redis Cluster for the tests, on loopback
//! ports in temp dirs, stopped when dropped.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::redis::{RedisServer, PASSWORD};
use super::{free_port, wait_for};

/// The Sentinel master name the tests monitor.
pub const GROUP: &str = "orders";

/// One Sentinel monitoring `GROUP`.
pub struct Sentinel {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Sentinel {
    /// A Sentinel monitoring the master on `master_port` with quorum 2; it
    /// sees a master down after 2 s without an answer (with 1 s, one CI run on
    /// the loaded 2-core machine saw a third failover nobody asked for).
    pub async fn start(master_port: u16) -> Sentinel {
        let dir = tempfile::Builder::new().prefix("replag-sentinel-").tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {dir}/sentinel.log\n\
                 sentinel monitor {GROUP} 127.0.0.1 {master_port} 2\n\
                 sentinel auth-pass {GROUP} {PASSWORD}\n\
                 sentinel down-after-milliseconds {GROUP} 2000\n\
                 sentinel failover-timeout {GROUP} 10000\n\
                 sentinel parallel-syncs {GROUP} 2\n",
                dir = dir.path().display()
            ),
        )
        .unwrap();
        // Debian's redis-sentinel package; redis-server --sentinel is the same program.
        let mut command = if Command::new("redis-sentinel").arg("--version").output().is_ok() {
            let mut c = Command::new("redis-sentinel");
            c.arg(&conf);
            c
        } else {
            let mut c = Command::new("redis-server");
            c.arg(&conf).arg("--sentinel");
            c
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-sentinel is installed (scripts/setup --tests installs it)");
        let sentinel = Sentinel { port, child, dir };
        wait_for("the Sentinel to know its master", Duration::from_secs(20), || async {
            let mut c = sentinel.try_client().await?;
            let m: Vec<String> =
                redis::cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg(GROUP).query_async(&mut c).await.ok()?;
            (!m.is_empty()).then_some(())
        })
        .await;
        sentinel
    }

    async fn try_client(&self) -> Option<redis::aio::MultiplexedConnection> {
        let url = format!("redis://127.0.0.1:{}", self.port);
        redis::Client::open(url).ok()?.get_multiplexed_async_connection().await.ok()
    }

    /// `host:port` of the master this Sentinel names now.
    pub async fn master_port(&self) -> Option<u16> {
        let mut c = self.try_client().await?;
        let m: Vec<String> =
            redis::cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg(GROUP).query_async(&mut c).await.ok()?;
        m.get(1)?.parse().ok()
    }

    /// How many replicas and other Sentinels it knows.
    pub async fn known(&self) -> (usize, usize) {
        let Some(mut c) = self.try_client().await else { return (0, 0) };
        let replicas: Vec<redis::Value> =
            redis::cmd("SENTINEL").arg("REPLICAS").arg(GROUP).query_async(&mut c).await.unwrap_or_default();
        let sentinels: Vec<redis::Value> =
            redis::cmd("SENTINEL").arg("SENTINELS").arg(GROUP).query_async(&mut c).await.unwrap_or_default();
        (replicas.len(), sentinels.len())
    }

    /// `SENTINEL FAILOVER`: promote a replica without asking the others.
    pub async fn failover(&self) {
        let mut c = self.try_client().await.expect("sentinel connection");
        let _: String = redis::cmd("SENTINEL").arg("FAILOVER").arg(GROUP).query_async(&mut c).await.unwrap();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A master, two replicas and three Sentinels that know each other.
pub struct SentinelGroup {
    pub servers: Vec<RedisServer>,
    pub sentinels: Vec<Sentinel>,
    /// When its first server started: no data it holds is older.
    pub started: std::time::Instant,
}

impl SentinelGroup {
    pub async fn start() -> SentinelGroup {
        let started = std::time::Instant::now();
        let master = RedisServer::start("sg-master", None).await;
        let a = RedisServer::start("sg-replica-a", Some(&master)).await;
        let b = RedisServer::start("sg-replica-b", Some(&master)).await;
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            sentinels.push(Sentinel::start(master.port).await);
        }
        // Sentinels find replicas from the master's INFO and each other over
        // its hello channel (every 2 s): wait until every one knows all.
        for s in &sentinels {
            wait_for("Sentinels to know both replicas and each other", Duration::from_secs(30), || async {
                (s.known().await == (2, 2)).then_some(())
            })
            .await;
        }
        SentinelGroup { servers: vec![master, a, b], sentinels, started }
    }

    /// The server the Sentinels name master now (all agree).
    pub async fn master_port(&self) -> Option<u16> {
        let mut ports = Vec::new();
        for s in &self.sentinels {
            ports.push(s.master_port().await?);
        }
        ports.dedup();
        (ports.len() == 1).then(|| ports[0])
    }

    pub fn server(&self, port: u16) -> &RedisServer {
        self.servers.iter().find(|s| s.port == port).expect("a server of the group")
    }
}

/// A Redis Cluster: `masters` masters with one replica each, built with
/// `redis-cli --cluster create`.
pub struct Cluster {
    pub nodes: Vec<RedisServer>,
}

impl Cluster {
    pub async fn start(masters: usize) -> Cluster {
        let mut nodes = Vec::new();
        for i in 0..masters * 2 {
            let bus = free_port();
            let extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
                "--cluster-port",
                &bus.to_string(),
            ]
            .map(String::from)
            .to_vec();
            nodes.push(RedisServer::start_with(&format!("cluster-{i}"), None, extra).await);
        }
        let mut create = Command::new("redis-cli");
        create.args(["-a", PASSWORD, "--no-auth-warning", "--cluster", "create"]);
        for n in &nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        let out = create.args(["--cluster-replicas", "1", "--cluster-yes"]).output().expect("redis-cli runs");
        assert!(out.status.success(), "cluster create: {}", String::from_utf8_lossy(&out.stdout));
        let cluster = Cluster { nodes };
        for n in &cluster.nodes {
            wait_for("every node to see the cluster ok", Duration::from_secs(30), || async {
                let info: String = redis::cmd("CLUSTER").arg("INFO").query_async(&mut n.client().await).await.ok()?;
                info.contains("cluster_state:ok").then_some(())
            })
            .await;
        }
        for n in &cluster.nodes {
            wait_for("every replica to finish its first sync", Duration::from_secs(30), || async {
                let info = n.info("replication").await;
                (info.contains("role:master")
                    || info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0"))
                .then_some(())
            })
            .await;
        }
        cluster
    }

    /// `(master port, replica port)` of each shard, from CLUSTER NODES.
    pub async fn shards(&self) -> Vec<(u16, u16)> {
        let text: String =
            redis::cmd("CLUSTER").arg("NODES").query_async(&mut self.nodes[0].client().await).await.unwrap();
        let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
        let port =
            |f: &[&str]| -> u16 { f[1].split(['@', ',']).next().unwrap().rsplit_once(':').unwrap().1.parse().unwrap() };
        let mut out = Vec::new();
        for m in lines.iter().filter(|f| f[2].contains("master") && f.len() > 8) {
            if let Some(r) = lines.iter().find(|f| f[3] == m[0]) {
                out.push((port(m), port(r)));
            }
        }
        out.sort();
        out
    }

    pub fn node(&self, port: u16) -> &RedisServer {
        self.nodes.iter().find(|n| n.port == port).expect("a node of the cluster")
    }
}
