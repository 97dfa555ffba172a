//! Redis replication against real `redis-server` masters and replicas: lag is
//! made to happen (a frozen replica under writes) and checked against it.

use crate::common;

use std::time::{Duration, Instant};

use common::redis::{pair_config, RedisServer, RedisWorkload, PASSWORD};
use common::tls::{make_ca, make_signed};
use common::{run_replag, Replag, Scrape};

const LINK: [(&str, &str); 6] = [
    ("system", "redis"),
    ("kind", "replica"),
    ("source", "master"),
    ("source_region", "us-east"),
    ("replica", "replica"),
    ("replica_region", "eu-west"),
];

fn lag(s: &Scrape) -> (Option<f64>, Option<f64>) {
    (s.get("replag_lag_seconds", &LINK), s.get("replag_lag_bytes", &LINK))
}

fn link_up(s: &Scrape) -> Option<f64> {
    s.get("replag_link_up", &LINK)
}

async fn start_pair() -> (RedisServer, RedisServer, Replag) {
    let master = RedisServer::start("master", None).await;
    let replica = RedisServer::start("replica", Some(&master)).await;
    let replag = Replag::start(&pair_config(&master, &replica), &[("REDIS_PW", PASSWORD)]).await;
    (master, replica, replag)
}

/// Case 1: idle and caught up — 0 bytes, 0 s, link up — although the master
/// pings its replica every second (its offset keeps moving).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_caught_up_replica_reports_zero() {
    let (master, _replica, replag) = start_pair().await;
    replag
        .wait_until("the link to be up and measured", Duration::from_secs(20), |s| {
            link_up(s) == Some(1.0) && lag(s).0.is_some()
        })
        .await;
    let offset_before = master.info("replication").await;
    let started = Instant::now();
    let mut scrapes = 0;
    while started.elapsed() < Duration::from_secs(10) {
        let s = replag.scrape().await;
        assert_eq!(lag(&s), (Some(0.0), Some(0.0)), "idle at {:?}", started.elapsed());
        assert_eq!(link_up(&s), Some(1.0));
        scrapes += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let offset_after = master.info("replication").await;
    assert_ne!(offset_before, offset_after, "the master's offset moved (pings) while replag reported 0");
    println!("redis idle: {scrapes} scrapes over 10 s, all 0 s / 0 bytes while the master pinged every second");
}

/// Case 2: replica frozen (`kill -STOP`) under writes for ~10 s: bytes and
/// seconds grow, seconds at ~1 s/s; after `kill -CONT` both return to ~0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_replica_lag_grows_one_second_per_second_then_recovers() {
    let (master, replica, replag) = start_pair().await;
    let _writes = RedisWorkload::start(&master, Duration::from_millis(20), Duration::from_secs(90)).await;
    replag
        .wait_until("a caught-up replica under writes", Duration::from_secs(20), |s| {
            link_up(s) == Some(1.0) && lag(s).0.is_some_and(|l| l < 1.0)
        })
        .await;

    let frozen_at = Instant::now();
    replica.freeze();
    let first =
        replag.wait_until("lag to grow past 1 s", Duration::from_secs(10), |s| lag(s).0.is_some_and(|l| l > 1.0)).await;
    let (t_a, (Some(lag_a), Some(bytes_a))) = (Instant::now(), lag(&first)) else { panic!("lag present") };
    assert_eq!(first.get("replag_node_up", &[("node", "replica")]), Some(0.0), "a frozen replica does not answer");
    // A measurement window, not a readiness wait: the slope is the assertion.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let second = replag.scrape().await;
    let (t_b, (Some(lag_b), Some(bytes_b))) = (Instant::now(), lag(&second)) else { panic!("lag present") };
    let slope = (lag_b - lag_a) / (t_b - t_a).as_secs_f64();
    let truth = frozen_at.elapsed().as_secs_f64();
    println!(
        "redis frozen replica: lag {lag_a:.2} s -> {lag_b:.2} s over {:.2} s = {slope:.3} s/s (frozen for {truth:.2} s); bytes {bytes_a} -> {bytes_b}",
        (t_b - t_a).as_secs_f64()
    );
    assert!((0.8..=1.2).contains(&slope), "seconds grow ~1 s/s: {slope}");
    assert!(bytes_b > bytes_a, "bytes grow under writes");
    assert!((lag_b - truth).abs() <= 1.5, "lag {lag_b} is the freeze duration {truth} within 1.5 s");
    assert_eq!(link_up(&second), Some(0.0), "a replica that has not ACKed for 5 s is not a live link");

    replica.thaw();
    let back = replag
        .wait_until("lag to return to ~0", Duration::from_secs(20), |s| {
            link_up(s) == Some(1.0) && lag(s).0.is_some_and(|l| l < 1.0)
        })
        .await;
    println!("redis after thaw: lag {:?}", lag(&back));
}

