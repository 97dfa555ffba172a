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
pub use topology::{RedisTopology, TopologySource};

use crate::lag::StreamKey;
use crate::model::{Identity, Primary, Replica, Role, RoleFact, SourcePosition, Switch};

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

/// Each server's role as the failover part reads it: a master's generation
/// is its replication ID (a promoted one names the ID it branched from,
/// `master_replid2`, up to `second_repl_offset`); a replica's position is
/// its applied offset. The group is the Sentinel master name or the
/// config's `group`, never a Cluster's name (its shards are no one group).
pub fn role_facts(fleet: &Fleet<'_>, topology: &TopologyFleet<'_>, out: &mut Vec<RoleFact>) {
    let clusters: Vec<&str> = topology
        .indices()
        .filter(|&i| matches!(topology.last_ok(i), Some((RedisTopology::Cluster(_), _))))
        .map(|i| topology.nodes[i].group.as_deref().unwrap_or(&topology.nodes[i].name))
        .collect();
    for i in fleet.indices() {
        let Some(member) = fleet.member(i) else { continue };
        let Some((r, at)) = member.last_ok else { continue };
        let node = &fleet.nodes[i];
        let group = node.group.as_deref().filter(|g| !clusters.contains(g)).unwrap_or("");
        let role = match &r.replica {
            Some(replica) => Role::Replica(Replica {
                received: Some(replica.offset),
                replayed: Some(replica.offset),
                mark: Some(replica.offset),
            }),
            None => {
                let history = fleet.histories.get(&stream(&r.replid));
                let latest = history.and_then(|h| h.latest()).filter(|s| s.at >= at);
                Role::Primary(Primary {
                    generation: r.replid.clone(),
                    position: latest.map_or(r.master_repl_offset, |s| s.position),
                    position_at: latest.map_or(at, |s| s.at),
                    last_write: history.and_then(|h| h.last_write()),
                    first_write: history.and_then(|h| h.first_write()),
                    switch: r.replid2.as_ref().zip(r.second_repl_offset).map(|(from, second)| Switch {
                        from_generation: from.clone(),
                        at: second.saturating_sub(1),
                        exact: true,
                        record: None,
                    }),
                    opened: history.and_then(|h| h.oldest()).map(|s| (s.at, s.position)),
                })
            }
        };
        out.push(RoleFact {
            system: SYSTEM,
            node: node.name.clone(),
            region: node.region.clone(),
            group: group.to_string(),
            up: member.is_up(),
            seen_at: at,
            role,
            heartbeats: (r.heartbeats.written.is_some() || !r.heartbeats.seen.is_empty()).then(|| r.heartbeats.clone()),
        });
    }
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
