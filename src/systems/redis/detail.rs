//! What a snapshot shows of Redis beyond links: per-server figures, the
//! master's view of each replica link, Sentinel groups and Cluster shards
//! (`groups` decides them). Plain data: a leaf the link rules build on.

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct RedisDetails {
    pub servers: Vec<RedisServerView>,
    /// Sentinel groups and Cluster shards (empty without such entries).
    pub groups: Vec<RedisGroupView>,
    /// Each Redis Cluster's own state.
    pub clusters: Vec<RedisClusterState>,
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

/// A Sentinel group (one monitored master) or a Cluster shard.
#[derive(Debug, Clone, Serialize)]
pub struct RedisGroupView {
    /// `sentinel` or `cluster`.
    pub kind: &'static str,
    /// The Sentinel master name, or the Cluster's name (its entry's `group`, else name).
    pub group: String,
    /// Cluster: the shard's slot ranges.
    pub shard: Option<String>,
    /// The master now, by node name (`host:port` when discovered).
    pub master: Option<String>,
    pub master_region: Option<String>,
    /// Replicas the topology lists for the master.
    pub replicas: usize,
    /// Links from the master that are up.
    pub healthy_replicas: usize,
    /// Master changes replag has seen since it started.
    pub failovers_total: u64,
    /// No Sentinel or Cluster entry that knows the group answers now: the
    /// view is the last one known.
    pub stale: bool,
    /// Sentinel: the configured quorum.
    pub quorum: Option<u32>,
    /// Sentinel: a reachable Sentinel says a failover could be authorized
    /// now (`SENTINEL CKQUORUM`); None while stale.
    pub quorum_ok: Option<bool>,
    /// Sentinel: reachable Sentinels that monitor the group.
    pub sentinels_reachable: Option<usize>,
    /// Sentinel: some reachable Sentinel sees the master subjectively down.
    pub sdown: Option<bool>,
    /// Sentinel: the Sentinels agree the master is down.
    pub odown: Option<bool>,
    pub failover_in_progress: Option<bool>,
}

/// A Redis Cluster's own state.
#[derive(Debug, Clone, Serialize)]
pub struct RedisClusterState {
    pub group: String,
    pub state_ok: bool,
    pub slots_assigned: u32,
    pub slots_ok: u32,
    pub slots_pfail: u32,
    pub slots_fail: u32,
    pub stale: bool,
}
