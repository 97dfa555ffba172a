//! PostgreSQL: physical streaming replication (primaries, standbys,
//! cascades, slots) and logical replication (publications, subscriptions).
//!
//! Everything replag knows about PostgreSQL is in this folder: how to reach
//! a server (`target`, `tls`), how to poll it in one round trip (`source`),
//! LSNs (`lsn`), the fleet as its link rules read it (`fleet`), how
//! observations become physical (`links`) and logical (`logical`) links, what a snapshot shows beyond links (`detail`), and the
//! `replag_pg_*` families (`metrics`); clusters under Patroni found and
//! followed from its REST API (`patroni`).

mod detail;
mod fleet;
mod links;
mod logical;
mod lsn;
mod metrics;
pub mod patroni;
mod source;
mod target;
mod tls;

use std::time::Instant;

pub use detail::{PgDetails, PgLinkDetail, PgServerView, PgSlotView, PgSubscriptionView};
pub use fleet::{Fleet, PgLink, SYSTEM};
pub use lsn::Lsn;
pub use metrics::render as render_metrics;
pub use source::{
    decode, parse_timeline_history, poll_query, PgObservation, PostgresSource, Slot, Subscription, SubscriptionWorker,
    TimelineSwitch, WalReceiver, WalSender,
};
pub use target::{from_config, PgTls, PgTlsMode, PostgresTarget};

use crate::lag::StreamKey;
use crate::model::{Identity, Primary, Replica, Role, RoleFact, SourcePosition, Switch};

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

/// Each node's role as the failover part reads it: the group is the system
/// identifier, a primary's generation its timeline (its switch point from
/// the timeline's history file), a standby's positions what it received
/// and replayed.
pub fn role_facts(fleet: &Fleet<'_>, out: &mut Vec<RoleFact>) {
    for i in fleet.indices() {
        let Some(member) = fleet.member(i) else { continue };
        let Some((pg, at)) = member.last_ok else { continue };
        let node = &fleet.nodes[i];
        let role = if pg.in_recovery {
            let received = pg.wal_receiver.as_ref().and_then(|w| w.flushed_lsn).max(pg.receive_lsn);
            Role::Replica(Replica {
                received: received.map(|l| l.0),
                replayed: pg.replay_lsn.map(|l| l.0),
                mark: pg.commit_mark,
            })
        } else {
            let Some((key, position)) = source_position(pg) else { continue };
            let history = fleet.histories.get(&key);
            let latest = history.and_then(|h| h.latest()).filter(|s| s.at >= at);
            Role::Primary(Primary {
                generation: key.epoch.to_string(),
                position: latest.map_or(position.position, |s| s.position),
                position_at: latest.map_or(at, |s| s.at),
                last_write: history.and_then(|h| h.last_write()),
                first_write: history.and_then(|h| h.first_write()),
                switch: pg.timeline_switch.map(|s| Switch {
                    from_generation: s.parent.to_string(),
                    at: s.at.0,
                    exact: true,
                    record: None,
                }),
                opened: history.and_then(|h| h.oldest()).map(|s| (s.at, s.mark)),
            })
        };
        out.push(RoleFact {
            system: SYSTEM,
            node: node.name.clone(),
            region: node.region.clone(),
            group: pg.system_identifier.clone(),
            up: member.is_up(),
            seen_at: at,
            role,
            heartbeats: (pg.heartbeats.written.is_some() || !pg.heartbeats.seen.is_empty())
                .then(|| pg.heartbeats.clone()),
        });
    }
}

pub fn identity(pg: &PgObservation) -> Identity {
    Identity {
        role: pg.role().to_string(),
        version: Some(pg.version.clone()),
        labels: vec![("system_identifier".to_string(), pg.system_identifier.clone())],
    }
}
