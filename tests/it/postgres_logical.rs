//! PostgreSQL logical replication against real publishers and subscribers:
//! lag made to happen (a disabled subscription, an apply conflict) and
//! checked against it; two regions replicating to each other.

use crate::common;

use std::time::{Duration, Instant};

use common::postgres::{primary, subscribe, PgServer, Workload};
use common::{Replag, Scrape};

fn logical_link<'a>(source: &'a str, replica: &'a str) -> [(&'a str, &'a str); 4] {
    [("system", "postgres"), ("kind", "logical"), ("source", source), ("replica", replica)]
}

const PUB_TO_SUB: [(&str, &str); 6] = [
    ("system", "postgres"),
    ("kind", "logical"),
    ("source", "publisher"),
    ("source_region", "us-east"),
    ("replica", "subscriber"),
    ("replica_region", "eu-west"),
];

fn lag(s: &Scrape) -> (Option<f64>, Option<f64>) {
    (s.get("replag_lag_seconds", &PUB_TO_SUB), s.get("replag_lag_bytes", &PUB_TO_SUB))
}

fn link_up(s: &Scrape) -> Option<f64> {
    s.get("replag_link_up", &PUB_TO_SUB)
}

fn config(nodes: &[(&str, &str, &PgServer)]) -> String {
    let mut text = "[poll]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n".to_string();
    for (region, name, server) in nodes {
        text.push_str(&format!(
            "\n[[regions.{region}.postgres]]\nname = \"{name}\"\nurl = \"{}\"\n",
            server.monitor_url()
        ));
    }
    text
}

/// A publisher (us-east) of table `writes` and a subscriber (eu-west), in sync.
async fn pub_sub(prefix: &str) -> (PgServer, PgServer, Replag) {
    let publisher = primary(&format!("{prefix}-pub")).await;
    let subscriber = primary(&format!("{prefix}-sub")).await;
    publisher.exec("CREATE PUBLICATION pub FOR TABLE writes").await;
    subscribe(&subscriber, "sub", &publisher, "pub").await;
    let replag =
        Replag::start(&config(&[("us-east", "publisher", &publisher), ("eu-west", "subscriber", &subscriber)]), &[])
            .await;
    (publisher, subscriber, replag)
}

/// Case 1: idle and caught up: 0 s, 0 bytes, link up, for a sustained period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_subscription_reports_zero() {
    let (_publisher, _subscriber, replag) = pub_sub("lidle").await;
    replag
        .wait_until("the logical link to be up and measured", Duration::from_secs(20), |s| {
            link_up(s) == Some(1.0) && lag(s).0.is_some()
        })
        .await;
    let started = Instant::now();
    let mut scrapes = 0;
    while started.elapsed() < Duration::from_secs(10) {
        let s = replag.scrape().await;
        assert_eq!(lag(&s), (Some(0.0), Some(0.0)), "idle logical lag at {:?}", started.elapsed());
        assert_eq!(link_up(&s), Some(1.0));
        assert_eq!(s.get("replag_pg_subscription_worker_running", &[("subscription", "sub")]), Some(1.0));
        scrapes += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let s = replag.scrape().await;
    assert!(
        s.all("replag_link_up", &[("kind", "physical")]).is_empty(),
        "the logical walsender is not mistaken for a physical standby"
    );
    assert_eq!(s.get("replag_pg_subscription_tables", &[("subscription", "sub"), ("state", "r")]), Some(1.0));
    println!("logical idle: {scrapes} scrapes over 10 s, all 0 s / 0 bytes, link up");
}

/// Case 2: `ALTER SUBSCRIPTION … DISABLE` under writes: link down, bytes and
/// seconds grow (~1 s/s); after `ENABLE` it catches up to ~0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_subscription_is_down_and_lag_grows_then_catches_up() {
    let (publisher, subscriber, replag) = pub_sub("ldis").await;
    let _writes = Workload::start(&publisher, Duration::from_millis(50), Duration::from_secs(90)).await;
    replag
        .wait_until("a caught-up logical link under writes", Duration::from_secs(20), |s| {
            link_up(s) == Some(1.0) && lag(s).0.is_some_and(|l| l < 1.0)
        })
        .await;
    let disabled_at = Instant::now();
    subscriber.exec("ALTER SUBSCRIPTION sub DISABLE").await;
    let first = replag
        .wait_until("the link to go down with lag growing", Duration::from_secs(15), |s| {
            link_up(s) == Some(0.0) && lag(s).0.is_some_and(|l| l > 1.0)
        })
        .await;
    assert_eq!(first.get("replag_pg_subscription_enabled", &[("subscription", "sub")]), Some(0.0));
    let (t_a, (Some(lag_a), Some(bytes_a))) = (Instant::now(), lag(&first)) else { panic!("lag present") };
    // A measurement window, not a readiness wait: the slope is the assertion.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let second = replag.scrape().await;
    let (t_b, (Some(lag_b), Some(bytes_b))) = (Instant::now(), lag(&second)) else { panic!("lag present") };
    let slope = (lag_b - lag_a) / (t_b - t_a).as_secs_f64();
    let truth = disabled_at.elapsed().as_secs_f64();
    println!(
        "logical disabled: lag {lag_a:.2} s -> {lag_b:.2} s over {:.2} s = {slope:.3} s/s (disabled for {truth:.2} s); bytes {bytes_a} -> {bytes_b}",
        (t_b - t_a).as_secs_f64()
    );
    assert!((0.8..=1.2).contains(&slope), "seconds grow ~1 s/s: {slope}");
    assert!(bytes_b > bytes_a);
    assert!((lag_b - truth).abs() <= 1.5, "lag {lag_b} ≈ time disabled {truth}");
    assert_eq!(link_up(&second), Some(0.0));
    let (_, status) = replag.get("/api/v1/status").await.unwrap();
    assert!(status.contains("subscription sub is disabled"), "{status}");

    subscriber.exec("ALTER SUBSCRIPTION sub ENABLE").await;
    let back = replag
        .wait_until("the link to catch up", Duration::from_secs(30), |s| {
            link_up(s) == Some(1.0) && lag(s).0.is_some_and(|l| l < 1.0)
        })
        .await;
    println!("logical after enable: lag {:?}", lag(&back));
}

