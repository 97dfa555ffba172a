//! SeaweedFS: volume copies across data centers, from the masters' view.
//!
//! Everything replag knows about SeaweedFS is in this folder: how to reach a
//! master (`target`), how to poll the cluster (`source`), how its topology
//! becomes volume links (`links`), what a snapshot shows beyond links
//! (`detail`), and the `replag_seaweedfs_*` families (`metrics`).

mod detail;
mod fleet;
mod links;
mod metrics;
mod source;
mod target;

use std::time::Instant;

pub use detail::{
    SeaweedClusterView, SeaweedDataCenterView, SeaweedDetails, SeaweedMasterView, SeaweedVolumeGroupView,
};
pub use fleet::{Fleet, SeaweedLink, SYSTEM};
pub use links::{divergence, replication_health, SeaweedMemory};
pub use metrics::render as render_metrics;
pub use source::{decode, DataCenter, Layout, Placement, SeaweedObservation, SeaweedSource, Topology, VolumeReplica};
pub use target::{from_config, SeaweedTarget};

use crate::lag::StreamKey;
use crate::model::Identity;

/// Volume links per data center, and the clusters' figures.
pub fn derive(memory: &mut SeaweedMemory, fleet: Fleet<'_>, now: Instant) -> (Vec<SeaweedLink>, SeaweedDetails) {
    links::derive(memory, &links::SeaweedInputs { fleet }, now)
}

/// Volume replication is synchronous: no position stream.
pub fn source_position(_: &SeaweedObservation) -> Option<(StreamKey, u64)> {
    None
}

pub fn identity(w: &SeaweedObservation) -> Identity {
    Identity {
        role: if w.is_leader { "leader" } else { "follower" }.to_string(),
        version: Some(w.version.clone()).filter(|v| !v.is_empty()),
        labels: Vec::new(),
    }
}
