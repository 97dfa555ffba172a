//! A primary dies: what replag says against the truth. A writer commits a
//! row every 20 ms and notes each commit; the standby's stream is cut
//! silently (a black hole, no reset), the primary killed, the standby
//! promoted, the old primary started again. The truth: what the writer saw
//! committed, the dead primary's end of WAL (`pg_waldump`), the new
//! timeline's history file. Asserted: data at risk, `/promote`, the
//! failover event's switch point, lost bytes, write gap, the split brain
//! and its diverged bytes, and the event surviving a restart of replag.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::netfault::Proxy;
use common::postgres::{self, parse_lsn, PgServer, MONITOR_USER};
use common::{run_replag, wait_for, Replag, Scrape};
use serde_json::Value;

/// One write the writer saw committed.
#[derive(Debug, Clone)]
struct Commit {
    token: String,
    at: Instant,
    /// Which target took it (0: the first primary, 1: the promoted standby).
    target: usize,
}

/// Inserts a row every `every` on the first target that takes writes,
/// trying the next when one fails; notes every commit it saw acknowledged.
struct Writer {
    stop: Arc<AtomicBool>,
    commits: Arc<Mutex<Vec<Commit>>>,
}

impl Writer {
    fn start(targets: Vec<tokio_postgres::Config>, every: Duration) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(Mutex::new(Vec::new()));
        let (flag, log) = (stop.clone(), commits.clone());
        tokio::spawn(async move {
            let mut target = 0;
            let mut client: Option<tokio_postgres::Client> = None;
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                if client.is_none() {
                    let connect =
                        tokio::time::timeout(Duration::from_secs(1), targets[target].connect(tokio_postgres::NoTls));
                    if let Ok(Ok((c, connection))) = connect.await {
                        tokio::spawn(connection);
                        client = Some(c);
                    }
                }
                let Some(c) = &client else {
                    target = (target + 1) % targets.len();
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                n += 1;
                let token = format!("w{n}");
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&token];
                let insert = c.execute("INSERT INTO writes (payload) VALUES ($1)", &params);
                match tokio::time::timeout(Duration::from_secs(1), insert).await {
                    Ok(Ok(_)) => {
                        log.lock().unwrap().push(Commit { token, at: Instant::now(), target });
                        tokio::time::sleep(every).await;
                    }
                    // Read-only (a standby not promoted yet), gone, or hung: the next target.
                    _ => {
                        client = None;
                        target = (target + 1) % targets.len();
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        });
        Writer { stop, commits }
    }

    fn commits(&self) -> Vec<Commit> {
        self.commits.lock().unwrap().clone()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn superuser(server: &PgServer) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config.host_path(server.socket_dir()).port(server.port).user("postgres").dbname("postgres");
    config
}

async fn lsn_of(server: &PgServer, sql: &str) -> u64 {
    let row = server.admin().await.query_one(sql, &[]).await.unwrap();
    parse_lsn(&row.get::<_, String>(0))
}

async fn events(replag: &Replag) -> Vec<Value> {
    let (status, body) = replag.get("/api/v1/events").await.expect("events answer");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["events"].as_array().cloned().unwrap_or_default()
}

fn event_of<'a>(events: &'a [Value], kind: &str) -> Option<&'a Value> {
    events.iter().find(|e| e["kind"] == kind)
}

fn config(primary: &PgServer, standby: &PgServer, journal: &std::path::Path, heartbeat: bool) -> String {
    format!(
        "[events]\njournal = \"{}\"\n\n[heartbeat]\nwriter = \"test\"\n\n\
         [[regions.us-east.postgres]]\nname = \"pg-us-east\"\nurl = \"{}\"\nheartbeat = {heartbeat}\n\n\
         [[regions.eu-west.postgres]]\nname = \"pg-eu-west\"\nurl = \"{}\"\nheartbeat = {heartbeat}\n",
        journal.display(),
        primary.monitor_url(),
        standby.monitor_url()
    )
}

/// replag's heartbeat table, for the monitoring role (docs/configuration.md).
const HEARTBEAT_TABLE: &str = "CREATE SCHEMA replag;
    CREATE TABLE replag.heartbeat (writer text NOT NULL, source text NOT NULL, seq bigint NOT NULL,
        written_at timestamptz NOT NULL, PRIMARY KEY (writer, source));
    GRANT USAGE ON SCHEMA replag TO replag_mon;
    GRANT SELECT, INSERT, UPDATE ON replag.heartbeat TO replag_mon;";

