//! What a snapshot shows of SeaweedFS: masters, and per cluster its data
//! centers and volume groups.

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SeaweedDetails {
    pub masters: Vec<SeaweedMasterView>,
    /// From leader masters only.
    pub clusters: Vec<SeaweedClusterView>,
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
