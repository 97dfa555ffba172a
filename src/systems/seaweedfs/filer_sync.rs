//! `weed filer.sync` between two clusters' filers: a `kind="filer_sync"`
//! link per direction it syncs.
//!
//! What replag reads, and what each figure can see:
//! - filer.sync's own `-metricsPort` (`SeaweedFS_filerSync_*`, one series
//!   per direction, labelled with the source and target filer addresses):
//!   events and bytes it has received from the source filer but not yet
//!   applied on the target (its backlog), and its checkpoint (`sync_offset`,
//!   a source-filer timestamp). The backlog's age is timed on replag's
//!   clock — from the poll that first saw the oldest event not yet applied
//!   — so it is skew-free and an idle pair reads 0. It cannot see events
//!   the source filer has not sent yet (a stopped or cut subscription), nor
//!   anything once the process stops answering.
//! - The checkpoint moves at least every few seconds while the
//!   subscription is alive, even at idle (the source filer sends a tick):
//!   when it stops moving the link is `silent`, as replag judges silence
//!   everywhere (first sight of each value, on replag's clock).
//! - With heartbeats on both filers: replag's heartbeat file written on the
//!   source and read on the target gives the end-to-end lag, which keeps
//!   growing 1 s/s while the sync is stopped, cut or dead. The link's lag is
//!   the larger of the two.
//!
//! A direction whose process replag cannot reach, or that the process does
//! not report, or whose target filer is unreachable, is down with the
//! reason; the series never vanish.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::detail::SeaweedFilerSyncView;
use super::fleet::{Fleet, SeaweedLink, SYSTEM};
use super::source::{fetch, SeaweedObservation};
use super::target::SeaweedRole;
use crate::lag::{silence_margin, Lag, LastHeard, StreamKey};
use crate::model::{normalize_host, FailureKind, LagView, LinkKind, PollFailure, Sampled, SILENT};

/// Directions read from one process at most (one per `-a`/`-b` way and path).
const MAX_DIRECTIONS: usize = 64;

/// How often the checkpoint moves at least while the subscription is
/// alive: the source filer's idle tick is ~5 s (measured on 4.48: at idle,
/// `now − sync_offset` is a sawtooth between 0 and 5 s); twice that, so a
/// slow tick is not a partition.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

/// One direction as a filer.sync process reports it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncDirection {
    /// `host:port` of the filers, as given to filer.sync's `-a`/`-b`.
    pub source_filer: String,
    pub target_filer: String,
    pub events_received: u64,
    /// Applied on the target, or given up on (counted as failed).
    pub events_done: u64,
    pub events_failed: u64,
    pub bytes_received: u64,
    pub bytes_done: u64,
    /// The checkpoint: a source-filer timestamp in ns (only ever compared
    /// with itself).
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncObservation {
    pub version: String,
    pub directions: Vec<SyncDirection>,
}

/// A sample line's labels, unescaped.
type Labels<'a> = Vec<(&'a str, String)>;

/// One sample line of the Prometheus text format: name, labels, value.
/// `None` for comments, blank and unreadable lines.
pub fn parse_sample(line: &str) -> Option<(&str, Labels<'_>, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let (name, mut rest) = line.split_at(name_end);
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        rest = body;
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = rest.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.trim(), value));
            rest = &after[end + 1..];
        }
    }
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some((name, labels, value))
}

/// filer.sync's `/metrics`: every direction it reports.
pub fn decode(body: &[u8]) -> Result<SyncObservation, PollFailure> {
    let text = std::str::from_utf8(body)
        .map_err(|_| PollFailure::new(FailureKind::Protocol, "/metrics: not UTF-8 text".to_string()))?;
    let mut observation = SyncObservation::default();
    let mut found = false;
    let mut by_direction: BTreeMap<(String, String), SyncDirection> = BTreeMap::new();
    for (name, labels, value) in text.lines().filter_map(parse_sample) {
        let label = |key: &str| labels.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
        if name == "SeaweedFS_build_info" {
            observation.version = label("version").unwrap_or_default().to_string();
            found = true;
            continue;
        }
        let Some(metric) = name.strip_prefix("SeaweedFS_filerSync_") else { continue };
        let (Some(source), Some(target)) = (label("sourceFiler"), label("targetFiler")) else { continue };
        let key = (source.to_string(), target.to_string());
        if !by_direction.contains_key(&key) && by_direction.len() >= MAX_DIRECTIONS {
            continue;
        }
        let d = by_direction.entry(key).or_insert_with(|| SyncDirection {
            source_filer: source.to_string(),
            target_filer: target.to_string(),
            ..SyncDirection::default()
        });
        // Counters are sums over a direction's paths; a checkpoint is the
        // oldest of them. Negative or absurd values read as 0.
        let count = if value.is_finite() && value > 0.0 { value as u64 } else { 0 };
        let add = |total: &mut u64| *total = total.saturating_add(count);
        match metric {
            "events_received_total" => add(&mut d.events_received),
            "events_processed_total" => add(&mut d.events_done),
            "events_failed_total" => {
                add(&mut d.events_done);
                add(&mut d.events_failed);
            }
            "received_bytes_total" => add(&mut d.bytes_received),
            "processed_bytes_total" | "failed_bytes_total" => add(&mut d.bytes_done),
            "sync_offset" => d.offset = if d.offset == 0 { count } else { d.offset.min(count) },
            _ => {}
        }
    }
    if !found && by_direction.is_empty() {
        return Err(PollFailure::new(
            FailureKind::Protocol,
            "/metrics: no SeaweedFS series (is this filer.sync's -metricsPort?)".to_string(),
        ));
    }
    observation.directions = by_direction.into_values().collect();
    Ok(observation)
}