fn within(what: &str, reported: f64, truth: f64, tolerance: f64) {
    println!("{what}: replag {reported:.0}, truth {truth:.0}");
    assert!(
        (reported - truth).abs() <= tolerance,
        "{what}: replag says {reported}, the truth is {truth} (± {tolerance})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_dies_under_writes_and_replag_measures_the_failover() {
    let mut primary = postgres::primary("fo-primary").await;
    let repl = Proxy::start(primary.port).await;
    let standby = postgres::standby_via(&primary, "fo-standby", repl.port).await;
    // The switch point from the server's own record: the monitor role may
    // read the timeline history file.
    primary.exec(&format!("GRANT EXECUTE ON FUNCTION pg_read_file(text) TO {MONITOR_USER}")).await;
    primary.exec(HEARTBEAT_TABLE).await;
    primary.exec("INSERT INTO writes (payload) VALUES ('first')").await;
    postgres::wait_for_standby_caught_up(&primary, &standby).await;
    let state = tempfile::tempdir().unwrap();
    let journal = state.path().join("events.jsonl");
    let body = config(&primary, &standby, &journal, true);
    let replag = Replag::start(&body, &[]).await;
    let link = [("source", "pg-us-east"), ("replica", "pg-eu-west")];
    replag.wait_until("the link up", Duration::from_secs(20), |s| s.get("replag_link_up", &link) == Some(1.0)).await;
    wait_for("position reads of the primary", Duration::from_secs(20), || async {
        replag.sampling(&["pg-us-east"]).await.then_some(())
    })
    .await;
    let (status, verdict) = replag.get("/promote?node=pg-eu-west").await.unwrap();
    println!("/promote with the primary up: {status} {verdict}");
    assert_eq!(status, 503, "never beside a primary that answers: {verdict}");
    assert!(verdict.contains("stop it first"), "{verdict}");

    // Writes, then the stream cut silently, then the primary killed.
    let writer = Writer::start(vec![superuser(&primary), superuser(&standby)], Duration::from_millis(20));
    tokio::time::sleep(Duration::from_secs(3)).await;
    repl.black_hole(true);
    let cut = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    primary.kill();
    let killed = Instant::now();
    let received = lsn_of(&standby, "SELECT pg_last_wal_receive_lsn()::text").await;
    let end_of_wal = primary.wal_end(received);
    println!(
        "cut → kill {:.2} s; the standby received up to {received}, the primary wrote up to {end_of_wal}",
        (killed - cut).as_secs_f64()
    );

    // 1. What is at risk, while the primary is unreachable.
    let truth_at_risk = end_of_wal - received;
    let scrape = replag
        .wait_until("data at risk on the link", Duration::from_secs(10), |s| {
            s.get("replag_data_at_risk_bytes", &link).is_some()
        })
        .await;
    let at_risk = scrape.get("replag_data_at_risk_bytes", &link).unwrap();
    within("data at risk, bytes", at_risk, truth_at_risk as f64, truth_at_risk as f64 * 0.10);
    assert!(scrape.get("replag_primary_last_seen_seconds", &[("node", "pg-us-east")]).is_some());
    let (_, page) = replag.get("/").await.unwrap();
    assert!(
        page.contains("data-primary-lost=\"pg-us-east\"") && page.contains("lacks at least"),
        "the page shows the loss"
    );
    let (status, verdict) = replag.get("/promote?node=pg-eu-west").await.unwrap();
    println!("/promote: {status} {verdict}");
    assert_eq!(status, 503, "a standby missing {truth_at_risk} bytes cannot be promoted: {verdict}");
    let verdict: Value = serde_json::from_str(&verdict).unwrap();
    assert!(verdict["reasons"][0].as_str().unwrap().starts_with("behind by"), "{verdict}");
    let (code, out, err) = run_replag(&["promote", "--node", "pg-eu-west", "--url", &replag.url("")], &[]);
    assert_eq!(code, 1, "the CLI says no with exit 1: {out}{err}");
    assert!(out.contains("DO NOT PROMOTE"), "{out}");
    let (status, _) = replag.get("/promote?node=nobody").await.unwrap();
    assert_eq!(status, 404, "an unknown node is no verdict");
    wait_for("a primary_lost event", Duration::from_secs(15), || async {
        event_of(&events(&replag).await, "primary_lost").cloned()
    })
    .await;

    // 2. The standby promoted: the failover event.
    standby.promote();
    let promoted = Instant::now();
    let switch =
        std::fs::read_to_string(standby.data.join("pg_wal/00000002.history")).expect("the new timeline's history");
    let switch_at = parse_lsn(switch.lines().last().unwrap().split_whitespace().nth(1).unwrap());
    let event = wait_for("the failover event", Duration::from_secs(10), || async {
        event_of(&events(&replag).await, "failover").cloned()
    })
    .await;
    println!("failover seen {:.2} s after the promotion: {event}", promoted.elapsed().as_secs_f64());
    assert_eq!(event["from"]["node"], "pg-us-east");
    assert_eq!(event["to"]["node"], "pg-eu-west");
    assert_eq!(event["switch_position"].as_u64(), Some(switch_at), "the switch point from the history file");
    assert_eq!(event["switch_exact"], true);
    let truth_lost = end_of_wal - switch_at;
    within("lost bytes (bound)", event["lost_bytes"].as_f64().unwrap(), truth_lost as f64, truth_lost as f64 * 0.10);
    assert_eq!(event["lost_bytes_exact"], false, "the old primary was not seen to its end");
    let commits = writer.commits();
    let on_new: std::collections::HashSet<String> = {
        let rows = standby.admin().await.query("SELECT payload FROM writes", &[]).await.unwrap();
        rows.iter().map(|r| r.get::<_, String>(0)).collect()
    };
    let rows_lost = commits.iter().filter(|c| c.target == 0 && !on_new.contains(&c.token)).count();
    println!("rows the writer saw committed that the new primary lacks: {rows_lost}");
    assert!(rows_lost > 0, "the cut lost writes: the test's premise");
    // The window of lost writes, from replag's heartbeats (one a poll): the
    // writer's commits the new primary lacks span about as long.
    let lost: Vec<&Commit> = commits.iter().filter(|c| c.target == 0 && !on_new.contains(&c.token)).collect();
    let truth_window = (lost.last().unwrap().at - lost.first().unwrap().at).as_secs_f64();
    let window = event["lost_window_seconds"].as_f64().expect("heartbeats on: the lost window");
    println!("lost window: replag {window:.2} s (heartbeats), the writer's lost commits span {truth_window:.2} s");
    assert!((window - truth_window).abs() <= 1.1, "within a poll (heartbeats are written once a poll)");

    // 3. The write gap, once the new primary has taken writes.
    let event = wait_for("the write gap", Duration::from_secs(15), || async {
        event_of(&events(&replag).await, "failover").filter(|e| e["write_gap_seconds"].is_number()).cloned()
    })
    .await;
    let commits = writer.commits();
    let last_old = commits.iter().filter(|c| c.target == 0).map(|c| c.at).max().unwrap();
    let first_new = commits.iter().filter(|c| c.target == 1).map(|c| c.at).min().unwrap();
    let truth_gap = (first_new - last_old).as_secs_f64();
    let gap = event["write_gap_seconds"].as_f64().unwrap();
    println!("write gap: replag {gap:.3} s, writer {truth_gap:.3} s");
    assert!((gap - truth_gap).abs() <= 1.0, "write gap {gap} s against the writer's {truth_gap} s");
    let scrape = replag.scrape().await;
    assert_eq!(scrape.get("replag_failovers_total", &[("kind", "failover")]), Some(1.0));
    assert!(
        scrape.get("replag_data_at_risk_bytes", &link).is_none(),
        "the old primary was replaced: nothing at risk any more"
    );
    drop(writer);

    // 4. The old primary back, still a primary: a split brain within 10 s.
    primary.start();
    let back = Instant::now();
    let scrape = replag
        .wait_until("the split brain", Duration::from_secs(10), |s| {
            s.all("replag_split_brain", &[]).iter().any(|x| x.value == 1.0)
        })
        .await;
    println!("split brain flagged {:.2} s after the old primary answered again", back.elapsed().as_secs_f64());
    drop(scrape);
    let old_end = lsn_of(&primary, "SELECT pg_current_wal_lsn()::text").await;
    let all = events(&replag).await;
    let split = event_of(&all, "split_brain").expect("a split_brain event");
    assert_eq!(split["from"]["node"], "pg-us-east", "the old primary's writes are the ones thrown away");
    let diverged = split["diverged_bytes"].as_f64().expect("diverged bytes");
    within("diverged bytes (what pg_rewind discards)", diverged, (old_end - switch_at) as f64, 1024.0);
    let failover = event_of(&all, "failover").unwrap();
    assert_eq!(failover["lost_bytes_exact"], true, "seen to its end now: {failover}");
    let (_, page) = replag.get("/").await.unwrap();
    assert!(page.contains("SPLIT BRAIN") && page.contains("data-event=\"failover\""), "the page shows both");
    let exact = failover["lost_bytes"].as_u64().unwrap();
    println!(
        "lost bytes, exact: replag {exact}, end of WAL at the kill − switch {truth_lost} (+ its restart's own records)"
    );
    assert!(
        exact >= truth_lost && exact <= truth_lost + 1024,
        "{exact} against {truth_lost} plus the restart's records"
    );

    // 5. replag restarted: the events are still there.
    let id = failover["id"].clone();
    drop(replag);
    primary.stop();
    let replag = Replag::start(&body, &[]).await;
    let kept = events(&replag).await;
    let again = kept.iter().find(|e| e["id"] == id).expect("the failover survives a restart");
    assert_eq!(again["lost_bytes"], failover["lost_bytes"]);
    assert_eq!(again["write_gap_seconds"], failover["write_gap_seconds"]);
    let (code, report, err) =
        run_replag(&["drill-report", "--journal", journal.to_str().unwrap(), "--since", "1h"], &[]);
    assert_eq!(code, 0, "{err}");
    println!("{report}");
    assert!(report.contains("failover") && report.contains(&format!("{exact} bytes (exact")), "{report}");
    let scrape: Scrape = replag.scrape().await;
    assert_eq!(scrape.get("replag_failovers_total", &[("kind", "failover")]), Some(1.0), "counted from the journal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_up_standby_may_be_promoted_and_a_rejoining_primary_makes_it_a_switchover() {
    let (mut primary, standby) = postgres::pair("fo-clean").await;
    primary.exec(&format!("GRANT EXECUTE ON FUNCTION pg_read_file(text) TO {MONITOR_USER}")).await;
    postgres::wait_for_standby_caught_up(&primary, &standby).await;
    let state = tempfile::tempdir().unwrap();
    let journal = state.path().join("events.jsonl");
    let replag = Replag::start(&config(&primary, &standby, &journal, false), &[]).await;
    let link = [("source", "pg-us-east"), ("replica", "pg-eu-west")];
    replag.wait_until("the link up", Duration::from_secs(20), |s| s.get("replag_link_up", &link) == Some(1.0)).await;

    // A planned switchover: the primary stopped cleanly (its standby gets
    // everything, the shutdown checkpoint included).
    primary.stop();
    // Until the standby's first poll after it replayed the shutdown
    // checkpoint, its last reading is (truthfully) that record behind: not
    // yet received or not yet replayed when it was read. Then it is caught up.
    let verdict = wait_for("a promote verdict: caught up", Duration::from_secs(10), || async {
        let (status, body) = replag.get("/promote?primary=pg-us-east").await.ok()?;
        let v: Value = serde_json::from_str(&body).ok()?;
        if v["primary"]["up"] == false && status == 503 {
            let behind = v["candidate"]["behind_bytes"].as_u64().unwrap_or(u64::MAX);
            assert!(behind < 1024, "only the shutdown checkpoint is left: {v}");
        }
        (v["primary"]["up"] == false && status == 200).then_some((status, v))
    })
    .await;
    println!("/promote?primary=pg-us-east: {} {}", verdict.0, verdict.1);
    assert_eq!(verdict.1["candidate"]["node"], "pg-eu-west", "the best candidate named");
    let (code, out, err) = run_replag(&["promote", "--node", "pg-eu-west", "--url", &replag.url("")], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("PROMOTE"), "{out}");

    standby.promote();
    let event = wait_for("the failover event", Duration::from_secs(10), || async {
        event_of(&events(&replag).await, "failover").cloned()
    })
    .await;
    assert_eq!(event["lost_bytes"].as_u64(), Some(0), "nothing lost: {event}");

    // The old primary follows the new one: a switchover.
    primary.follow(&standby);
    primary.start();
    let event = wait_for("the switchover", Duration::from_secs(20), || async {
        event_of(&events(&replag).await, "switchover").cloned()
    })
    .await;
    println!("{event}");
    assert_eq!(event["lost_bytes_exact"], true);
    let scrape = replag.scrape().await;
    assert_eq!(scrape.get("replag_failovers_total", &[("kind", "switchover")]), Some(1.0));
    assert!(scrape.all("replag_split_brain", &[]).iter().all(|s| s.value == 0.0), "one primary: no split brain");
}
