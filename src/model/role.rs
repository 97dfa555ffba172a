//! What each node says about its place in a replication group, in words
//! every system shares: who writes, on which generation, how far; who
//! follows, how far it has received and replayed. Systems state these facts
//! (`systems::role_facts`); the generic `failover` part turns consecutive
//! sets of them into events, data at risk and promotion verdicts, without
//! ever learning a timeline or a replication ID.

use std::time::Instant;

use super::heartbeat::Heartbeats;
use super::labels::System;

/// One node's role, as of its last successful poll.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleFact {
    pub system: System,
    pub node: String,
    pub region: String,
    /// The replication group: nodes that can take over from each other
    /// (PostgreSQL: the system identifier; Redis: the Sentinel master name,
    /// the Cluster shard, or the config's `group`; else empty).
    pub group: String,
    /// The last poll succeeded.
    pub up: bool,
    /// When the facts were read (the last successful poll's moment).
    pub seen_at: Instant,
    pub role: Role,
    /// replag's heartbeats this node's last poll wrote and saw, where they
    /// are on (None otherwise): a promoted node's heartbeats of the old
    /// primary say how much of the old primary's last writes it lacks.
    pub heartbeats: Option<Heartbeats>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// Takes writes.
    Primary(Primary),
    /// Follows a primary.
    Replica(Replica),
}

/// A node that takes writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Primary {
    /// What positions belong to: a new one starts at each promotion
    /// (PostgreSQL: the timeline; Redis: the replication ID).
    pub generation: String,
    /// The newest position known (its position history's latest sample,
    /// finer than the poll), and when it was read.
    pub position: u64,
    pub position_at: Instant,
    /// The last interval in which the node was seen writing data (not only
    /// housekeeping): its last write happened between the two moments.
    pub last_write: Option<(Instant, Instant)>,
    /// The first such interval on this generation.
    pub first_write: Option<(Instant, Instant)>,
    /// How this generation began, where the node says (a promoted node).
    pub switch: Option<Switch>,
    /// Its position history's first sample: the moment and the data mark
    /// (a promoted node's writes before replag first read it as primary
    /// show as a mark moved since it was last read as a replica).
    pub opened: Option<(Instant, u64)>,
}

/// Where a generation branched off its parent: positions up to `at` are
/// shared with the parent generation, positions past it are not.
#[derive(Debug, Clone, PartialEq)]
pub struct Switch {
    pub from_generation: String,
    pub at: u64,
    /// Read from the server's own record (PostgreSQL's timeline history
    /// file, Redis' `second_repl_offset`), not estimated.
    pub exact: bool,
    /// The HA manager's own record of this switch, where one keeps it.
    pub record: Option<Box<HaRecord>>,
}

/// How an HA manager (Patroni's `/history`) recorded a switch: its own
/// switch point, time and reason, beside what replag saw.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HaRecord {
    /// Who keeps the record: `patroni`.
    pub by: String,
    /// Its switch position, and as people read it.
    pub switch_position: u64,
    pub switch_text: String,
    /// When it says the switch happened (Unix seconds), if it says.
    pub at: Option<f64>,
    pub reason: Option<String>,
    /// The new leader, as it names it.
    pub new_leader: Option<String>,
}

/// A node that follows a primary.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    /// Everything up to here is on the replica (written to its disk or
    /// memory); None where it does not say.
    pub received: Option<u64>,
    /// Everything up to here is visible on it.
    pub replayed: Option<u64>,
    /// The data mark the replica shows (the system's `SourcePosition::mark`
    /// as seen from the replica), where it says.
    pub mark: Option<u64>,
}

impl RoleFact {
    pub fn primary(&self) -> Option<&Primary> {
        match &self.role {
            Role::Primary(p) => Some(p),
            Role::Replica(_) => None,
        }
    }

    pub fn replica(&self) -> Option<&Replica> {
        match &self.role {
            Role::Replica(r) => Some(r),
            Role::Primary(_) => None,
        }
    }
}