/// Poll a filer.sync process's `-metricsPort`.
pub async fn poll(client: &reqwest::Client, base: &str) -> Result<Sampled<SyncObservation>, PollFailure> {
    let started = Instant::now();
    let body = fetch(client.get(format!("{base}/metrics")), "/metrics")
        .await?
        .ok_or_else(|| PollFailure::new(FailureKind::Query, "/metrics: HTTP 404".to_string()))?;
    let at = started + started.elapsed() / 2;
    Ok(Sampled { at, observation: decode(&body)? })
}

/// Per direction (sync node, source filer node, target filer node).
type DirectionKey = (usize, usize, usize);

/// The engine's stream of a direction's received events (by the addresses
/// filer.sync names the filers with): the backlog's age is read against it.
pub fn received_stream(d: &SyncDirection) -> StreamKey {
    StreamKey { system: SYSTEM, id: format!("filer_sync/{}->{}", d.source_filer, d.target_filer), epoch: 0 }
}

/// What the filer.sync rules remember between snapshots.
#[derive(Debug, Default)]
pub struct SyncMemory {
    checkpoints: LastHeard<DirectionKey>,
}

/// Every filer.sync direction the config declares, as a link, and its figures.
pub(super) fn derive(
    mem: &mut SyncMemory,
    fleet: &Fleet<'_>,
    now: Instant,
) -> (Vec<SeaweedLink>, Vec<SeaweedFilerSyncView>) {
    let mut links = Vec::new();
    let mut views = Vec::new();
    for p in fleet.indices() {
        let Some(member) = fleet.member(p) else { continue };
        let SeaweedRole::FilerSync { a, b, active_passive } = &member.target.role else { continue };
        let (Some(a), Some(b)) = (fleet.named(a), fleet.named(b)) else { continue };
        let directions = if *active_passive { vec![(a, b)] } else { vec![(a, b), (b, a)] };
        for (s, t) in directions {
            let (link, view) = direction(mem, fleet, (p, s, t), now);
            links.push(link);
            views.extend(view);
        }
    }
    mem.checkpoints.forget_stale(now);
    (links, views)
}

/// Does `address` (`host:port` from filer.sync's labels, perhaps with a
/// `.grpcport` suffix) name filer node `i`?
fn is_filer(fleet: &Fleet<'_>, i: usize, address: &str) -> bool {
    let address = match address.rsplit_once('.') {
        Some((a, grpc)) if a.contains(':') && grpc.bytes().all(|b| b.is_ascii_digit()) => a,
        _ => address,
    };
    let Some((host, port)) = address.rsplit_once(':') else { return false };
    let Ok(port) = port.parse::<u16>() else { return false };
    let host = normalize_host(host);
    fleet.member(i).is_some_and(|m| m.target.addresses().iter().any(|(h, p)| *h == host && *p == port))
}

fn sync_of(observation: &SeaweedObservation) -> Option<&SyncObservation> {
    match observation {
        SeaweedObservation::FilerSync(o) => Some(o),
        _ => None,
    }
}