/// Case 3: replica killed: the link is down with its down-time growing, and
/// the master's own view shows the replica gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_replica_is_a_down_link_and_gone_from_the_master() {
    let (_master, mut replica, replag) = start_pair().await;
    // Seen from both ends: the master's own report lists the replica.
    let before = replag
        .wait_until("the link to be up, seen by the master", Duration::from_secs(20), |s| {
            link_up(s) == Some(1.0) && s.get("replag_redis_connected_replicas", &[("node", "master")]).is_some()
        })
        .await;
    assert_eq!(before.get("replag_redis_connected_replicas", &[("node", "master")]), Some(1.0));
    replica.kill();
    let down = replag
        .wait_until("the link to go down, the master to lose its replica", Duration::from_secs(15), |s| {
            link_up(s) == Some(0.0) && s.get("replag_redis_connected_replicas", &[("node", "master")]) == Some(0.0)
        })
        .await;
    let first_down = down.get("replag_link_down_seconds", &LINK).unwrap();
    let later = replag
        .wait_until("down time to grow", Duration::from_secs(10), |s| {
            s.get("replag_link_down_seconds", &LINK).is_some_and(|d| d >= first_down + 2.0)
        })
        .await;
    assert_eq!(later.get("replag_node_up", &[("node", "replica")]), Some(0.0));
    assert_eq!(later.get("replag_node_up", &[("node", "master")]), Some(1.0));
    let (_, status) = replag.get("/api/v1/status").await.unwrap();
    assert!(status.contains("not listed by master"), "{status}");
}

/// Case 4: `REPLICAOF NO ONE`: no panic, no bogus lag, both masters visible
/// and the link flagged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promoted_replica_shows_its_role_without_bogus_lag() {
    let (master, replica, mut replag) = start_pair().await;
    let _writes = RedisWorkload::start(&master, Duration::from_millis(20), Duration::from_secs(60)).await;
    replag.wait_until("the link to be up", Duration::from_secs(20), |s| link_up(s) == Some(1.0)).await;
    replica.command(&["REPLICAOF", "NO", "ONE"]).await;
    replag
        .wait_until("the replica to show as a master", Duration::from_secs(15), |s| {
            !s.all("replag_node_info", &[("node", "replica"), ("role", "master")]).is_empty()
        })
        .await;
    let _new_writes = RedisWorkload::start(&replica, Duration::from_millis(20), Duration::from_secs(30)).await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        let s = replag.scrape().await;
        for sample in s.all("replag_lag_seconds", &[]) {
            assert!(sample.value < 5.0, "no bogus lag: {sample:?}");
        }
        assert_eq!(link_up(&s), Some(0.0));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, status) = replag.get("/api/v1/status").await.unwrap();
    assert!(status.contains("is a master now"), "{status}");
    assert!(replag.is_running());
}

