//! `weed filer.sync` between two clusters' filers: a `kind="filer_sync"`
//! link per direction it syncs, from its figures (`filer_sync`), its filers'
//! heartbeats and replag's own clock.
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

use std::time::{Duration, Instant};

use super::detail::SeaweedFilerSyncView;
use super::filer_sync::{SyncDirection, SyncObservation};
use super::fleet::{Fleet, SeaweedLink, SYSTEM};
use super::source::SeaweedObservation;
use super::target::SeaweedRole;
use crate::lag::{silence_margin, LastHeard, StreamKey};
use crate::model::{normalize_host, LagView, LinkKind, SILENT};

/// How often the checkpoint moves at least while the subscription is
/// alive: the source filer's idle tick is ~5 s (measured on 4.48: at idle,
/// `now − sync_offset` is a sawtooth between 0 and 5 s); twice that, so a
/// slow tick is not a partition.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

/// The engine's stream of a direction's received events (by the addresses
/// filer.sync names the filers with): the backlog's age is read against it.
pub fn received_stream(d: &SyncDirection) -> StreamKey {
    StreamKey { system: SYSTEM, id: format!("filer_sync/{}->{}", d.source_filer, d.target_filer), epoch: 0 }
}

/// Per direction (sync node, source filer node, target filer node).
type DirectionKey = (usize, usize, usize);

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
        // No history yet: nothing seen behind, and no resolution to claim.
        let lag = history
            .and_then(|h| h.lag_in_steps(d.events_done, at))
            .map_or(LagView { bytes: 0, seconds: 0.0, lower_bound: false, resolution_seconds: None }, LagView::from);
        let bytes = d.bytes_received.saturating_sub(d.bytes_done);
        backlog = Some((LagView { bytes, ..lag }, at));
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
        (None, Some((hb, _))) => Some(LagView { bytes: 0, seconds: hb, lower_bound: false, resolution_seconds: None }),
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
