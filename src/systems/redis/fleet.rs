//! The fleet as Redis' link rules read it, and the names they share.

use super::detail::RedisLinkDetail;
use super::source::RedisObservation;
use super::target::RedisTarget;
use crate::lag::StreamKey;
use crate::model::{LinkView, System};

pub const SYSTEM: System = System::Redis;

/// The fleet as Redis' link rules see it.
pub type Fleet<'a> = crate::lag::Fleet<'a, RedisTarget, RedisObservation>;

/// The Sentinel and Cluster entries, as the group rules see them.
pub type TopologyFleet<'a> = crate::lag::Fleet<'a, RedisTarget, super::topology::RedisTopology>;

/// A Redis link, with the master's view of the replica when known.
pub type RedisLink = LinkView<Option<RedisLinkDetail>>;

/// A master's offset stream: keyed by its replication ID.
pub fn stream(replid: &str) -> StreamKey {
    StreamKey { system: SYSTEM, id: replid.to_string(), epoch: 0 }
}
