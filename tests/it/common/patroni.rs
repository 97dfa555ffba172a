//! Real Patroni clusters for the tests: one etcd, and Patroni members
//! (Debian's `patroni` package) each running a PostgreSQL server, all on
//! loopback ports in temp dirs. As root every process runs as the
//! `postgres` user (`setpriv`, so the child is Patroni itself and can be
//! killed as a machine dies).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::postgres::{bin_dir, MONITOR_PASSWORD, MONITOR_USER};
use super::{free_port, is_root, server_dir, wait_for};

/// Run `program` as the user that owns the data (postgres when root).
fn as_postgres(program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// One etcd member, the DCS of every cluster a test starts.
pub struct Etcd {
    pub client_port: u16,
    peer_port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Etcd {
    pub async fn start() -> Etcd {
        let dir = server_dir("replag-etcd-");
        let mut etcd = Etcd { client_port: free_port(), peer_port: free_port(), dir, child: None };
        etcd.resume().await;
        etcd
    }

    /// Start it (again, on the same data).
    pub async fn resume(&mut self) {
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::File::create(self.dir.path().join("etcd.log")).unwrap();
        let child = as_postgres("etcd")
            .args(["--name", "e1", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("e1={peer}"), "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("etcd runs (apt-get install etcd-server; see scripts/setup)");
        self.child = Some(child);
        let url = format!("{client}/health");
        wait_for("etcd healthy", Duration::from_secs(30), || async {
            let body = reqwest::get(&url).await.ok()?.text().await.ok()?;
            body.contains("true").then_some(())
        })
        .await;
    }

    /// SIGKILL: the DCS gone at once.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One Patroni member and its PostgreSQL server.
pub struct Member {
    pub name: String,
    pub api_port: u16,
    pub pg_port: u16,
    config: PathBuf,
    data: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl Member {
    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = as_postgres("patroni")
            .arg(&self.config)
            .env("HOME", self.config.parent().unwrap())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("patroni runs (apt-get install patroni; see scripts/setup)");
        self.child = Some(child);
    }

    /// The machine dies: Patroni SIGKILLed, its PostgreSQL stopped at once
    /// (no shutdown checkpoint, nothing more sent).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let mut c = as_postgres(bin_dir().join("pg_ctl").to_str().unwrap());
        c.arg("-D").arg(&self.data).args(["-m", "immediate", "-w", "stop"]);
        let _ = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Patroni cluster: its scope and members.
pub struct Cluster {
    pub scope: String,
    pub members: Vec<Member>,
    etcd_port: u16,
    _dir: tempfile::TempDir,
}

/// `ttl` 12 s, `loop_wait` 1 s: a dead leader is replaced in about 12 s.
const DCS: &str = "ttl: 12\n    loop_wait: 1\n    retry_timeout: 4\n    maximum_lag_on_failover: 1073741824";

impl Cluster {
    /// `size` members of `scope`; with `standby_of` (host, port), a standby
    /// cluster replicating from that server.
    pub async fn start(etcd: &Etcd, scope: &str, size: usize, standby_of: Option<(&str, u16)>) -> Cluster {
        let dir = server_dir(&format!("replag-patroni-{scope}-"));
        let standby = standby_of.map_or(String::new(), |(host, port)| {
            format!("\n    standby_cluster:\n      host: {host}\n      port: {port}\n      create_replica_methods: [basebackup]")
        });
        let mut members = Vec::new();
        for i in 1..=size {
            let name = format!("{scope}-{i}");
            let (api_port, pg_port) = (free_port(), free_port());
            let home = dir.path().join(&name);
            std::fs::create_dir(&home).unwrap();
            let data = home.join("data");
            let config = home.join("patroni.yml");
            let yaml = format!(
                "scope: {scope}\nname: {name}\nrestapi:\n  listen: 127.0.0.1:{api_port}\n  connect_address: 127.0.0.1:{api_port}\n\
                 etcd3:\n  host: 127.0.0.1:{etcd}\n\
                 bootstrap:\n  dcs:\n    {DCS}{standby}\n    postgresql:\n      use_pg_rewind: true\n      parameters:\n        \
                 wal_level: logical\n        hot_standby: 'on'\n        wal_log_hints: 'on'\n        max_wal_senders: 10\n        \
                 max_replication_slots: 10\n        fsync: 'off'\n        shared_buffers: 16MB\n        max_connections: 30\n  \
                 initdb: [{{encoding: UTF8}}, {{locale: C}}]\n\
                 postgresql:\n  listen: 127.0.0.1:{pg_port}\n  connect_address: 127.0.0.1:{pg_port}\n  data_dir: {data}\n  \
                 bin_dir: {bin}\n  pgpass: {home}/pgpass\n  pg_hba:\n  - local all all trust\n  \
                 - host replication all 127.0.0.1/32 trust\n  - host all postgres 127.0.0.1/32 trust\n  \
                 - host all all 127.0.0.1/32 scram-sha-256\n  authentication:\n    replication: {{username: postgres}}\n    \
                 superuser: {{username: postgres}}\n    rewind: {{username: postgres}}\n  parameters:\n    \
                 unix_socket_directories: {home}\n",
                etcd = etcd.client_port,
                data = data.display(),
                bin = bin_dir().display(),
                home = home.display(),
            );
            std::fs::write(&config, yaml).unwrap();
            if is_root() {
                Command::new("chown").args(["-R", "postgres:postgres"]).arg(&home).status().unwrap();
            }
            members.push(Member { name, api_port, pg_port, config, data, child: None, log: home.join("patroni.log") });
        }
        // The first member bootstraps alone; the others then clone it.
        members[0].spawn();
        let mut cluster = Cluster { scope: scope.into(), members, etcd_port: etcd.client_port, _dir: dir };
        let leader_role = if standby_of.is_some() { "standby_leader" } else { "leader" };
        cluster.wait_for_members(1, leader_role).await;
        if standby_of.is_none() {
            let admin = cluster.admin(0).await;
            admin
                .batch_execute(&format!(
                    "CREATE ROLE {MONITOR_USER} LOGIN PASSWORD '{MONITOR_PASSWORD}' IN ROLE pg_monitor;
                     CREATE TABLE writes (id bigint PRIMARY KEY, at timestamptz DEFAULT now());"
                ))
                .await
                .unwrap();
        }
        for m in &mut cluster.members[1..] {
            m.spawn();
        }
        cluster.wait_for_members(size, leader_role).await;
        cluster
    }

    /// Until `count` members run (streaming, for replicas) and one leads.
    async fn wait_for_members(&self, count: usize, leader_role: &str) {
        wait_for(&format!("{count} members of {} running", self.scope), Duration::from_secs(120), || async {
            let view = self.view().await?;
            let members = view["members"].as_array()?;
            let running = members.iter().filter(|m| m["state"] == "running" || m["state"] == "streaming").count();
            let led = members.iter().any(|m| m["role"] == leader_role);
            let lagging = members.iter().any(|m| m["role"] == "replica" && !m["lag"].is_u64());
            (running >= count && led && !lagging).then_some(())
        })
        .await;
    }

    /// `GET /cluster` from the first member that answers.
    pub async fn view(&self) -> Option<Value> {
        for m in &self.members {
            if m.child.is_none() {
                continue;
            }
            let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().ok()?;
            if let Ok(r) = client.get(format!("{}/cluster", m.api())).send().await {
                if let Some(v) = r.text().await.ok().and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
                    return Some(v);
                }
            }
        }
        None
    }

    /// The leader's name as Patroni says now.
    pub async fn leader(&self) -> Option<String> {
        let view = self.view().await?;
        view["members"]
            .as_array()?
            .iter()
            .find(|m| m["role"] == "leader" || m["role"] == "standby_leader")
            .and_then(|m| m["name"].as_str().map(str::to_string))
    }

    pub fn member(&self, name: &str) -> &Member {
        self.members.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("no member {name}"))
    }

    pub fn member_mut(&mut self, name: &str) -> &mut Member {
        self.members.iter_mut().find(|m| m.name == name).unwrap_or_else(|| panic!("no member {name}"))
    }

    /// A superuser session on member `i`.
    pub async fn admin(&self, i: usize) -> tokio_postgres::Client {
        let url = format!("postgresql://postgres@127.0.0.1:{}/postgres", self.members[i].pg_port);
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("admin connection");
        tokio::spawn(conn);
        client
    }

    /// `patronictl ARGS`, as an operator runs it.
    pub fn ctl(&self, args: &[&str]) {
        let ctl = self._dir.path().join("patronictl.yml");
        std::fs::write(&ctl, format!("etcd3:\n  host: 127.0.0.1:{}\n", self.etcd_port)).unwrap();
        let out = Command::new("patronictl").arg("-c").arg(&ctl).args(args).stdin(Stdio::null()).output();
        let out = out.expect("patronictl runs");
        assert!(
            out.status.success(),
            "patronictl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `patronictl switchover` to `candidate`.
    pub fn switchover(&self, leader: &str, candidate: &str) {
        self.ctl(&["switchover", &self.scope, "--leader", leader, "--candidate", candidate, "--force"]);
    }

    /// The config entry replag needs for this cluster in `region`.
    pub fn entry(&self, region: &str, name: &str) -> String {
        let endpoints: Vec<String> = self.members.iter().map(|m| format!("\"{}\"", m.api())).collect();
        format!(
            "[[regions.{region}.postgres]]\nname = \"{name}\"\nrole = \"patroni\"\nendpoints = [{}]\n\
             url = \"postgresql://{MONITOR_USER}@/postgres\"\npassword_env = \"REPLAG_TEST_PG_PASSWORD\"\n",
            endpoints.join(", ")
        )
    }
}
