//! What a snapshot shows of SeaweedFS: masters, per cluster its data
//! centers and volume groups, and each filer.sync direction's backlog.

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SeaweedDetails {
    pub masters: Vec<SeaweedMasterView>,
    /// From leader masters only.
    pub clusters: Vec<SeaweedClusterView>,
    /// Per filer.sync direction, as its process last reported it.
    pub filer_syncs: Vec<SeaweedFilerSyncView>,
}

/// One direction of a `weed filer.sync`: what it holds but has not applied.
#[derive(Debug, Clone, Serialize)]
pub struct SeaweedFilerSyncView {
    /// The filer.sync node.
    pub sync: String,
    pub source: String,
    pub source_region: String,
    pub target: String,
    pub target_region: String,
    /// Events received from the source filer, not yet applied on the target.
    pub backlog_events: u64,
    pub backlog_bytes: u64,
    /// Events the process gave up on since it started (counter).
    pub failed_events: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeaweedMasterView {
    pub node: String,
    pub region: String,
    pub is_leader: bool,
    pub leader_known: bool,
    pub peers: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeaweedClusterView {
    pub node: String,
    pub region: String,
    pub datacenters: Vec<SeaweedDataCenterView>,
    pub volume_groups: Vec<SeaweedVolumeGroupView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeaweedDataCenterView {
    pub datacenter: String,
    pub data_nodes: usize,
    /// Volume replicas held in the data center.
    pub volumes: u64,
    pub free_slots: u64,
}

/// Volumes of one collection and replica placement.
#[derive(Debug, Clone, Serialize)]
pub struct SeaweedVolumeGroupView {
    pub collection: String,
    pub replication: String,
    pub volumes: u64,
    pub under_replicated: u64,
    pub missing_datacenter: u64,
    pub writable: usize,
}