/// Case 3: an apply conflict: the error counter rises and the link shows the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_conflict_raises_the_error_counter_and_fails_the_link() {
    let (publisher, subscriber, replag) = pub_sub("lerr").await;
    replag.wait_until("the logical link to be up", Duration::from_secs(20), |s| link_up(s) == Some(1.0)).await;
    subscriber.exec("INSERT INTO writes (id, payload) VALUES (1000000, 'already here')").await;
    publisher.exec("INSERT INTO writes (id, payload) VALUES (1000000, 'conflicts')").await;
    let s = replag
        .wait_until("apply errors and a failing link", Duration::from_secs(30), |s| {
            s.get("replag_pg_subscription_apply_errors_total", &[("subscription", "sub")]).is_some_and(|n| n >= 1.0)
                && link_up(s) == Some(0.0)
        })
        .await;
    let (_, status) = replag.get("/api/v1/status").await.unwrap();
    assert!(status.contains("apply errors rising"), "{status}");
    let _writes = Workload::start(&publisher, Duration::from_millis(50), Duration::from_secs(30)).await;
    let later = replag
        .wait_until("lag to grow behind the conflict", Duration::from_secs(15), |s| lag(s).0.is_some_and(|l| l > 3.0))
        .await;
    println!(
        "logical apply conflict: apply_error_count {:?}, link up {:?}, lag {:?}",
        s.get("replag_pg_subscription_apply_errors_total", &[("subscription", "sub")]),
        link_up(&s),
        lag(&later)
    );
}

/// Case 4: two regions replicating to each other: two independent links with
/// the right directions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bidirectional_regions_have_two_independent_links() {
    let east = primary("lbi-east").await;
    let west = primary("lbi-west").await;
    for server in [&east, &west] {
        server
            .exec("CREATE TABLE east_data (id bigint PRIMARY KEY); CREATE TABLE west_data (id bigint PRIMARY KEY);")
            .await;
    }
    east.exec("CREATE PUBLICATION east_pub FOR TABLE east_data").await;
    west.exec("CREATE PUBLICATION west_pub FOR TABLE west_data").await;
    subscribe(&west, "west_from_east", &east, "east_pub").await;
    subscribe(&east, "east_from_west", &west, "west_pub").await;
    let replag = Replag::start(&config(&[("us-east", "east", &east), ("eu-west", "west", &west)]), &[]).await;
    let east_to_west = logical_link("east", "west");
    let west_to_east = logical_link("west", "east");
    let s = replag
        .wait_until("both links up", Duration::from_secs(20), |s| {
            s.get("replag_link_up", &east_to_west) == Some(1.0) && s.get("replag_link_up", &west_to_east) == Some(1.0)
        })
        .await;
    assert_eq!(
        s.all("replag_link_up", &[("kind", "logical")]).len(),
        2,
        "exactly two logical links: {:?}",
        s.all("replag_link_up", &[("kind", "logical")])
    );
    assert_eq!(s.all("replag_link_up", &[("source_region", "us-east"), ("replica_region", "eu-west")]).len(), 1);
    assert_eq!(s.all("replag_link_up", &[("source_region", "eu-west"), ("replica_region", "us-east")]).len(), 1);

    // Break one direction only: the other keeps streaming.
    west.exec("ALTER SUBSCRIPTION west_from_east DISABLE").await;
    let s = replag
        .wait_until("east->west down, west->east up", Duration::from_secs(15), |s| {
            s.get("replag_link_up", &east_to_west) == Some(0.0) && s.get("replag_link_up", &west_to_east) == Some(1.0)
        })
        .await;
    println!(
        "bidirectional: east->west up {:?}, west->east up {:?} after disabling west_from_east",
        s.get("replag_link_up", &east_to_west),
        s.get("replag_link_up", &west_to_east)
    );
}

/// Case 5: publisher unreachable: the subscriber's view is still reported and
/// nothing panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_publisher_still_shows_the_subscriber_view() {
    let (mut publisher, _subscriber, mut replag) = pub_sub("lpubdown").await;
    replag.wait_until("the logical link to be up", Duration::from_secs(20), |s| link_up(s) == Some(1.0)).await;
    publisher.stop();
    let s = replag
        .wait_until("the publisher to be down", Duration::from_secs(15), |s| {
            s.get("replag_node_up", &[("node", "publisher")]) == Some(0.0)
        })
        .await;
    assert!(link_up(&s).is_some(), "the link series stays");
    assert_eq!(s.get("replag_pg_subscription_enabled", &[("subscription", "sub")]), Some(1.0));
    assert_eq!(s.get("replag_node_up", &[("node", "subscriber")]), Some(1.0));
    // The apply worker loses its connection: the link goes down.
    replag.wait_until("the link to go down", Duration::from_secs(30), |s| link_up(s) == Some(0.0)).await;
    assert!(replag.is_running());
    assert_eq!(replag.get("/healthz").await.unwrap().0, 200);
}
