//! SeaweedFS' metric families (`replag_seaweedfs_*`): masters, data
//! centers, volume groups and filer.sync backlogs.

use super::detail::SeaweedDetails;
use crate::exposition::{bool_value, with, Families, LINK_LABELS, NODE_LABELS};

pub fn render(f: &Families, s: &SeaweedDetails) {
    let leader = f.gauge(
        "replag_seaweedfs_leader_known",
        "1 if the master knows a raft leader (0: the cluster has no leader).",
        NODE_LABELS,
    );
    let is_leader = f.gauge("replag_seaweedfs_is_leader", "1 if this master is the raft leader.", NODE_LABELS);
    let peers = f.gauge("replag_seaweedfs_raft_peers", "Raft peers this master lists.", NODE_LABELS);
    for m in &s.masters {
        let v = ["seaweedfs", m.node.as_str(), m.region.as_str()];
        leader.with_label_values(&v).set(bool_value(m.leader_known));
        is_leader.with_label_values(&v).set(bool_value(m.is_leader));
        peers.with_label_values(&v).set(m.peers as f64);
    }
    let dc_labels = with(NODE_LABELS, &["datacenter"]);
    let dc_volumes =
        f.gauge("replag_seaweedfs_datacenter_volumes", "Volume replicas held in the data center.", &dc_labels);
    let dc_free = f.gauge(
        "replag_seaweedfs_datacenter_free_slots",
        "Volume slots still free in the data center (max volumes − volumes).",
        &dc_labels,
    );
    let dc_nodes = f.gauge("replag_seaweedfs_datacenter_data_nodes", "Volume servers in the data center.", &dc_labels);
    let group_labels = with(NODE_LABELS, &["collection", "replication"]);
    let volumes =
        f.gauge("replag_seaweedfs_volumes", "Distinct volumes per collection and replica placement.", &group_labels);
    let under = f.gauge(
        "replag_seaweedfs_volumes_under_replicated",
        "Volumes with fewer copies than their placement xyz wants (x+y+z+1).",
        &group_labels,
    );
    let missing_dc = f.gauge(
        "replag_seaweedfs_volumes_missing_datacenter",
        "Volumes whose placement wants copies in other data centers but that have none there.",
        &group_labels,
    );
    let writable =
        f.gauge("replag_seaweedfs_writable_volumes", "Writable volumes per collection and placement.", &group_labels);
    for c in &s.clusters {
        for dc in &c.datacenters {
            let v = ["seaweedfs", c.node.as_str(), c.region.as_str(), dc.datacenter.as_str()];
            dc_volumes.with_label_values(&v).set(dc.volumes as f64);
            dc_free.with_label_values(&v).set(dc.free_slots as f64);
            dc_nodes.with_label_values(&v).set(dc.data_nodes as f64);
        }
        for g in &c.volume_groups {
            let v = ["seaweedfs", c.node.as_str(), c.region.as_str(), g.collection.as_str(), g.replication.as_str()];
            volumes.with_label_values(&v).set(g.volumes as f64);
            under.with_label_values(&v).set(g.under_replicated as f64);
            missing_dc.with_label_values(&v).set(g.missing_datacenter as f64);
            writable.with_label_values(&v).set(g.writable as f64);
        }
    }
    let backlog = f.gauge(
        "replag_seaweedfs_filer_sync_backlog_events",
        "Metadata events filer.sync has received from the source filer and not yet applied on the target.",
        LINK_LABELS,
    );
    let failed = f.counter(
        "replag_seaweedfs_filer_sync_failed_events_total",
        "Events filer.sync gave up on since it started (from its SeaweedFS_filerSync_events_failed_total).",
        LINK_LABELS,
    );
    for d in &s.filer_syncs {
        let v = [
            "seaweedfs",
            "filer_sync",
            d.source.as_str(),
            d.source_region.as_str(),
            d.target.as_str(),
            d.target_region.as_str(),
        ];
        backlog.with_label_values(&v).set(d.backlog_events as f64);
        failed.with_label_values(&v).inc_by(d.failed_events);
    }
}
