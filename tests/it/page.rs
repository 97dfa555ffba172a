//! The status page in a real browser (headless Chromium over the DevTools
//! protocol), served by replag behind TLS and basic auth, against real
//! servers: a PostgreSQL standby whose replay is paused under writes (a
//! lagging link), a frozen Redis replica (a silent link, a node replag
//! cannot poll) and a Redis node that does not exist (a down node). The DOM
//! must show each in its state with its numbers, update without a reload
//! when the lag goes away, and screenshots go to the test output directory
//! (`target/tmp/status-page*.png`) for people to look at.

use crate::common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::postgres::{pair, wait_for_standby_caught_up, Workload};
use common::redis::{RedisServer, RedisWorkload};
use common::tls::{make_ca, make_signed};
use common::{free_port, wait_for, Replag, Scrape};
use serde_json::{json, Value};

const PG_LINK: &str = "postgres/physical/primary->standby";
const REDIS_LINK: &str = "redis/replica/redis-master->redis-replica";

fn output(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// `expression` about the link's element, evaluated in the page.
fn on_link(link: &str, expression: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector('[data-link=\"{link}\"]'); return e ? {expression} : null; }})()"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_each_state_and_updates_itself() {
    let (primary, standby) = pair("page").await;
    wait_for_standby_caught_up(&primary, &standby).await;
    let redis_master = RedisServer::start("page-master", None).await;
    let redis_replica = RedisServer::start("page-replica", Some(&redis_master)).await;

    // replag behind TLS and basic auth.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_ca(d, "ca");
    make_signed(d, "ca", "server", "subjectAltName=IP:127.0.0.1");
    let web = d.join("web.yml");
    let hash = bcrypt::hash("viewer-pw", 4).unwrap();
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {0}/server.pem\n  key_file: {0}/server.key\nbasic_auth_users:\n  viewer: '{hash}'\n",
            d.display()
        ),
    )
    .unwrap();
    let config = format!(
        "[poll]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\n\
         [[regions.us-east.postgres]]\nname = \"primary\"\nurl = \"{}\"\n\n\
         [[regions.eu-west.postgres]]\nname = \"standby\"\nurl = \"{}\"\n\n\
         [[regions.us-east.redis]]\nname = \"redis-master\"\nurl = \"{}\"\n\n\
         [[regions.ap-south.redis]]\nname = \"redis-replica\"\nurl = \"{}\"\n\n\
         [[regions.ap-south.redis]]\nname = \"redis-gone\"\nurl = \"redis://127.0.0.1:{}\"\n\n\
         [gates.deploy]\nmax_lag = \"2s\"\n",
        primary.monitor_url(),
        standby.monitor_url(),
        redis_master.url(),
        redis_replica.url(),
        free_port()
    );
    let replag = Replag::spawn(&config, &[], &["--web.config.file", web.to_str().unwrap()]);
    let https = format!("https://127.0.0.1:{}", replag.port);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(d.join("ca.pem")).unwrap()).unwrap();
    let client = reqwest::Client::builder().tls_built_in_root_certs(false).add_root_certificate(ca).build().unwrap();
    let scrape = || async {
        let response = client.get(format!("{https}/metrics")).basic_auth("viewer", Some("viewer-pw")).send().await;
        Some(Scrape::parse(response.ok()?.text().await.ok()?))
    };
    let _pg_writes = Workload::start(&primary, Duration::from_millis(100), Duration::from_secs(120)).await;
    let _redis_writes = RedisWorkload::start(&redis_master, Duration::from_millis(100), Duration::from_secs(120)).await;
    wait_for("both links up and measured", Duration::from_secs(30), || async {
        let s = scrape().await?;
        let up = |replica: &str| s.get("replag_link_up", &[("replica", replica)]) == Some(1.0);
        (up("standby") && up("redis-replica")).then_some(())
    })
    .await;

    // The faults: replay paused (lagging), the replica frozen (silent).
    standby.exec("SELECT pg_wal_replay_pause()").await;
    redis_replica.freeze();
    wait_for("the standby lagging past the gate and the replica silent", Duration::from_secs(30), || async {
        let s = scrape().await?;
        let lag = s.get("replag_lag_seconds", &[("replica", "standby")])?;
        let silent = s.get("replag_link_silent", &[("replica", "redis-replica")])?;
        (lag > 3.0 && silent == 1.0).then_some(())
    })
    .await;

    let mut browser = Browser::start().await;
    browser.extra_headers(json!({ "Authorization": "Basic dmlld2VyOnZpZXdlci1wdw==" })).await; // viewer:viewer-pw
    browser.viewport(1360, 900, false).await;
    browser.open(&format!("{https}/")).await;

    assert_eq!(browser.eval(&on_link(PG_LINK, "e.dataset.state")).await, "lagging");
    let seconds = browser.eval(&on_link(PG_LINK, "Number(e.querySelector('.lag').dataset.seconds)")).await;
    assert!(seconds.as_f64().is_some_and(|s| s > 2.0), "the lagging link's lag in the DOM: {seconds}");
    let text = browser.eval(&on_link(PG_LINK, "e.textContent")).await;
    let text = text.as_str().unwrap_or_default();
    assert!(text.contains("LAGGING") && text.contains("limit 2.0 s (gate deploy)"), "{text}");
    assert_eq!(browser.eval(&on_link(REDIS_LINK, "e.dataset.state")).await, "silent");
    let reason = browser.eval(&on_link(REDIS_LINK, "e.querySelector('.reason').textContent")).await;
    assert!(reason.as_str().is_some_and(|r| r.contains("silent for")), "{reason}");
    let node = |name: &str| format!("document.querySelector('[data-node=\"{name}\"]')?.dataset.up");
    assert_eq!(browser.eval(&node("redis-gone")).await, "false");
    assert_eq!(browser.eval(&node("primary")).await, "true");
    assert_eq!(browser.eval("document.querySelector('[data-gate=\"deploy\"]')?.dataset.pass").await, "false");
    let regions = browser.eval("[...document.querySelectorAll('[data-region]')].map(e => e.dataset.region)").await;
    assert_eq!(regions, json!(["ap-south", "eu-west", "us-east"]));
    assert!(browser.eval("document.querySelectorAll('svg.map g.pair').length").await.as_u64() >= Some(2));
    assert!(browser.eval("document.title").await.as_str().is_some_and(|t| t.contains("1 down, 1 lagging")));
    browser.screenshot(&output("status-page.png")).await;
    browser.viewport(390, 844, true).await;
    browser.dark(true).await;
    browser.screenshot(&output("status-page-phone-dark.png")).await;
    browser.viewport(1360, 900, false).await;
    browser.dark(false).await;

    // The lag goes away: the page follows without a reload.
    let loaded_at = browser.eval("window.replagLoadedAt").await;
    let updates_before = browser.eval("Number(document.body.dataset.updates)").await.as_u64().unwrap();
    standby.exec("SELECT pg_wal_replay_resume()").await;
    redis_replica.thaw();
    let resumed = Instant::now();
    let mut last: Value = Value::Null;
    while resumed.elapsed() < Duration::from_secs(30) {
        last = browser.eval(&on_link(PG_LINK, "e.dataset.state")).await;
        if last == "healthy" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(last, "healthy", "the page shows the standby caught up");
    println!("page: the standby healthy on the page {:.1} s after resuming", resumed.elapsed().as_secs_f64());
    assert_eq!(browser.eval("window.replagLoadedAt").await, loaded_at, "updated in place, not reloaded");
    let updates = browser.eval("Number(document.body.dataset.updates)").await.as_u64().unwrap();
    assert!(updates > updates_before, "live updates: {updates_before} → {updates}");
    let spark = browser.eval(&on_link(PG_LINK, "e.querySelector('svg.spark polyline')?.getAttribute('points')")).await;
    assert!(spark.as_str().is_some_and(|p| !p.is_empty()), "a sparkline of the lag: {spark}");
    browser.screenshot(&output("status-page-recovered.png")).await;

    // The same 15 minutes for programs: /api/v1/history kept the lag and the outage.
    let response = client.get(format!("{https}/api/v1/history")).basic_auth("viewer", Some("viewer-pw")).send().await;
    let history: Value = serde_json::from_str(&response.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(history["bucket_seconds"], 10);
    let points = |replica: &str| -> Vec<Value> {
        let links = history["links"].as_array().unwrap();
        let link = links.iter().find(|l| l["replica"] == replica).unwrap_or_else(|| panic!("{replica} in {history}"));
        link["points"].as_array().unwrap().clone()
    };
    let worst = points("standby").iter().filter_map(|p| p["max_lag_seconds"].as_f64()).fold(0.0, f64::max);
    assert!(worst > 2.0, "the paused standby's worst lag in its history: {worst}");
    assert!(points("redis-replica").iter().any(|p| p["down"] == true), "the silent replica's outage in its history");
    println!("page: screenshots in {}", output("").display());
    drop(replag);
}
