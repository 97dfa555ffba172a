//! PostgreSQL: physical streaming replication (primaries, standbys,
//! cascades, slots) and logical replication (publications, subscriptions).
//!
//! Everything replag knows about PostgreSQL is in this folder: how to reach
//! a server (`target`, `tls`), how to poll it in one round trip (`source`),
//! LSNs (`lsn`), the fleet as its link rules read it (`fleet`), how
//! observations become physical (`links`) and logical (`logical`) links, what a snapshot shows beyond links (`detail`), and the
//! `replag_pg_*` families (`metrics`).

mod detail;
mod fleet;
mod links;
mod logical;
mod lsn;
mod metrics;
mod source;
mod target;
mod tls;

use std::time::Instant;

pub use detail::{PgDetails, PgLinkDetail, PgServerView, PgSlotView, PgSubscriptionView};
pub use fleet::{Fleet, PgLink, SYSTEM};
pub use lsn::Lsn;
pub use metrics::render as render_metrics;
pub use source::{
    decode, poll_query, PgObservation, PostgresSource, Slot, Subscription, SubscriptionWorker, WalReceiver, WalSender,
};
pub use target::{from_config, PgTls, PgTlsMode, PostgresTarget};

use crate::lag::StreamKey;
use crate::model::{Identity, SourcePosition};

/// What PostgreSQL's link rules remember between snapshots.
#[derive(Debug, Default)]
pub struct PgMemory {
    physical: links::PhysicalMemory,
    logical: logical::LogicalMemory,
}

/// Physical and logical links, and the servers', slots' and subscriptions' figures.
pub fn derive(memory: &mut PgMemory, fleet: Fleet<'_>, now: Instant) -> (Vec<PgLink>, PgDetails) {
    let inputs = fleet::PgInputs::new(fleet);
    let (mut links, mut details) = links::derive(&mut memory.physical, &inputs, now);
    let (logical_links, subscriptions) = logical::derive(&mut memory.logical, &inputs, now);
    links.extend(logical_links);
    details.subscriptions = subscriptions;
    (links, details)
}

/// A primary's position in its WAL stream, keyed by (system identifier,
/// timeline): a new timeline is a new stream.
pub fn source_position(pg: &PgObservation) -> Option<(StreamKey, SourcePosition)> {
    if pg.in_recovery {
        return None;
    }
    let key =
        StreamKey { system: SYSTEM, id: pg.system_identifier.clone(), epoch: u64::from(pg.timeline.unwrap_or(0)) };
    let position = pg.current_lsn?.0;
    Some((key, SourcePosition { position, mark: pg.commit_mark.unwrap_or(position), mark_trails: true }))
}

pub fn identity(pg: &PgObservation) -> Identity {
    Identity {
        role: pg.role().to_string(),
        version: Some(pg.version.clone()),
        labels: vec![("system_identifier".to_string(), pg.system_identifier.clone())],
    }
}
