//! SeaweedFS against a real cluster: one master with -defaultReplication=100
//! and volume servers in two data centers.

use crate::common;

use std::time::Duration;

use common::seaweedfs::{master, upload, volume, wait_for_datacenter, Weed};
use common::{free_port, wait_for, Replag, Scrape};

fn config(master: &Weed, extra: &str) -> String {
    format!(
        "[poll]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\n\
         [[regions.us-east.seaweedfs]]\nname = \"weed\"\nurl = \"{}\"\n{extra}",
        master.url()
    )
}

fn dc_link(datacenter: &str) -> [(&str, &str); 4] {
    [("system", "seaweedfs"), ("kind", "volume"), ("source", "weed"), ("replica", datacenter)]
}

fn under_replicated(s: &Scrape) -> f64 {
    s.all("replag_seaweedfs_volumes_under_replicated", &[("node", "weed")]).iter().map(|x| x.value).sum()
}

/// Case 1: after uploads every volume has its copies, the data centers do
/// not diverge, a leader is known.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_cluster_has_every_copy_and_no_divergence() {
    let m = master().await;
    let _us = volume(&m, "us-east").await;
    let _eu = volume(&m, "eu-west").await;
    upload(&m, 10).await;
    let replag = Replag::start(&config(&m, ""), &[]).await;
    let s = wait_for("replicas in sync as the master sees them", Duration::from_secs(30), || async {
        let s = replag.scrape().await;
        let synced = ["us-east", "eu-west"].iter().all(|dc| {
            s.get("replag_link_up", &dc_link(dc)) == Some(1.0) && s.get("replag_lag_bytes", &dc_link(dc)) == Some(0.0)
        });
        let volumes: f64 = s.all("replag_seaweedfs_volumes", &[("node", "weed")]).iter().map(|x| x.value).sum();
        (synced && volumes > 0.0).then_some(s)
    })
    .await;
    assert_eq!(under_replicated(&s), 0.0, "every volume has its 2 copies");
    let missing: f64 = s.all("replag_seaweedfs_volumes_missing_datacenter", &[]).iter().map(|x| x.value).sum();
    assert_eq!(missing, 0.0);
    assert_eq!(s.get("replag_seaweedfs_leader_known", &[("node", "weed")]), Some(1.0));
    assert_eq!(s.get("replag_seaweedfs_is_leader", &[("node", "weed")]), Some(1.0));
    assert_eq!(s.get("replag_lag_seconds", &dc_link("eu-west")), Some(0.0));
    let volumes: f64 = s.all("replag_seaweedfs_volumes", &[("replication", "100")]).iter().map(|x| x.value).sum();
    assert!(volumes >= 1.0);
    assert_eq!(s.get("replag_seaweedfs_datacenter_data_nodes", &[("datacenter", "eu-west")]), Some(1.0));
    println!("seaweedfs healthy: {volumes} volumes of placement 100, 0 under-replicated, divergence 0 bytes in both data centers");
}

