//! Redis: masters, replicas and chains of replicas.
//!
//! Everything replag knows about Redis is in this folder: how to reach a
//! node (`target`), how to poll it with one pipelined round trip of `INFO`
//! (`source`), how observations become links (`links`), what a snapshot
//! shows beyond links (`detail`), and the `replag_redis_*` families
//! (`metrics`).

mod cluster;
mod detail;
mod fleet;
mod groups;
mod links;
mod metrics;
mod sentinel;
mod source;
mod target;
mod topology;

use std::time::Instant;

pub use cluster::{decode as decode_cluster, ClusterView};
pub use detail::{RedisClusterState, RedisDetails, RedisGroupView, RedisLinkDetail, RedisServerView};
pub use fleet::{stream, Fleet, RedisLink, TopologyFleet, SYSTEM};
pub use links::{RedisMemory, ACK_SILENT_AFTER};
pub use metrics::render as render_metrics;
pub use sentinel::{SentinelMaster, SentinelReplica, SentinelView};
pub use source::{decode, parse_info, ConnectedReplica, RedisObservation, RedisSource, ReplicaState};
pub use target::{from_config, RedisRole, RedisTarget};
pub use topology::{RedisTopology, Revealed, TopologySource};

use crate::lag::StreamKey;
use crate::model::{Identity, SourcePosition};

/// Replica links, the servers' figures, and the Sentinel groups' and
/// Cluster shards' view (`topology`: the Sentinel and Cluster entries).
pub fn derive(
    memory: &mut RedisMemory,
    fleet: Fleet<'_>,
    topology: TopologyFleet<'_>,
    now: Instant,
) -> (Vec<RedisLink>, RedisDetails) {
    let (mut links, mut details) = links::derive(memory, &links::RedisInputs { fleet }, now);
    (details.groups, details.clusters) = groups::derive(&mut memory.groups, &topology, &mut links);
    (links, details)
}

/// A master's `master_repl_offset` in the stream of its replication ID.
pub fn source_position(r: &RedisObservation) -> Option<(StreamKey, SourcePosition)> {
    r.is_master.then(|| {
        (stream(&r.replid), SourcePosition { position: r.master_repl_offset, mark: r.data_mark, mark_trails: false })
    })
}

pub fn topology_identity(t: &RedisTopology) -> Identity {
    Identity { role: t.role().to_string(), version: None, labels: Vec::new() }
}

pub fn identity(r: &RedisObservation) -> Identity {
    Identity {
        role: r.role().to_string(),
        version: Some(r.version.clone()),
        labels: vec![("replication_id".to_string(), r.replid.clone()), ("run_id".to_string(), r.run_id.clone())],
    }
}
