//! The immutable picture the server reads: built by the lag engine after each
//! batch of polls and swapped in atomically. A scrape or API call reads one
//! snapshot and never touches a database.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use crate::sources::PollFailure;
use crate::topology::System;

#[derive(Debug, Serialize)]
pub struct Snapshot {
    #[serde(serialize_with = "unix_seconds")]
    pub generated_at: SystemTime,
    #[serde(serialize_with = "unix_seconds")]
    pub started_at: SystemTime,
    pub nodes: Vec<NodeView>,
    pub links: Vec<LinkView>,
    pub postgres: PgDetails,
    pub redis: RedisDetails,
    pub seaweedfs: SeaweedDetails,
    /// `/metrics` text, rendered on first request, for the gates in force
    /// then (keyed by their address: a reload swaps them).
    #[serde(skip)]
    pub(crate) rendered_metrics: Mutex<Option<(usize, hyper::body::Bytes)>>,
}

impl Snapshot {
    /// Before the first poll has reported.
    pub fn empty(started_at: SystemTime) -> Self {
        Snapshot {
            generated_at: started_at,
            started_at,
            nodes: Vec::new(),
            links: Vec::new(),
            postgres: PgDetails::default(),
            redis: RedisDetails::default(),
            seaweedfs: SeaweedDetails::default(),
            rendered_metrics: Mutex::new(None),
        }
    }
}

fn unix_seconds<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(to_unix(*t))
}

pub fn to_unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub system: System,
    pub name: String,
    pub region: String,
    /// The last poll succeeded.
    pub up: bool,
    pub role: Option<String>,
    pub version: Option<String>,
    /// Identity labels for `replag_node_info` (system identifier, ...).
    pub identity: Vec<(String, String)>,
    pub failure: Option<PollFailure>,
    pub last_poll_duration_seconds: Option<f64>,
    #[serde(serialize_with = "opt_unix_seconds")]
    pub last_success: Option<SystemTime>,
    pub polls_total: u64,
    /// Failed polls by reason, in `FailureKind::ALL` order.
    pub failures_total: [u64; 5],
}

fn opt_unix_seconds<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&to_unix(*t)),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    Physical,
    Logical,
    Replica,
    Volume,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Physical => "physical",
            LinkKind::Logical => "logical",
            LinkKind::Replica => "replica",
            LinkKind::Volume => "volume",
        }
    }
}

/// Region label for a replica found by discovery that no config names.
pub const UNKNOWN_REGION: &str = "unknown";

#[derive(Debug, Clone, Serialize)]
pub struct LinkView {
    pub system: System,
    pub kind: LinkKind,
    pub source: String,
    pub source_region: String,
    pub replica: String,
    pub replica_region: String,
    /// Connected and streaming.
    pub up: bool,
    /// What the link is doing, in the system's own words (e.g. `streaming`).
    pub state: String,
    /// Why the link is down, or what the figures are based on.
    pub reason: Option<String>,
    /// `None` when there is no source history to measure against yet.
    pub lag: Option<LagView>,
    /// Age of the replica position the lag was computed from.
    pub data_age_seconds: Option<f64>,
    /// How long replag has seen the link down without a break (None while up).
    pub down_seconds: Option<f64>,
    pub postgres: Option<PgLinkDetail>,
    pub redis: Option<RedisLinkDetail>,
    /// Lag over time, for gates (not serialized: `/gate` reports from it).
    #[serde(skip)]
    pub track: Option<Arc<LinkTrack>>,
}

/// A link's lag history in the form gates ask about.
#[derive(Debug, Clone, Default)]
pub struct LinkTrack {
    pub seconds: crate::lag::breach::BreachHistory,
    pub bytes: crate::lag::breach::BreachHistory,
}

impl LinkView {
    /// `system/kind/source->replica`: how gates and logs name a link.
    pub fn id(&self) -> String {
        format!("{}/{}/{}->{}", self.system.as_str(), self.kind.as_str(), self.source, self.replica)
    }

    /// A link that is down until its rules say otherwise.
    pub fn new(system: System, kind: LinkKind, source: (String, String), replica: (String, String)) -> Self {
        LinkView {
            system,
            kind,
            source: source.0,
            source_region: source.1,
            replica: replica.0,
            replica_region: replica.1,
            up: false,
            state: "unknown".into(),
            reason: None,
            lag: None,
            data_age_seconds: None,
            down_seconds: None,
            postgres: None,
            redis: None,
            track: None,
        }
    }
}

/// The master's `INFO replication` view of a Redis replica.
#[derive(Debug, Clone, Serialize)]
pub struct RedisLinkDetail {
    /// `online`, `wait_bgsave`, `send_bulk`, ...
    pub state: String,
    /// Seconds since the replica's last ACK to the master.
    pub ack_age_seconds: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LagView {
    pub bytes: u64,
    pub seconds: f64,
    pub lower_bound: bool,
}

/// The upstream's `pg_stat_replication` view of a physical link.
#[derive(Debug, Clone, Serialize)]
pub struct PgLinkDetail {
    pub state: String,
    pub sync_state: String,
    /// (stage, lag) for sent, write, flush, replay, measured at the upstream's poll.
    pub stages: Vec<(&'static str, LagView)>,
    /// PostgreSQL's own write/flush/replay lag (absent when it reports NULL).
    pub reported: Vec<(&'static str, f64)>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PgDetails {
    pub servers: Vec<PgServerView>,
    pub slots: Vec<PgSlotView>,
    pub subscriptions: Vec<PgSubscriptionView>,
}

/// A logical subscription, from the subscriber's last successful poll.
#[derive(Debug, Clone, Serialize)]
pub struct PgSubscriptionView {
    pub node: String,
    pub region: String,
    pub subscription: String,
    pub enabled: bool,
    pub worker_running: bool,
    pub sync_workers: usize,
    pub received_lsn: Option<u64>,
    pub last_message_age_seconds: Option<f64>,
    pub apply_error_count: Option<u64>,
    pub sync_error_count: Option<u64>,
    pub errors_rising: bool,
    /// Tables per `srsubstate`.
    pub table_states: Vec<(String, u64)>,
}

/// Per-server PostgreSQL figures, from the node's last successful poll.
#[derive(Debug, Clone, Serialize)]
pub struct PgServerView {
    pub node: String,
    pub region: String,
    pub timeline: Option<u32>,
    pub current_lsn: Option<u64>,
    pub receive_lsn: Option<u64>,
    pub replay_lsn: Option<u64>,
    pub replay_paused: Option<bool>,
    pub last_xact_replay_unix: Option<f64>,
    pub wal_receiver_status: Option<String>,
    pub wal_receiver_last_message_age_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PgSlotView {
    pub node: String,
    pub region: String,
    pub slot: String,
    pub slot_type: String,
    pub active: bool,
    /// WAL the slot holds back from removal: the node's position − `restart_lsn`.
    pub retained_bytes: Option<u64>,
    pub wal_status: Option<String>,
    pub safe_wal_size_bytes: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RedisDetails {
    pub servers: Vec<RedisServerView>,
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