/// Case 5: wrong password, and an ACL user without the INFO permission: the
/// node is down with reason auth; the password is printed nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_missing_permission_are_auth_failures_without_leaks() {
    let master = RedisServer::start("auth-master", None).await;
    let limited_password = "Lim1ted-pw-4c8d";
    master.command(&["ACL", "SETUSER", "limited", "on", &format!(">{limited_password}"), "-@all", "+ping"]).await;
    let wrong = "Wr0ng-redis-pw-e3b0c4";
    let config = format!(
        "[poll]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\n\
         [[regions.us-east.redis]]\nname = \"good\"\nurl = \"{}\"\n\n\
         [[regions.us-east.redis]]\nname = \"wrong-password\"\nurl = \"redis://:{wrong}@127.0.0.1:{port}\"\n\n\
         [[regions.us-east.redis]]\nname = \"no-permission\"\nurl = \"redis://limited@127.0.0.1:{port}\"\npassword_env = \"LIMITED_PW\"\n",
        master.url(),
        port = master.port
    );
    let env = [("LIMITED_PW", limited_password)];
    let replag = Replag::start(&config, &env).await;
    let s = replag
        .wait_until("both bad nodes to fail on auth", Duration::from_secs(15), |s| {
            ["wrong-password", "no-permission"]
                .iter()
                .all(|n| s.get("replag_node_failing", &[("node", n), ("reason", "auth")]) == Some(1.0))
        })
        .await;
    assert_eq!(s.get("replag_node_up", &[("node", "good")]), Some(1.0));
    let log = replag.log();
    assert!(log.contains("wrong-password") && log.contains("no-permission"), "{log}");
    let (_, status) = replag.get("/api/v1/status").await.unwrap();
    assert!(status.contains("NOPERM") || status.contains("permission"), "the reason is visible: {status}");
    let (code, out, err) = run_replag(&["check", "--config", replag.config_path.to_str().unwrap()], &env);
    assert_eq!(code, 1);
    for (what, text) in [("log", &log), ("metrics", &s.text), ("api", &status), ("check", &out), ("check stderr", &err)]
    {
        for secret in [wrong, limited_password, PASSWORD] {
            assert!(!text.contains(secret), "a password leaked into the {what}");
        }
    }
}

/// Case 6: a master with replicas in two other regions: one link each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_with_replicas_in_two_regions_has_one_link_each() {
    let master = RedisServer::start("multi-master", None).await;
    let eu = RedisServer::start("multi-eu", Some(&master)).await;
    let ap = RedisServer::start("multi-ap", Some(&master)).await;
    let config = format!(
        "[poll]\ninterval = \"500ms\"\n\n\
         [[regions.us-east.redis]]\nname = \"master\"\nurl = \"{}\"\n\n\
         [[regions.eu-west.redis]]\nname = \"replica-eu\"\nurl = \"{}\"\n\n\
         [[regions.ap-south.redis]]\nname = \"replica-ap\"\nurl = \"{}\"\n",
        master.url(),
        eu.url(),
        ap.url()
    );
    let replag = Replag::start(&config, &[]).await;
    let _writes = RedisWorkload::start(&master, Duration::from_millis(50), Duration::from_secs(30)).await;
    // Complete once the master's own view (its replica list) is in too.
    let s = replag
        .wait_until("two live links seen from both ends", Duration::from_secs(20), |s| {
            s.all("replag_link_up", &[("system", "redis"), ("source", "master")])
                .iter()
                .filter(|x| x.value == 1.0)
                .count()
                == 2
                && s.all("replag_redis_replica_info", &[("state", "online")]).len() == 2
        })
        .await;
    let links = s.all("replag_link_up", &[("system", "redis")]);
    assert_eq!(links.len(), 2, "exactly two redis links: {links:?}");
    for (replica, region) in [("replica-eu", "eu-west"), ("replica-ap", "ap-south")] {
        let labels =
            [("source", "master"), ("source_region", "us-east"), ("replica", replica), ("replica_region", region)];
        assert_eq!(s.get("replag_link_up", &labels), Some(1.0), "{replica}");
        assert!(s.get("replag_lag_bytes", &labels).is_some(), "{replica} has byte lag");
        assert_eq!(s.get("replag_redis_replica_info", &[("replica", replica), ("state", "online")]), Some(1.0));
    }
    assert_eq!(s.get("replag_redis_connected_replicas", &[("node", "master")]), Some(2.0));
}

