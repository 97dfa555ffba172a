//! The fleet as PostgreSQL's link rules read it — its nodes, their last
//! observations, the WAL histories — and what physical and logical links
//! share: lag from a position, a walsender's stage view, and whether a
//! downstream still replies.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::detail::PgLinkDetail;
use super::lsn::Lsn;
use super::source::{PgObservation, WalSender};
use super::target::PostgresTarget;
use crate::lag::{silence_margin, LastHeard, PositionHistory, StreamKey};
use crate::model::{normalize_host, LagView, LinkView, System, SILENT};

pub const SYSTEM: System = System::Postgres;

/// The fleet as PostgreSQL's link rules see it.
pub type Fleet<'a> = crate::lag::Fleet<'a, PostgresTarget, PgObservation>;

/// A PostgreSQL link, with its upstream's `pg_stat_replication` view when known.
pub type PgLink = LinkView<Option<PgLinkDetail>>;

/// `wal_receiver_status_interval`'s default, for downstreams replag cannot read.
const DEFAULT_STATUS_INTERVAL: f64 = 10.0;

/// The fleet as PostgreSQL's rules read it, with its primaries found once.
pub(super) struct PgInputs<'a> {
    pub fleet: Fleet<'a>,
    /// Fresh primaries by system identifier, newest timeline first.
    primaries: HashMap<&'a str, Vec<usize>>,
}

impl<'a> PgInputs<'a> {
    pub(super) fn new(fleet: Fleet<'a>) -> Self {
        let mut inputs = PgInputs { fleet, primaries: HashMap::new() };
        let mut primaries: HashMap<&'a str, Vec<usize>> = HashMap::new();
        for i in inputs.nodes() {
            if let Some((o, _)) = inputs.fresh(i).filter(|(o, _)| !o.in_recovery) {
                primaries.entry(o.system_identifier.as_str()).or_default().push(i);
            }
        }
        for found in primaries.values_mut() {
            found.sort_by_key(|&i| std::cmp::Reverse(inputs.fresh(i).and_then(|(o, _)| o.timeline)));
        }
        inputs.primaries = primaries;
        inputs
    }

    pub(super) fn nodes(&self) -> impl Iterator<Item = usize> + '_ {
        self.fleet.indices()
    }

    pub(super) fn fresh(&self, i: usize) -> Option<(&'a PgObservation, Instant)> {
        self.fleet.fresh(i)
    }

    pub(super) fn last_ok(&self, i: usize) -> Option<(&'a PgObservation, Instant)> {
        self.fleet.last_ok(i)
    }

    /// The node answering at `host:port`. Several config entries may name one
    /// server (say, with different credentials): prefer one whose last poll
    /// succeeded with the expected system identifier.
    pub(super) fn node_at(&self, host: &str, port: u16, system_identifier: &str) -> Option<usize> {
        let host = normalize_host(host);
        let candidates: Vec<usize> = self.fleet.index.nodes_at(SYSTEM, &host, port).collect();
        candidates
            .iter()
            .copied()
            .find(|&i| self.fresh(i).is_some_and(|(o, _)| o.system_identifier == system_identifier))
            .or_else(|| candidates.first().copied())
    }

    pub(super) fn node_named(&self, name: &str) -> Option<usize> {
        self.fleet.named(name)
    }

    /// Primaries (last poll fresh) with this system identifier, newest timeline first.
    pub(super) fn primaries_of(&self, system_identifier: &str) -> &[usize] {
        self.primaries.get(system_identifier).map_or(&[], Vec::as_slice)
    }

    /// The WAL history of node `i` itself when it is a primary (a publisher).
    pub(super) fn root_history(&self, i: usize) -> Option<&'a PositionHistory> {
        self.fleet.histories.get(&self.stream_of_primary(i)?)
    }

    pub(super) fn stream_of_primary(&self, i: usize) -> Option<StreamKey> {
        let (obs, _) = self.last_ok(i)?;
        (!obs.in_recovery).then(|| StreamKey {
            system: SYSTEM,
            id: obs.system_identifier.clone(),
            epoch: u64::from(obs.timeline.unwrap_or(0)),
        })
    }
}

pub(super) fn lag_of(history: Option<&PositionHistory>, position: Option<Lsn>, at: Instant) -> Option<LagView> {
    crate::lag::lag_of(history, position.map(|p| p.0), at)
}

pub(super) fn stage_detail(history: Option<&PositionHistory>, row: &WalSender, at: Instant) -> PgLinkDetail {
    let stages =
        [("sent", row.sent_lsn), ("write", row.write_lsn), ("flush", row.flush_lsn), ("replay", row.replay_lsn)]
            .into_iter()
            .filter_map(|(stage, lsn)| Some((stage, lag_of(history, lsn, at)?)))
            .collect();
    let reported = [("write", row.write_lag), ("flush", row.flush_lag), ("replay", row.replay_lag)]
        .into_iter()
        .filter_map(|(stage, lag)| Some((stage, lag?)))
        .collect();
    PgLinkDetail { state: row.state.clone(), sync_state: row.sync_state.clone(), stages, reported }
}

/// Is the downstream of a `pg_stat_replication` row still replying? Its
/// status replies (`reply_time`) come every `interval` seconds (its
/// `wal_receiver_status_interval`, 10 by default), even when idle. A link
/// whose replies stopped for longer than that plus a margin (and `extra`) is
/// silent: down, whatever its state says — a partition that drops packets
/// without a reset looks "streaming" for a minute (`wal_sender_timeout`).
pub(super) fn judge_replies(
    replies: &mut LastHeard<(usize, i32)>,
    inputs: &PgInputs<'_>,
    link: &mut PgLink,
    (u, row): (usize, &WalSender),
    interval: Option<f64>,
    extra: Duration,
) {
    let (Some(reply_time), Some((_, at))) = (row.reply_time, inputs.fresh(u)) else { return };
    let quiet = replies.observe((u, row.pid), reply_time, at);
    link.last_message_age_seconds = Some(quiet.as_secs_f64());
    let interval = interval.unwrap_or(DEFAULT_STATUS_INTERVAL);
    if !link.up || interval <= 0.0 {
        return;
    }
    let allowed = Duration::from_secs_f64(interval) + silence_margin(inputs.fleet.poll_interval) + extra;
    if quiet > allowed {
        link.up = false;
        link.state = SILENT.into();
        link.reason = Some(format!(
            "silent for {:.0} s: no status reply from {} has reached {} (expected every {interval} s: wal_receiver_status_interval)",
            quiet.as_secs_f64(),
            link.id.replica,
            link.id.source
        ));
    }
}
