//! PostgreSQL under Patroni, found and followed: a real etcd and a
//! three-member Patroni cluster (plus a one-member standby cluster in
//! another region) started here. replag is told only the clusters' REST
//! endpoints. Asserted against Patroni and the servers themselves: every
//! member found and measured, the standby cluster's cross-region link, a
//! `patronictl switchover` under writes followed (0 acknowledged writes
//! lost, replag's event with Patroni's switch point), the leader killed
//! (the failover followed, its event carrying Patroni's switch point and
//! time), maintenance mode, etcd stopped (the members still measured), and
//! endpoints that are not Patroni or do not answer reported as such.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::patroni::{Cluster, Etcd};
use common::postgres::MONITOR_PASSWORD;
use common::{run_replag, wait_for, Replag, Scrape};
use serde_json::Value;

const PASSWORD_ENV: (&str, &str) = ("REPLAG_TEST_PG_PASSWORD", MONITOR_PASSWORD);

/// Inserts ids 1, 2, … every 10 ms on whichever member leads, and notes
/// each one the server acknowledged.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<i64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(ports: Vec<u16>, next: Arc<AtomicU64>) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (flag, noted) = (stop.clone(), acked.clone());
        let task = tokio::spawn(async move {
            let mut client: Option<tokio_postgres::Client> = None;
            while !flag.load(Ordering::Relaxed) {
                if client.as_ref().is_none_or(|c| c.is_closed()) {
                    client = leader_session(&ports).await;
                }
                if let Some(c) = &client {
                    let id = next.fetch_add(1, Ordering::Relaxed) as i64;
                    match c.execute("INSERT INTO writes (id) VALUES ($1)", &[&id]).await {
                        Ok(_) => noted.lock().unwrap().push(id),
                        // Read-only now (demoted) or gone: find the leader again.
                        Err(_) => client = None,
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        Writer { stop, acked, task }
    }

    async fn finish(self) -> Vec<i64> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}

/// A session on the member that takes writes, if one does.
async fn leader_session(ports: &[u16]) -> Option<tokio_postgres::Client> {
    for port in ports {
        let url = format!("postgresql://postgres@127.0.0.1:{port}/postgres?connect_timeout=1");
        let Ok((client, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await else { continue };
        tokio::spawn(conn);
        let Ok(row) = client.query_one("SELECT NOT pg_is_in_recovery()", &[]).await else { continue };
        if row.get::<_, bool>(0) {
            return Some(client);
        }
    }
    None
}

/// Acknowledged ids missing on the member at `port`.
async fn missing_on(port: u16, acked: &[i64]) -> Vec<i64> {
    let url = format!("postgresql://postgres@127.0.0.1:{port}/postgres");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let rows = client.query("SELECT id FROM writes", &[]).await.unwrap();
    let have: std::collections::HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
    acked.iter().copied().filter(|id| !have.contains(id)).collect()
}

fn link_up(s: &Scrape, source: &str, replica: &str) -> bool {
    s.get("replag_link_up", &[("source", source), ("replica", replica)]) == Some(1.0)
}

async fn events(replag: &Replag) -> Vec<Value> {
    let (_, body) = replag.get("/api/v1/events").await.unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    v["events"].as_array().cloned().unwrap_or_default()
}

/// Until Patroni names a leader other than `old`; returns it and when.
async fn new_leader(cluster: &Cluster, old: &str, limit: Duration) -> (String, Instant) {
    wait_for("Patroni to name a new leader", limit, || async {
        let leader = cluster.leader().await?;
        (leader != old).then(|| (leader, Instant::now()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patroni_clusters_are_found_and_followed_through_switchover_and_failover() {
    let mut etcd = Etcd::start().await;
    let mut main = Cluster::start(&etcd, "orders", 3, None).await;
    let first = main.leader().await.expect("a leader");
    let dr = Cluster::start(&etcd, "ordersdr", 1, Some(("127.0.0.1", main.member(&first).pg_port))).await;
    let state = tempfile::tempdir().unwrap();
    let journal = state.path().join("events.jsonl");
    let config = format!(
        "[poll]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\n[events]\njournal = \"{}\"\n\n{}\n{}",
        journal.display(),
        main.entry("us-east", "orders-ha"),
        dr.entry("eu-west", "ordersdr-ha"),
    );
    let replag = Replag::start(&config, &[PASSWORD_ENV]).await;

    // Found: every member measured, the standby cluster across regions.
    let names: Vec<String> = main.members.iter().map(|m| m.name.clone()).collect();
    let s = replag
        .wait_until("every member's link up", Duration::from_secs(30), |s| {
            // Claimed by its node (until its first poll, its upstream's row
            // alone shows it, as a replica no config names).
            let dr_placed = s
                .all("replag_link_up", &[("replica", "ordersdr-1")])
                .iter()
                .all(|l| l.labels["replica_region"] == "eu-west");
            names.iter().filter(|n| **n != first).all(|n| link_up(s, &first, n))
                && link_up(s, &first, "ordersdr-1")
                && dr_placed
        })
        .await;
    let dr_link = s.all("replag_link_up", &[("replica", "ordersdr-1")]);
    assert_eq!(dr_link[0].labels["replica_region"], "eu-west", "the standby cluster is in its entry's region");
    assert_eq!(dr_link[0].labels["source_region"], "us-east");
    for m in &main.members {
        assert_eq!(s.get("replag_patroni_endpoint_up", &[("endpoint", &m.api())]), Some(1.0));
    }
    assert_eq!(
        s.get("replag_patroni_member_info", &[("cluster", "orders-ha"), ("member", &first), ("role", "leader")]),
        Some(1.0)
    );
    assert_eq!(
        s.get("replag_patroni_member_info", &[("cluster", "ordersdr-ha"), ("role", "standby_leader")]),
        Some(1.0)
    );
    let (_, status) = replag.get("/api/v1/status").await.unwrap();
    let status: Value = serde_json::from_str(&status).unwrap();
    let clusters = status["postgres"]["patroni"].as_array().cloned().unwrap_or_default();
    assert_eq!(clusters.len(), 2, "{status}");

    // `replag check` lists what it found.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replag.toml");
    std::fs::write(&path, &config).unwrap();
    let (code, out, err) = run_replag(&["check", "--config", path.to_str().unwrap()], &[PASSWORD_ENV]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Patroni orders-ha") && out.contains(&format!("leader {first}")), "{out}");
    for n in &names {
        assert!(out.contains(n.as_str()), "{n} listed: {out}");
    }

    // A switchover under writes.
    let ports: Vec<u16> = main.members.iter().map(|m| m.pg_port).collect();
    let next = Arc::new(AtomicU64::new(1));
    let writer = Writer::start(ports.clone(), next.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let candidate = names.iter().find(|n| **n != first).unwrap().clone();
    main.switchover(&first, &candidate);
    let (leader, said_at) = new_leader(&main, &first, Duration::from_secs(30)).await;
    assert_eq!(leader, candidate);
    let others: Vec<&String> = names.iter().filter(|n| **n != candidate).collect();
    replag
        .wait_until("links from the new leader", Duration::from_secs(30), |s| {
            others.iter().all(|n| link_up(s, &candidate, n))
        })
        .await;
    println!(
        "switchover: replag showed every link from {candidate} up {:.2} s after Patroni named it (the old leader restarts as a replica meanwhile)",
        said_at.elapsed().as_secs_f64()
    );
    let acked = writer.finish().await;
    let missing = missing_on(main.member(&candidate).pg_port, &acked).await;
    assert!(acked.len() > 50, "the writer wrote: {}", acked.len());
    assert!(missing.is_empty(), "a switchover loses nothing: {} of {} missing", missing.len(), acked.len());
    let event = wait_for("the switchover event", Duration::from_secs(20), || async {
        events(&replag).await.into_iter().find(|e| e["kind"] == "switchover")
    })
    .await;
    println!("SWITCHOVER event: {event}");
    assert_eq!(event["to"]["node"], candidate.as_str());
    assert_eq!(event["lost_bytes"].as_u64(), Some(0), "nothing lost: {event}");
    let ha = &event["ha"];
    assert_eq!(ha["by"], "patroni", "{event}");
    assert_eq!(ha["new_leader"], candidate.as_str());
    assert_eq!(ha["switch_position"], event["switch_position"], "Patroni's switch point is the server's");
    // The old leader's links to the members are gone, not left behind as
    // series (the standby cluster still follows its configured address,
    // the old leader's, which cascades now).
    // Its WAL receiver reconnects once the old leader runs again.
    replag
        .wait_until("the old leader's links gone, the standby cluster's back", Duration::from_secs(30), |s| {
            s.all("replag_link_up", &[("source", &first)]).iter().all(|l| l.labels["replica"] == "ordersdr-1")
                && link_up(s, &first, "ordersdr-1")
                && link_up(s, &candidate, &first)
        })
        .await;

    // The leader dies.
    let writer = Writer::start(ports.clone(), next.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    main.member_mut(&candidate).kill();
    let killed_at = Instant::now();
    let (successor, said_at) = new_leader(&main, &candidate, Duration::from_secs(60)).await;
    println!("failover: Patroni named {successor} {:.1} s after the kill", killed_at.elapsed().as_secs_f64());
    let event = wait_for("the failover event", Duration::from_secs(20), || async {
        events(&replag).await.into_iter().find(|e| e["kind"] == "failover" && e["to"]["node"] == successor.as_str())
    })
    .await;
    println!("FAILOVER event: {event}; {:.2} s after Patroni named the leader", said_at.elapsed().as_secs_f64());
    assert_eq!(event["from"]["node"], candidate.as_str());
    let event = wait_for("Patroni's record joined to the event", Duration::from_secs(20), || async {
        events(&replag).await.into_iter().find(|e| e["id"] == event["id"] && e["ha"].is_object())
    })
    .await;
    let ha = &event["ha"];
    assert_eq!(ha["by"], "patroni");
    assert_eq!(ha["switch_position"], event["switch_position"], "{event}");
    assert_eq!(event["switch_exact"], true, "Patroni's switch point replaced replag's estimate: {event}");
    let at = ha["at"].as_f64().expect("Patroni's time of the switch");
    assert!((at - event["at"].as_f64().unwrap()).abs() < 30.0, "Patroni's time near replag's: {event}");
    let acked = writer.finish().await;
    let missing = missing_on(main.member(&successor).pg_port, &acked).await;
    let lost = event["lost_bytes"].as_u64().expect("lost bytes");
    println!("failover: {} of {} acknowledged writes missing; replag: {lost} bytes lost", missing.len(), acked.len());
    assert!(missing.is_empty() || lost > 0, "writes were lost but replag says 0: {event}");
    let survivors: Vec<&String> = names.iter().filter(|n| **n != candidate && **n != successor).collect();
    replag
        .wait_until("links from the successor", Duration::from_secs(30), |s| {
            survivors.iter().all(|n| link_up(s, &successor, n))
        })
        .await;

    // Maintenance mode, as Patroni says it.
    let paused = |s: &Scrape| s.get("replag_patroni_paused", &[("cluster", "orders-ha")]);
    assert_eq!(paused(&replag.scrape().await), Some(0.0));
    main.ctl(&["pause", &main.scope, "--wait"]);
    replag.wait_until("paused shown", Duration::from_secs(10), |s| paused(s) == Some(1.0)).await;
    // (Its exit status says whether every node is up: the killed member's
    // endpoint is still configured.)
    let (_, out, err) = run_replag(&["check", "--config", path.to_str().unwrap()], &[PASSWORD_ENV]);
    assert!(out.contains("PAUSED"), "{out}{err}");
    main.ctl(&["resume", &main.scope, "--wait"]);
    replag.wait_until("resumed shown", Duration::from_secs(10), |s| paused(s) == Some(0.0)).await;

    // etcd stops: Patroni cannot say anything new; replag keeps measuring
    // the members it knows.
    etcd.stop();
    let stopped = Instant::now();
    let survivor = survivors[0].clone();
    let before = replag.scrape().await.get("replag_node_polls_total", &[("node", &survivor)]).unwrap_or(0.0);
    let s = replag
        .wait_until("five more polls of the members without etcd", Duration::from_secs(20), |s| {
            s.get("replag_node_polls_total", &[("node", &survivor)]).unwrap_or(0.0) >= before + 5.0
        })
        .await;
    assert_eq!(s.get("replag_node_up", &[("node", &successor)]), Some(1.0), "the leader still measured");
    assert_eq!(s.get("replag_node_up", &[("node", &survivor)]), Some(1.0));
    println!(
        "etcd stopped {:.1} s: orders-ha up {:?}, link {successor}->{survivor} up {:?}",
        stopped.elapsed().as_secs_f64(),
        s.get("replag_node_up", &[("node", "orders-ha")]),
        s.get("replag_link_up", &[("source", &successor), ("replica", &survivor)])
    );
    etcd.resume().await;
    drop(dr);
}

/// Endpoints that are not Patroni, answer garbage or never answer: that
/// entry is down with why, nothing else is, nothing panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_that_are_not_patroni_are_down_with_why() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let garbage = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let not_patroni = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let black_hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addresses = [&garbage, &not_patroni, &black_hole].map(|l| l.local_addr().unwrap());
    let serve = |listener: tokio::net::TcpListener, reply: &'static str| {
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        })
    };
    serve(garbage, "HTTP/1.1 200 OK\r\ncontent-length: 13\r\nconnection: close\r\n\r\n{\"members\":7");
    serve(not_patroni, "HTTP/1.1 200 OK\r\ncontent-length: 15\r\nconnection: close\r\n\r\n<html>hi</html>");
    // Accepts and never answers.
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = black_hole.accept().await {
            sockets.push(socket);
        }
    });
    let config = format!(
        "[poll]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\n\
         [[regions.us-east.postgres]]\nname = \"ha\"\nrole = \"patroni\"\n\
         endpoints = [\"http://{}\", \"http://{}\", \"http://{}\"]\n\
         url = \"postgresql://replag@/postgres\"\npassword_env = \"REPLAG_TEST_PG_PASSWORD\"\n",
        addresses[0], addresses[1], addresses[2]
    );
    let replag = Replag::start(&config, &[PASSWORD_ENV]).await;
    let s = replag
        .wait_until("the entry down", Duration::from_secs(10), |s| {
            s.get("replag_node_up", &[("node", "ha")]) == Some(0.0)
        })
        .await;
    assert!(s.all("replag_node_info", &[]).len() <= 1, "no members from garbage");
    let (_, body) = replag.get("/api/v1/status").await.unwrap();
    let status: Value = serde_json::from_str(&body).unwrap();
    let node = status["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "ha").unwrap().clone();
    let why = node["failure"]["message"].as_str().unwrap_or_default().to_string();
    println!("why: {why}");
    assert!(why.contains("no Patroni endpoint answered"), "{node}");
    assert!(why.contains("not a Patroni /cluster reply"), "garbage named: {why}");
    assert!(why.contains(&addresses[2].to_string()), "the silent one named: {why}");
    assert!(!why.contains(MONITOR_PASSWORD) && !replag.log().contains(MONITOR_PASSWORD));
    let (status, _) = replag.get("/healthz").await.unwrap();
    assert_eq!(status, 200, "replag itself is fine");
    held.abort();
}
