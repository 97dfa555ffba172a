//! What a snapshot shows of Redis beyond links: per-server figures, and the
//! master's view of each replica link.

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct RedisDetails {
    pub servers: Vec<RedisServerView>,
    /// Sentinel groups and Cluster shards (empty without such entries).
    pub groups: Vec<super::groups::RedisGroupView>,
    /// Each Redis Cluster's own state.
    pub clusters: Vec<super::groups::RedisClusterState>,
}

/// Per-server Redis figures, from the node's last successful poll.
#[derive(Debug, Clone, Serialize)]
pub struct RedisServerView {
    pub node: String,
    pub region: String,
    /// `master_repl_offset` on a master, `slave_repl_offset` on a replica.
    pub offset: u64,
    pub connected_replicas: Option<usize>,
    pub backlog_size: Option<u64>,
    pub backlog_histlen: Option<u64>,
    pub sync_full: Option<u64>,
    pub sync_partial_ok: Option<u64>,
    pub sync_partial_err: Option<u64>,
    /// Replica side.
    pub master_link_up: Option<bool>,
    pub master_last_io_seconds: Option<i64>,
    pub master_link_down_since_seconds: Option<i64>,
    pub master_sync_in_progress: Option<bool>,
}

/// The master's `INFO replication` view of a Redis replica.
#[derive(Debug, Clone, Serialize)]
pub struct RedisLinkDetail {
    /// `online`, `wait_bgsave`, `send_bulk`, ...
    pub state: String,
    /// Seconds since the replica's last ACK to the master.
    pub ack_age_seconds: Option<u64>,
}
