//! Real PostgreSQL primaries and streaming standbys for the tests, started
//! with the server binaries of the installed `postgresql` package. As root
//! they run as the `postgres` user, which PostgreSQL requires.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::NoTls;

use super::{free_port, is_root, server_dir, wait_for};

/// The monitoring role replag uses in every test: `pg_monitor` only.
pub const MONITOR_USER: &str = "replag_mon";
pub const MONITOR_PASSWORD: &str = "Mon1tor-pw-7f3a9c";

/// Newest installed server's bin dir, or `$REPLAG_PG_BIN`.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("REPLAG_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server is installed (apt-get install postgresql; see scripts/setup)")
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, p)| p.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop().expect("a PostgreSQL server version under /usr/lib/postgresql").1
}

/// Run a server binary as the user that owns the data (postgres when root).
fn pg_command(tool: &str) -> Command {
    let path = bin_dir().join(tool);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

fn run(mut command: Command, what: &str) {
    let out = command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One PostgreSQL server in a temp dir.
pub struct PgServer {
    pub name: String,
    pub port: u16,
    pub data: PathBuf,
    dir: tempfile::TempDir,
    running: bool,
}

impl PgServer {
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// replag's URL for this server (the monitor role over TCP, password in the URL).
    pub fn monitor_url(&self) -> String {
        format!("postgresql://{MONITOR_USER}:{MONITOR_PASSWORD}@127.0.0.1:{}/postgres", self.port)
    }

    /// The same without the password (for password_env / password_file configs).
    pub fn monitor_url_without_password(&self) -> String {
        format!("postgresql://{MONITOR_USER}@127.0.0.1:{}/postgres", self.port)
    }

    fn common_settings(&self) -> String {
        format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{sock}'\n\
             wal_level = logical\nmax_wal_senders = 10\nmax_replication_slots = 10\nhot_standby = on\n\
             fsync = off\nfull_page_writes = off\nshared_buffers = 16MB\nmax_connections = 30\n\
             logging_collector = off\nlog_min_messages = warning\ncluster_name = '{name}'\n",
            port = self.port,
            sock = self.dir.path().display(),
            name = self.name,
        )
    }

    fn append_conf(&self, text: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(self.data.join("postgresql.conf")).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    pub fn start(&mut self) {
        let mut c = pg_command("pg_ctl");
        c.arg("-D").arg(&self.data).arg("-l").arg(self.dir.path().join("server.log")).args(["-w", "-t", "60", "start"]);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        run(c, &format!("pg_ctl start {}", self.name));
        self.running = true;
    }

    pub fn stop(&mut self) {
        let mut c = pg_command("pg_ctl");
        c.arg("-D").arg(&self.data).args(["-m", "fast", "-w", "stop"]);
        run(c, &format!("pg_ctl stop {}", self.name));
        self.running = false;
    }

    /// `pg_ctl stop -m immediate`: the server dies as in a crash (no
    /// shutdown checkpoint, nothing more sent to its standbys).
    pub fn kill(&mut self) {
        let mut c = pg_command("pg_ctl");
        c.arg("-D").arg(&self.data).args(["-m", "immediate", "-w", "stop"]);
        run(c, &format!("pg_ctl stop -m immediate {}", self.name));
        self.running = false;
    }

    /// The end of the WAL in this (stopped) server's data directory: where
    /// the next record would have gone, as `pg_waldump` reads it from
    /// `from` on. The truth of what a dead primary had written.
    pub fn wal_end(&self, from: u64) -> u64 {
        let mut c = pg_command("pg_waldump");
        c.arg("-p").arg(self.data.join("pg_wal")).args(["-s", &lsn_text(from)]);
        let out = c.stdin(Stdio::null()).output().expect("pg_waldump runs");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        // "error in WAL record at X: invalid record length at Y: wanted 24, got 0": Y is the end.
        if let Some(end) =
            text.rsplit("invalid record length at ").next().filter(|_| text.contains("invalid record length at "))
        {
            return parse_lsn(end.split(':').next().unwrap_or(""));
        }
        // Else the end of the last record printed ("len (rec/tot): a/b, ..., lsn: X, ...").
        let last = text.lines().rev().find(|l| l.contains("lsn: ")).unwrap_or_else(|| panic!("pg_waldump: {text}"));
        let lsn = parse_lsn(last.split("lsn: ").nth(1).and_then(|r| r.split(',').next()).unwrap_or(""));
        let total: u64 = last
            .split("len (rec/tot): ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|r| r.split('/').nth(1))
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or_else(|| panic!("pg_waldump line: {last}"));
        (lsn + total).div_ceil(8) * 8
    }

    /// Make this (stopped) server a standby of `upstream` at its next
    /// start: how an old primary rejoins after a switchover.
    pub fn follow(&self, upstream: &PgServer) {
        self.append_conf(&format!(
            "\nprimary_conninfo = 'host=127.0.0.1 port={} user=postgres application_name={}'\n",
            upstream.port, self.name
        ));
        self.install_file("standby.signal", b"");
    }

    pub fn promote(&self) {
        let mut c = pg_command("pg_ctl");
        c.arg("-D").arg(&self.data).args(["-w", "promote"]);
        run(c, &format!("pg_ctl promote {}", self.name));
    }

    /// A superuser session over the Unix socket.
    pub async fn admin(&self) -> tokio_postgres::Client {
        let mut config = tokio_postgres::Config::new();
        config.host_path(self.dir.path()).port(self.port).user("postgres").dbname("postgres");
        let (client, connection) = config.connect(NoTls).await.expect("admin connection");
        tokio::spawn(connection);
        client
    }

    pub async fn exec(&self, sql: &str) {
        self.admin().await.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Put a file in the data directory, owned by the server's user, mode 0600.
    pub fn install_file(&self, name: &str, contents: &[u8]) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.data.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            let status = Command::new("chown").arg("postgres:postgres").arg(&path).status().unwrap();
            assert!(status.success());
        }
    }

    pub fn write_hba(&self, text: &str) {
        self.install_file("pg_hba.conf", text.as_bytes());
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let mut c = pg_command("pg_ctl");
            c.arg("-D").arg(&self.data).args(["-m", "immediate", "-w", "stop"]);
            let _ = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

/// A new primary with the monitor role and a `writes` table.
pub async fn primary(name: &str) -> PgServer {
    let dir = server_dir(&format!("replag-{name}-"));
    let data = dir.path().join("data");
    let mut c = pg_command("initdb");
    c.arg("-D").arg(&data).args(["-U", "postgres", "-A", "trust", "-N", "-E", "UTF8", "--locale=C"]);
    run(c, "initdb");
    let server = PgServer { name: name.into(), port: free_port(), data, dir, running: false };
    server.append_conf(&server.common_settings());
    std::fs::write(
        server.data.join("pg_hba.conf"),
        "local all all trust\nhost replication all 127.0.0.1/32 trust\nhost all postgres 127.0.0.1/32 trust\n\
         host all all 127.0.0.1/32 scram-sha-256\n",
    )
    .unwrap();
    let mut server = server;
    server.start();
    server
        .exec(&format!(
            "CREATE ROLE {MONITOR_USER} LOGIN PASSWORD '{MONITOR_PASSWORD}' IN ROLE pg_monitor;
             CREATE TABLE writes (id bigserial PRIMARY KEY, payload text, at timestamptz DEFAULT now());"
        ))
        .await;
    server
}

/// A streaming standby of `upstream` with a physical replication slot.
pub async fn standby(upstream: &PgServer, name: &str) -> PgServer {
    let dir = server_dir(&format!("replag-{name}-"));
    let data = dir.path().join("data");
    let slot = name.replace('-', "_");
    let mut c = pg_command("pg_basebackup");
    c.args([
        "-h",
        "127.0.0.1",
        "-p",
        &upstream.port.to_string(),
        "-U",
        "postgres",
        "-R",
        "-X",
        "stream",
        "-C",
        "-S",
        &slot,
    ])
    .arg("-D")
    .arg(&data);
    run(c, "pg_basebackup");
    let mut server = PgServer { name: name.into(), port: free_port(), data, dir, running: false };
    server.append_conf(&server.common_settings());
    server.start();
    server
}

/// A streaming standby of `upstream` whose replication connection goes to
/// `127.0.0.1:via_port` (a proxy in front of `upstream`).
pub async fn standby_via(upstream: &PgServer, name: &str, via_port: u16) -> PgServer {
    let server = standby(upstream, name).await;
    server
        .exec(&format!(
            "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port={via_port} user=postgres application_name={name}'"
        ))
        .await;
    // The WAL receiver reconnects with the new setting.
    server.exec("SELECT pg_reload_conf()").await;
    wait_for("the standby to stream through the proxy", Duration::from_secs(30), || async {
        let row = server.admin().await.query_one("SELECT sender_port FROM pg_stat_wal_receiver", &[]).await.ok()?;
        (row.get::<_, Option<i32>>(0) == Some(i32::from(via_port))).then_some(())
    })
    .await;
    server
}

/// Make `standby` a fresh streaming standby of `upstream` again, on the same
/// port and slot (after a promotion, say): stop, new base backup, start.
pub fn reseed(standby: &mut PgServer, upstream: &PgServer) {
    if standby.running {
        standby.stop();
    }
    std::fs::remove_dir_all(&standby.data).unwrap();
    let slot = standby.name.replace('-', "_");
    let mut c = pg_command("pg_basebackup");
    c.args(["-h", "127.0.0.1", "-p", &upstream.port.to_string(), "-U", "postgres", "-R", "-X", "stream", "-S", &slot])
        .arg("-D")
        .arg(&standby.data);
    run(c, "pg_basebackup (reseed)");
    standby.append_conf(&standby.common_settings());
    standby.start();
}

/// A primary and a standby in sync.
pub async fn pair(prefix: &str) -> (PgServer, PgServer) {
    let p = primary(&format!("{prefix}-primary")).await;
    let s = standby(&p, &format!("{prefix}-standby")).await;
    // One commit the standby replays, so it has a last replayed transaction.
    p.exec("INSERT INTO writes (payload) VALUES ('first')").await;
    wait_for_standby_caught_up(&p, &s).await;
    (p, s)
}

/// `X/Y` → a number.
pub fn parse_lsn(text: &str) -> u64 {
    let (hi, lo) = text.trim().split_once('/').unwrap_or_else(|| panic!("not an LSN: {text:?}"));
    (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap()
}

pub fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

pub async fn current_lsn(server: &PgServer) -> String {
    let row = server.admin().await.query_one("SELECT pg_current_wal_lsn()::text", &[]).await.unwrap();
    row.get(0)
}

pub async fn wait_for_standby_caught_up(primary: &PgServer, standby: &PgServer) {
    let target = current_lsn(primary).await;
    wait_for("the standby to replay the primary's WAL", Duration::from_secs(30), || async {
        let row = standby
            .admin()
            .await
            .query_one("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", &[&target])
            .await
            .ok()?;
        row.get::<_, bool>(0).then_some(())
    })
    .await;
}

/// Inserts a row every `every` until dropped (and at most for `limit`).
pub struct Workload {
    stop: Arc<AtomicBool>,
}

impl Workload {
    pub async fn start(server: &PgServer, every: Duration, limit: Duration) -> Workload {
        let client = server.admin().await;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + limit;
            while !flag.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
                let _ = client.execute("INSERT INTO writes (payload) VALUES (repeat('x', 200))", &[]).await;
                tokio::time::sleep(every).await;
            }
        });
        Workload { stop }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Config for a primary in us-east and a standby in eu-west, polled every 500 ms.
pub fn pair_config(primary: &PgServer, standby: &PgServer) -> String {
    format!(
        "[poll]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\n\
         [[regions.us-east.postgres]]\nname = \"primary\"\nurl = \"{}\"\n\n\
         [[regions.eu-west.postgres]]\nname = \"standby\"\nurl = \"{}\"\n",
        primary.monitor_url(),
        standby.monitor_url()
    )
}

/// Subscribe `subscriber` to `publication` on `publisher` and wait until its
/// tables are ready.
pub async fn subscribe(subscriber: &PgServer, name: &str, publisher: &PgServer, publication: &str) {
    subscriber
        .exec(&format!(
            "CREATE SUBSCRIPTION {name} CONNECTION 'host=127.0.0.1 port={} user=postgres dbname=postgres' PUBLICATION {publication}",
            publisher.port
        ))
        .await;
    wait_for(&format!("subscription {name} to be ready"), Duration::from_secs(30), || async {
        let row = subscriber
            .admin()
            .await
            .query_one(
                "SELECT count(*) FILTER (WHERE srsubstate <> 'r') = 0 AND count(*) > 0 FROM pg_subscription_rel r \
                 JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = $1",
                &[&name],
            )
            .await
            .ok()?;
        row.get::<_, bool>(0).then_some(())
    })
    .await;
}