/// Case 1b: synchronous replication under continuous uploads reads in sync
/// in every reading (the master's view of one copy is often a heartbeat
/// older than the other's); a copy that really lacks a write — one written
/// to a single volume server as a replica write, which it does not forward —
/// shows as diverged once it has lacked it for longer than a heartbeat can
/// explain, with the time it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_read_in_sync_and_a_copy_that_misses_a_write_diverges() {
    let m = master().await;
    let _us = volume(&m, "us-east").await;
    let eu = volume(&m, "eu-west").await;
    upload(&m, 3).await;
    let replag = Replag::start(&config(&m, ""), &[]).await;
    wait_for("both data centers in sync", Duration::from_secs(30), || async {
        let s = replag.scrape().await;
        ["us-east", "eu-west"].iter().all(|dc| s.get("replag_lag_bytes", &dc_link(dc)) == Some(0.0)).then_some(())
    })
    .await;
    // 25 s of uploads, 4 a second, read every 250 ms.
    let (stop, writer) = {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, m_url) = (stop.clone(), m.url());
        let writer = tokio::spawn(async move {
            let mut n = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                common::seaweedfs::upload_to(&m_url, 1).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            n
        });
        (stop, writer)
    };
    let started = std::time::Instant::now();
    let mut readings = 0;
    while started.elapsed() < Duration::from_secs(25) {
        let s = replag.scrape().await;
        for dc in ["us-east", "eu-west"] {
            let (bytes, seconds) = (s.get("replag_lag_bytes", &dc_link(dc)), s.get("replag_lag_seconds", &dc_link(dc)));
            assert_eq!((bytes, seconds), (Some(0.0), Some(0.0)), "{dc} under uploads at {:?}", started.elapsed());
            readings += 1;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let uploads = writer.await.unwrap();

    // A write only eu-west's copy gets.
    let fids = common::seaweedfs::upload_to_one(&m, &eu).await;
    let written = std::time::Instant::now();
    let s = wait_for("us-east's copy to count as behind", Duration::from_secs(40), || async {
        let s = replag.scrape().await;
        s.get("replag_lag_bytes", &dc_link("us-east")).filter(|b| *b > 0.0).map(|_| s)
    })
    .await;
    let shown_after = written.elapsed().as_secs_f64();
    let seconds = s.get("replag_lag_seconds", &dc_link("us-east")).unwrap();
    let (_, status) = replag.get("/api/v1/status").await.unwrap();
    assert!(status.contains("diverged"), "{status}");
    assert!(
        seconds > 10.0 && seconds <= shown_after + 0.5,
        "behind {seconds} s, shown {shown_after:.1} s after the write"
    );
    assert_eq!(s.get("replag_lag_bytes", &dc_link("eu-west")), Some(0.0), "eu-west has everything");
    println!(
        "seaweedfs under {uploads} uploads: {readings} readings of the two data-center links, all 0 bytes / 0 s; \
         a write only eu-west got ({fids}) showed us-east diverged {shown_after:.1} s after it, reading {seconds:.1} s"
    );
}

/// Case 2: one data center's volume server stops: its data center link goes
/// down and volumes show as under-replicated once the master notices; the
/// rest keeps working; all recovers when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_datacenter_is_under_replication_then_recovers() {
    let m = master().await;
    let _us = volume(&m, "us-east").await;
    let mut eu = volume(&m, "eu-west").await;
    upload(&m, 5).await;
    let replag = Replag::start(&config(&m, ""), &[]).await;
    let before = wait_for("a healthy start", Duration::from_secs(30), || async {
        let s = replag.scrape().await;
        (s.get("replag_link_up", &dc_link("eu-west")) == Some(1.0)
            && under_replicated(&s) == 0.0
            && !s.all("replag_seaweedfs_volumes", &[]).is_empty())
        .then_some(s)
    })
    .await;
    let volumes: f64 = before.all("replag_seaweedfs_volumes", &[("node", "weed")]).iter().map(|x| x.value).sum();

    eu.kill();
    wait_for_datacenter(&m, "eu-west", false).await;
    let after = wait_for("eu-west down and its volumes under-replicated", Duration::from_secs(30), || async {
        let s = replag.scrape().await;
        (s.get("replag_link_up", &dc_link("eu-west")) == Some(0.0) && under_replicated(&s) > 0.0).then_some(s)
    })
    .await;
    assert_eq!(after.get("replag_link_up", &dc_link("us-east")), Some(1.0), "the other data center is fine");
    assert_eq!(after.get("replag_node_up", &[("node", "weed")]), Some(1.0));
    let missing_dc: f64 = after.all("replag_seaweedfs_volumes_missing_datacenter", &[]).iter().map(|x| x.value).sum();
    println!(
        "seaweedfs eu-west stopped: before {volumes} volumes, 0 under-replicated, eu-west up; after: {} under-replicated, {missing_dc} missing a data-center copy, eu-west link up {:?}",
        under_replicated(&after),
        after.get("replag_link_up", &dc_link("eu-west"))
    );

    eu.restart();
    wait_for_datacenter(&m, "eu-west", true).await;
    let back = wait_for("recovery", Duration::from_secs(60), || async {
        let s = replag.scrape().await;
        (s.get("replag_link_up", &dc_link("eu-west")) == Some(1.0) && under_replicated(&s) == 0.0).then_some(s)
    })
    .await;
    println!(
        "seaweedfs eu-west back: {} under-replicated, eu-west up {:?}",
        under_replicated(&back),
        back.get("replag_link_up", &dc_link("eu-west"))
    );
}

