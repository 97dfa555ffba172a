//! What a snapshot shows of PostgreSQL beyond links: servers, slots,
//! subscriptions, and each physical link's stage view.

use serde::Serialize;

use crate::model::LagView;

/// The upstream's `pg_stat_replication` view of a physical link.
#[derive(Debug, Clone, Serialize)]
pub struct PgLinkDetail {
    pub state: String,
    pub sync_state: String,
    /// (stage, lag) for sent, write, flush, replay, measured at the upstream's poll.
    #[serde(serialize_with = "crate::model::as_object")]
    pub stages: Vec<(&'static str, LagView)>,
    /// PostgreSQL's own write/flush/replay lag (absent when it reports NULL).
    #[serde(serialize_with = "crate::model::as_object")]
    pub reported: Vec<(&'static str, f64)>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PgDetails {
    pub servers: Vec<PgServerView>,
    pub slots: Vec<PgSlotView>,
    pub subscriptions: Vec<PgSubscriptionView>,
    /// Clusters under Patroni, as its REST API shows them.
    pub patroni: Vec<super::patroni::detail::PatroniClusterView>,
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
    #[serde(serialize_with = "crate::model::as_object")]
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
