//! SeaweedFS: volume copies across data centers, from the masters' view;
//! and `weed filer.sync` between clusters, from its filers and its process.
//!
//! Everything replag knows about SeaweedFS is in this folder: how to reach a
//! master, filer or filer.sync (`target`), how to poll each (`source`,
//! `filer`, `filer_sync`, over `systems::http`), how a master's topology becomes
//! volume links (`links`) and filer.sync's directions `filer_sync` links
//! (`sync_links`),
//! what a snapshot shows beyond links (`detail`), and the
//! `replag_seaweedfs_*` families (`metrics`).

mod detail;
mod filer;
mod filer_sync;
mod fleet;
mod links;
mod metrics;
mod source;
mod sync_links;
mod target;

use std::time::Instant;

pub use detail::{
    SeaweedClusterView, SeaweedDataCenterView, SeaweedDetails, SeaweedFilerSyncView, SeaweedMasterView,
    SeaweedVolumeGroupView,
};
pub use filer::{decode_listing, FilerObservation};
pub use filer_sync::{decode as decode_filer_sync, SyncDirection, SyncObservation};
pub use fleet::{Fleet, SeaweedLink, SYSTEM};
pub use links::{divergence, replication_health, SeaweedMemory};
pub use metrics::render as render_metrics;
pub use source::{
    decode, DataCenter, Layout, MasterObservation, Placement, SeaweedObservation, SeaweedSource, Topology,
    VolumeReplica,
};
pub use target::{from_config, SeaweedRole, SeaweedTarget, DEFAULT_HEARTBEAT_PATH};

use crate::lag::StreamKey;
use crate::model::{Heartbeats, Identity, SourcePosition};

/// Volume links per data center, filer.sync links per direction, and the
/// clusters' figures.
pub fn derive(memory: &mut SeaweedMemory, fleet: Fleet<'_>, now: Instant) -> (Vec<SeaweedLink>, SeaweedDetails) {
    let (mut links, mut details) = links::derive(memory, &links::SeaweedInputs { fleet: &fleet }, now);
    let (sync_links, syncs) = sync_links::derive(&mut memory.filer_sync, &fleet, now);
    links.extend(sync_links);
    details.filer_syncs = syncs;
    (links, details)
}

/// Volume replication is synchronous: no position stream. A filer.sync
/// process has one per direction: the events it has received.
pub fn source_positions(o: &SeaweedObservation) -> Vec<(StreamKey, SourcePosition)> {
    match o {
        SeaweedObservation::FilerSync(sync) => sync
            .directions
            .iter()
            .map(|d| (sync_links::received_stream(d), SourcePosition::all_data(d.events_received)))
            .collect(),
        _ => Vec::new(),
    }
}

/// A filer's heartbeats (the only role that has them).
pub fn heartbeats(o: &SeaweedObservation) -> Option<&Heartbeats> {
    match o {
        SeaweedObservation::Filer(f) => Some(&f.heartbeats),
        _ => None,
    }
}

pub fn identity(o: &SeaweedObservation) -> Identity {
    let (role, version) = match o {
        SeaweedObservation::Master(m) => (if m.is_leader { "leader" } else { "follower" }, &m.version),
        SeaweedObservation::Filer(f) => ("filer", &f.version),
        SeaweedObservation::FilerSync(s) => ("filer.sync", &s.version),
    };
    Identity { role: role.to_string(), version: Some(version.clone()).filter(|v| !v.is_empty()), labels: Vec::new() }
}
