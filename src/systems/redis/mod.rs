//! Redis: masters, replicas and chains of replicas.
//!
//! Everything replag knows about Redis is in this folder: how to reach a
//! node (`target`), how to poll it with one pipelined round trip of `INFO`
//! (`source`), how observations become links (`links`), what a snapshot
//! shows beyond links (`detail`), and the `replag_redis_*` families
//! (`metrics`).

mod detail;
mod fleet;
mod links;
mod metrics;
mod source;
mod target;

use std::time::Instant;

pub use detail::{RedisDetails, RedisLinkDetail, RedisServerView};
pub use fleet::{stream, Fleet, RedisLink, SYSTEM};
pub use links::{RedisMemory, ACK_SILENT_AFTER};
pub use metrics::render as render_metrics;
pub use source::{decode, parse_info, ConnectedReplica, RedisObservation, RedisSource, ReplicaState};
pub use target::{from_config, RedisTarget};

use crate::lag::StreamKey;
use crate::model::Identity;

/// Replica links and the servers' figures.
pub fn derive(memory: &mut RedisMemory, fleet: Fleet<'_>, now: Instant) -> (Vec<RedisLink>, RedisDetails) {
    links::derive(memory, &links::RedisInputs { fleet }, now)
}

/// A master's `master_repl_offset` in the stream of its replication ID.
pub fn source_position(r: &RedisObservation) -> Option<(StreamKey, u64)> {
    r.is_master.then(|| (stream(&r.replid), r.master_repl_offset))
}

pub fn identity(r: &RedisObservation) -> Identity {
    Identity {
        role: r.role().to_string(),
        version: Some(r.version.clone()),
        labels: vec![("replication_id".to_string(), r.replid.clone()), ("run_id".to_string(), r.run_id.clone())],
    }
}