/// Case 3: a master that cannot be reached is down with a reason; the
/// exporter keeps serving the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_master_is_down_with_a_reason() {
    let m = master().await;
    let _us = volume(&m, "us-east").await;
    let dead = free_port();
    let extra = format!("\n[[regions.eu-west.seaweedfs]]\nname = \"weed-gone\"\nurl = \"http://127.0.0.1:{dead}\"\n");
    let replag = Replag::start(&config(&m, &extra), &[]).await;
    let s = wait_for("the dead master to be reported", Duration::from_secs(20), || async {
        let s = replag.scrape().await;
        (s.get("replag_node_failing", &[("node", "weed-gone"), ("reason", "connect")]) == Some(1.0)
            && s.get("replag_node_up", &[("node", "weed")]) == Some(1.0))
        .then_some(s)
    })
    .await;
    assert_eq!(s.get("replag_node_up", &[("node", "weed-gone")]), Some(0.0));
    assert_eq!(s.get("replag_seaweedfs_leader_known", &[("node", "weed")]), Some(1.0));
    assert!(replag.log().contains("weed-gone"));
    assert_eq!(replag.get("/healthz").await.unwrap().0, 200);
}

/// Case 4: replies recorded from the real master parse; hand-damaged
/// variants are errors for the node, never a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_and_damaged_replies() {
    let m = master().await;
    let _us = volume(&m, "us-east").await;
    let _eu = volume(&m, "eu-west").await;
    upload(&m, 3).await;
    let fetch = |path: &str| {
        let url = format!("{}{path}", m.url());
        async move { reqwest::get(url).await.unwrap().bytes().await.unwrap().to_vec() }
    };
    let (cluster, dir, vol) = (fetch("/cluster/status").await, fetch("/dir/status").await, fetch("/vol/status").await);
    let o = replag::systems::seaweedfs::decode(&cluster, Some((&dir, &vol))).expect("real replies parse");
    assert!(o.is_leader && o.topology.as_ref().is_some_and(|t| !t.replicas.is_empty()));

    let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
    let (c, d, v) = (text(&cluster), text(&dir), text(&vol));
    let damaged: Vec<(&str, String, String, String)> = vec![
        ("truncated cluster", c[..c.len() / 2].to_string(), d.clone(), v.clone()),
        ("truncated dir", c.clone(), d[..d.len() / 2].to_string(), v.clone()),
        ("truncated vol", c.clone(), d.clone(), v[..v.len() / 2].to_string()),
        ("missing topology", c.clone(), d.replace("\"Topology\"", "\"Elsewhere\""), v.clone()),
        ("missing volumes", c.clone(), d.clone(), v.replace("\"Volumes\"", "\"Elsewhere\"")),
        ("wrong type: id", c.clone(), d.clone(), v.replace("\"Id\":", "\"Id\":\"one\",\"X\":")),
        ("wrong type: leader", c.replace("true", "\"yes\""), d.clone(), v.clone()),
        (
            "wrong type: data centers",
            c.clone(),
            d.replace("\"DataCenters\":[", "\"DataCenters\":7,\"Was\":["),
            v.clone(),
        ),
        ("not JSON", "<html>502 Bad Gateway</html>".into(), d.clone(), v.clone()),
    ];
    for (what, c, d, v) in damaged {
        let result = std::panic::catch_unwind(|| {
            replag::systems::seaweedfs::decode(c.as_bytes(), Some((d.as_bytes(), v.as_bytes())))
        });
        let err = result.unwrap_or_else(|_| panic!("{what}: panicked")).expect_err(what);
        assert_eq!(err.kind, replag::model::FailureKind::Protocol, "{what}");
    }
}