fn direction(
    mem: &mut SyncMemory,
    fleet: &Fleet<'_>,
    key: DirectionKey,
    now: Instant,
) -> (SeaweedLink, Option<SeaweedFilerSyncView>) {
    let (p, s, t) = key;
    let name = |i: usize| fleet.nodes[i].name.clone();
    let mut link = SeaweedLink::new(
        SYSTEM,
        LinkKind::FilerSync,
        (name(s), fleet.nodes[s].region.clone()),
        (name(t), fleet.nodes[t].region.clone()),
    );
    // The process's view of this direction: fresh, or as last seen.
    let last = fleet.last_ok(p).and_then(|(o, at)| {
        let sync = sync_of(o)?;
        // Both ends' addresses as filer.sync was given them; failing that,
        // one end (the other may be reached through a proxy or VIP).
        let both = |d: &&SyncDirection| is_filer(fleet, s, &d.source_filer) && is_filer(fleet, t, &d.target_filer);
        let either = |d: &&SyncDirection| is_filer(fleet, s, &d.source_filer) || is_filer(fleet, t, &d.target_filer);
        let d = sync.directions.iter().find(both).or_else(|| sync.directions.iter().find(either));
        Some((sync, d, at))
    });
    let sync_up = fleet.fresh(p).is_some();
    let mut view = None;
    let mut backlog = None;
    if let Some((_, Some(d), at)) = last {
        let history = fleet.histories.get(&received_stream(d));
        // Events are steps, not a flow: timed from the poll that first saw
        // the oldest one not applied (up to a poll late), never
        // interpolated back to the poll before — an event in flight for a
        // few ms at a poll would read as a poll of lag.
        let lag = history.and_then(|h| h.lag_in_steps(d.events_done, at)).unwrap_or(Lag::ZERO);
        let bytes = d.bytes_received.saturating_sub(d.bytes_done);
        backlog = Some((LagView { bytes, seconds: lag.seconds, lower_bound: lag.lower_bound }, at));
        view = Some(SeaweedFilerSyncView {
            sync: name(p),
            source: name(s),
            source_region: fleet.nodes[s].region.clone(),
            target: name(t),
            target_region: fleet.nodes[t].region.clone(),
            backlog_events: d.events_received.saturating_sub(d.events_done),
            backlog_bytes: bytes,
            failed_events: d.events_failed,
        });
    }
    // End to end, with heartbeats on: the target's latest reading.
    let heartbeat = fleet.fresh(t).and_then(|(o, at)| match o {
        SeaweedObservation::Filer(f) => fleet.heartbeat_lag(&fleet.nodes[s].name, &f.heartbeats, at).map(|hb| (hb, at)),
        _ => None,
    });
    link.lag = match (backlog, heartbeat) {
        (Some((lag, _)), Some((hb, _))) => Some(LagView { seconds: lag.seconds.max(hb), ..lag }),
        (Some((lag, _)), None) => Some(lag),
        (None, Some((hb, _))) => Some(LagView { bytes: 0, seconds: hb, lower_bound: false }),
        (None, None) => None,
    };
    let ages = [backlog.map(|(_, at)| at), heartbeat.map(|(_, at)| at)];
    link.data_age_seconds =
        ages.into_iter().flatten().map(|at| now.saturating_duration_since(at).as_secs_f64()).reduce(f64::max);

    let sync_name = name(p);
    match last {
        _ if !sync_up => {
            // The checkpoint's silence counts anew once the process answers.
            mem.checkpoints.forget(&key);
            link.state = "sync unreachable".into();
            let seen = backlog.map_or(String::new(), |(_, at)| {
                format!("; backlog as of its last answer {:.0} s ago", now.saturating_duration_since(at).as_secs_f64())
            });
            link.reason = Some(format!("filer.sync {sync_name} unreachable ({}){seen}", fleet.failure_text(p)));
        }
        Some((sync, None, _)) => {
            let known: Vec<String> =
                sync.directions.iter().map(|d| format!("{} → {}", d.source_filer, d.target_filer)).collect();
            link.state = "not syncing".into();
            link.reason = Some(format!(
                "filer.sync {sync_name} reports no sync from {} to {} (it reports: {})",
                name(s),
                name(t),
                if known.is_empty() { "none yet".to_string() } else { known.join(", ") }
            ));
        }
        Some((_, Some(d), at)) => {
            let unchanged = mem.checkpoints.observe(key, d.offset as f64, at);
            let allowed = CHECKPOINT_INTERVAL + silence_margin(fleet.poll_interval);
            let down = |i: usize| fleet.member(i).is_some_and(|m| m.polled && !m.is_up());
            link.last_message_age_seconds = Some(unchanged.as_secs_f64());
            if down(t) {
                link.state = "target down".into();
                link.reason = Some(format!("target filer {} unreachable ({})", name(t), fleet.failure_text(t)));
            } else if unchanged > allowed && !down(s) {
                // (A source filer replag cannot reach sends no ticks either:
                // that is its node's outage, said on its node and in the
                // link's reason, not a partition of the link.)
                link.state = SILENT.into();
                link.reason = Some(format!(
                    "silent for {:.0} s: filer.sync {sync_name}'s checkpoint from {} has not moved (it moves at least every {} s while connected)",
                    unchanged.as_secs_f64(),
                    name(s),
                    CHECKPOINT_INTERVAL.as_secs()
                ));
            } else {
                link.up = true;
                // An event seen for the first time this poll is in flight, not behind.
                let behind =
                    view.as_ref().is_some_and(|v| v.backlog_events > 0) && link.lag.is_some_and(|l| l.seconds > 0.0);
                link.state = if behind { "catching up" } else { "syncing" }.into();
            }
        }
        None => {
            link.state = "sync unreachable".into();
            link.reason = Some(format!("filer.sync {sync_name} not polled yet"));
        }
    }
    (link, view)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As filer.sync 4.48 `-isActivePassive -metricsPort` serves it (trimmed).
    const METRICS: &str = r#"# HELP SeaweedFS_build_info A metric with a constant '1' value
SeaweedFS_build_info{commit="pypi",goarch="amd64",goos="linux",sizelimit="8000GB",version="4.48"} 1
SeaweedFS_filerSync_events_failed_total{clientName="syncFrom_127.0.0.1:18888_To_127.0.0.1:18988",path="/",sourceFiler="127.0.0.1:18888",targetFiler="127.0.0.1:18988"} 1
SeaweedFS_filerSync_events_processed_total{clientName="syncFrom_127.0.0.1:18888_To_127.0.0.1:18988",path="/",sourceFiler="127.0.0.1:18888",targetFiler="127.0.0.1:18988"} 4
SeaweedFS_filerSync_events_received_total{clientName="syncFrom_127.0.0.1:18888_To_127.0.0.1:18988",path="/",sourceFiler="127.0.0.1:18888",targetFiler="127.0.0.1:18988"} 7
SeaweedFS_filerSync_processed_bytes_total{clientName="syncFrom_127.0.0.1:18888_To_127.0.0.1:18988",path="/",sourceFiler="127.0.0.1:18888",targetFiler="127.0.0.1:18988"} 9
SeaweedFS_filerSync_received_bytes_total{clientName="syncFrom_127.0.0.1:18888_To_127.0.0.1:18988",path="/",sourceFiler="127.0.0.1:18888",targetFiler="127.0.0.1:18988"} 30
SeaweedFS_filerSync_sync_offset{clientName="syncFrom_127.0.0.1:18888_To_127.0.0.1:18988",path="/",sourceFiler="127.0.0.1:18888",targetFiler="127.0.0.1:18988"} 1.795924754093066e+18
SeaweedFS_filerSync_lag_seconds{clientName="syncFrom_127.0.0.1:18888_To_127.0.0.1:18988",path="/",sourceFiler="127.0.0.1:18888",targetFiler="127.0.0.1:18988"} 0.917304706
go_goroutines 42
"#;

    #[test]
    fn reads_a_direction_from_real_metrics() {
        let o = decode(METRICS.as_bytes()).unwrap();
        assert_eq!(o.version, "4.48");
        assert_eq!(o.directions.len(), 1);
        let d = &o.directions[0];
        assert_eq!((d.source_filer.as_str(), d.target_filer.as_str()), ("127.0.0.1:18888", "127.0.0.1:18988"));
        assert_eq!((d.events_received, d.events_done, d.events_failed), (7, 5, 1));
        assert_eq!((d.bytes_received, d.bytes_done), (30, 9));
        assert_eq!(d.offset, 1.795924754093066e18 as u64, "as exact as the f64 it is sent as");
    }

    #[test]
    fn label_values_unescape_and_junk_is_skipped() {
        let (name, labels, value) = parse_sample(r#"m{a="x\"y\\z",b="p\nq",} 2.5 1700000000"#).unwrap();
        assert_eq!((name, value), ("m", 2.5));
        assert_eq!(labels, vec![("a", "x\"y\\z".to_string()), ("b", "p\nq".to_string())]);
        for junk in ["", "# TYPE m counter", "m{a=\"open", "m{a=\"x\"} notanumber", "{}", "m"] {
            assert!(parse_sample(junk).is_none(), "{junk:?}");
        }
        assert_eq!(parse_sample("m 3").map(|(n, l, v)| (n, l.len(), v)), Some(("m", 0, 3.0)));
    }

    #[test]
    fn huge_counters_saturate() {
        let huge = METRICS.replace("} 1\n", "} 1e300\n").replace("} 4\n", "} 1e300\n");
        let d = &decode(huge.as_bytes()).unwrap().directions[0];
        assert_eq!((d.events_done, d.events_failed), (u64::MAX, u64::MAX));
    }

    #[test]
    fn a_page_that_is_not_filer_sync_is_a_protocol_error() {
        assert_eq!(decode(b"go_goroutines 3\n").unwrap_err().kind, FailureKind::Protocol);
        assert_eq!(decode(&[0xff, 0xfe]).unwrap_err().kind, FailureKind::Protocol);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in ".{0,300}", cut in 0usize..2000) {
            let _ = decode(text.as_bytes());
            let cut = cut.min(METRICS.len());
            let _ = decode(&METRICS.as_bytes()[..cut]);
        }
    }
}