/// `rediss://` with certificate verification: a server whose certificate the
/// configured CA signed is up; the same server checked against another CA is
/// refused (reason connect), never silently accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_verifies_the_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path(), "good-ca");
    make_ca(dir.path(), "other-ca");
    make_signed(dir.path(), "good-ca", "server", "subjectAltName=IP:127.0.0.1,DNS:localhost");
    let port = common::free_port();
    let mut server = std::process::Command::new("redis-server")
        .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(["--tls-cert-file", "server.pem", "--tls-key-file", "server.key", "--tls-ca-cert-file", "good-ca.pem"])
        .args(["--tls-auth-clients", "no", "--requirepass", PASSWORD])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let d = dir.path().display();
    let config = format!(
        "[poll]\ninterval = \"500ms\"\n\n\
         [[regions.us-east.redis]]\nname = \"tls-good\"\nurl = \"rediss://:{PASSWORD}@127.0.0.1:{port}\"\nca_file = \"{d}/good-ca.pem\"\n\n\
         [[regions.us-east.redis]]\nname = \"tls-wrong-ca\"\nurl = \"rediss://:{PASSWORD}@127.0.0.1:{port}\"\nca_file = \"{d}/other-ca.pem\"\n\n\
         [[regions.us-east.redis]]\nname = \"tls-system-roots\"\nurl = \"rediss://:{PASSWORD}@127.0.0.1:{port}\"\n"
    );
    let replag = Replag::start(&config, &[]).await;
    let s = replag
        .wait_until("the TLS nodes to be polled", Duration::from_secs(20), |s| {
            s.get("replag_node_up", &[("node", "tls-good")]) == Some(1.0)
                && s.get("replag_node_failing", &[("node", "tls-wrong-ca"), ("reason", "connect")]) == Some(1.0)
                && s.get("replag_node_failing", &[("node", "tls-system-roots"), ("reason", "connect")]) == Some(1.0)
        })
        .await;
    assert_eq!(s.get("replag_node_up", &[("node", "tls-wrong-ca")]), Some(0.0));
    let (_, status) = replag.get("/api/v1/status").await.unwrap();
    assert!(status.to_lowercase().contains("certificate"), "the TLS failure is explained: {status}");
    assert!(!status.contains(PASSWORD) && !replag.log().contains(PASSWORD));
    let _ = server.kill();
    let _ = server.wait();
}

/// `INFO server` and `INFO stats` are read on a connection's first poll and
/// every `SERVER_FACTS_EVERY` polls, not on every poll: the resync counters
/// of a running master still follow (a replica's reconnection, a partial
/// resync), and a restarted master — another process, a new connection —
/// is read anew at once (its run ID).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_facts_follow_a_running_master_and_a_restart() {
    let (mut master, _replica, replag) = start_pair().await;
    let field = |info: &str, key: &str| {
        let prefix = format!("{key}:");
        info.lines().find_map(|l| l.strip_prefix(prefix.as_str())).map(|v| v.trim().to_string()).unwrap()
    };
    // The run ID is in /api/v1/status (the node's identity), not a label.
    let run_id_seen = |run_id: String| {
        let replag = &replag;
        async move {
            let (_, body) = replag.get("/api/v1/status").await.ok()?;
            let status: serde_json::Value = serde_json::from_str(&body).ok()?;
            let nodes = status["nodes"].as_array()?;
            let node = nodes.iter().find(|n| n["name"] == "master")?;
            (node["identity"]["run_id"] == run_id.as_str()).then_some(())
        }
    };
    let first = field(&master.info("server").await, "run_id");
    common::wait_for("the master's run ID", Duration::from_secs(20), || run_id_seen(first.clone())).await;

    // The replica drops and resumes its stream: a partial resync, counted
    // on the master while replag's connection to it stays.
    let before = field(&master.info("stats").await, "sync_partial_ok").parse::<u64>().unwrap();
    master.command(&["CLIENT", "KILL", "TYPE", "replica"]).await;
    let partial = common::wait_for("the replica's partial resync", Duration::from_secs(20), || async {
        let now = field(&master.info("stats").await, "sync_partial_ok").parse::<u64>().unwrap();
        (now > before).then_some(now)
    })
    .await;
    let started = Instant::now();
    replag
        .wait_until("replag to count the partial resync", Duration::from_secs(30), |s| {
            s.get("replag_redis_sync_partial_ok_total", &[("node", "master")]) == Some(partial as f64)
        })
        .await;
    println!("server facts: a partial resync counted by replag {:?} after the master did", started.elapsed());

    master.restart().await;
    let second = field(&master.info("server").await, "run_id");
    assert_ne!(first, second);
    common::wait_for("the restarted master's run ID", Duration::from_secs(20), || run_id_seen(second.clone())).await;
}
