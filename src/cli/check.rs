//! `replag check`: poll every node a couple of times with the same poller the
//! server uses, then print what replag sees. A newcomer's first tool.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use crate::config::Config;
use crate::engine::Engine;
use crate::model::table;
use crate::poller;
use crate::snapshot::Snapshot;

/// Polls per node before reporting: two give the lag engine a rate to interpolate.
const ROUNDS: u32 = 2;

pub async fn run(config: &Config) -> Snapshot {
    let (tx, mut rx) = mpsc::channel(1024);
    let tasks = poller::spawn_all(&config.nodes, config.poll, tx.clone());
    // Servers a Sentinel or Cluster entry reveals are polled too.
    let (joins_tx, mut joins) = mpsc::unbounded_channel();
    let mut joined = tokio::task::JoinSet::new();
    let mut engine = Engine::new(config.nodes.clone(), SystemTime::now())
        .with_poll_interval(config.poll.interval)
        .with_joins(joins_tx);
    let mut seen: HashMap<usize, u32> = HashMap::new();
    // Long enough for every node's first failure to be reported, and a retry
    // (revealed servers start within the first round).
    let deadline = tokio::time::Instant::now() + config.poll.interval * (ROUNDS + 2) + config.poll.timeout * 2;
    while seen.len() < engine.specs().len() || seen.values().any(|&n| n < ROUNDS) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(poller::Report::Sampled(sample))) => engine.ingest_sample(sample),
            Ok(Some(poller::Report::Polled(report))) => {
                *seen.entry(report.node).or_default() += 1;
                engine.ingest(*report);
                while let Ok(node) = joins.try_recv() {
                    let source = node.spec.target.source(config.poll.timeout, config.poll.connect_timeout);
                    let run = poller::run(
                        node.index,
                        node.spec.name.clone(),
                        source,
                        config.poll,
                        Instant::now(),
                        tx.clone(),
                    );
                    joined.spawn(run);
                }
            }
            _ => break,
        }
    }
    for task in tasks {
        task.abort();
    }
    joined.abort_all();
    engine.snapshot(Instant::now(), SystemTime::now())
}

/// The human-readable report.
/// `replag check --config-only`: what the config holds, per region and system.
pub fn config_summary(cfg: &Config) -> String {
    let mut per_region: std::collections::BTreeMap<(&str, &str), usize> = std::collections::BTreeMap::new();
    for n in &cfg.nodes {
        *per_region.entry((n.region.as_str(), n.system.as_str())).or_default() += 1;
    }
    let mut out = format!(
        "config ok: {} nodes, {} gates, listen {}, poll every {}\n",
        cfg.nodes.len(),
        cfg.gates.len(),
        cfg.listen,
        humantime::format_duration(cfg.poll.interval)
    );
    for ((region, system), count) in per_region {
        out += &format!("  {region}: {count} {system}\n");
    }
    out
}

pub fn report(s: &Snapshot) -> String {
    let mut nodes =
        vec![["SYSTEM", "NODE", "REGION", "UP", "ROLE", "VERSION", "POLL", "ERROR"].map(String::from).to_vec()];
    for n in &s.nodes {
        nodes.push(vec![
            n.system.as_str().into(),
            n.name.clone(),
            n.region.clone(),
            if n.up { "yes" } else { "NO" }.into(),
            n.role.clone().unwrap_or_else(|| "?".into()),
            n.version.clone().unwrap_or_else(|| "?".into()),
            n.last_poll_duration_seconds.map_or("-".into(), |d| format!("{:.0}ms", d * 1000.0)),
            n.failure.as_ref().map(|f| f.to_string()).unwrap_or_default(),
        ]);
    }
    let mut out = format!("Nodes\n{}", table(&nodes));
    let mut links = vec![["SYSTEM", "KIND", "SOURCE", "REPLICA", "UP", "STATE", "LAG", "LAG BYTES", "NOTE"]
        .map(String::from)
        .to_vec()];
    for l in &s.links {
        let (seconds, bytes) = match l.lag {
            Some(lag) => {
                (format!("{}{:.3}s", if lag.lower_bound { ">=" } else { "" }, lag.seconds), lag.bytes.to_string())
            }
            None => ("?".into(), "?".into()),
        };
        links.push(vec![
            l.id.system.as_str().into(),
            l.id.kind.as_str().into(),
            format!("{} ({})", l.id.source, l.id.source_region),
            format!("{} ({})", l.id.replica, l.id.replica_region),
            if l.up { "yes" } else { "NO" }.into(),
            l.state.clone(),
            seconds,
            bytes,
            l.reason.clone().unwrap_or_default(),
        ]);
    }
    if s.links.is_empty() {
        out.push_str("\nLinks\n(none found: no standby reports an upstream that replag can see)\n");
    } else {
        let _ = write!(out, "\nLinks\n{}", table(&links));
    }
    for c in &s.details.postgres.patroni {
        out += &patroni_report(c);
    }
    out
}

/// What a Patroni entry found: its members as Patroni and replag see them.
fn patroni_report(c: &crate::systems::postgres::patroni::PatroniClusterView) -> String {
    let mut rows =
        vec![["MEMBER", "NODE", "ROLE", "STATE", "TL", "PATRONI LAG", "REPLAG LAG", "NOTE"].map(String::from).to_vec()];
    for m in &c.members {
        let bytes = |b: Option<u64>| b.map_or("-".to_string(), |b| b.to_string());
        rows.push(vec![
            m.member.clone(),
            m.node.clone().unwrap_or_else(|| "-".into()),
            m.role.clone(),
            m.state.clone(),
            m.timeline.map_or("-".into(), |t| t.to_string()),
            bytes(m.patroni_lag_bytes),
            bytes(m.replag_lag_bytes),
            match (&m.note, m.lag_disagrees) {
                (Some(note), _) => note.clone(),
                (None, true) => "Patroni's lag and replag's disagree".into(),
                (None, false) => String::new(),
            },
        ]);
    }
    let mut out = format!(
        "\nPatroni {} ({}): leader {}, timeline {}{}\n",
        c.node,
        c.region,
        c.leader.as_deref().unwrap_or("none"),
        c.timeline,
        if c.paused { ", PAUSED (maintenance mode: no automatic failover)" } else { "" }
    );
    for e in &c.endpoints {
        let _ =
            writeln!(out, "  {} {}", e.endpoint, e.error.as_deref().map_or("answers".into(), |e| format!("DOWN: {e}")));
    }
    if let Some(d) = &c.disagreement {
        let _ = writeln!(out, "  {d}");
    }
    out + &table(&rows)
}
