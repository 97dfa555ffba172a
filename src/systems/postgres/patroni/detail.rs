//! What a snapshot shows of a Patroni cluster: Patroni's word on each
//! member beside replag's. A leaf (PostgreSQL's details hold these).

use serde::Serialize;

use super::view::{EndpointStatus, PatroniSwitch};

/// A Patroni cluster as a snapshot shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PatroniClusterView {
    /// The `role = "patroni"` entry.
    pub node: String,
    pub region: String,
    /// Its last poll had an answer; false: the view is the last one had.
    pub up: bool,
    pub answered_by: String,
    pub leader: Option<String>,
    pub timeline: u32,
    /// Maintenance mode: Patroni will not fail over.
    pub paused: bool,
    pub disagreement: Option<String>,
    pub endpoints: Vec<EndpointStatus>,
    pub members: Vec<PatroniMemberView>,
    pub history: Vec<PatroniSwitch>,
}

/// One member: Patroni's word and replag's beside it.
#[derive(Debug, Clone, Serialize)]
pub struct PatroniMemberView {
    pub member: String,
    /// The replag node polled for it (None: no address to poll).
    pub node: Option<String>,
    pub role: String,
    pub state: String,
    pub timeline: Option<u32>,
    /// Patroni's lag: the leader's position in the DCS minus the member's,
    /// each up to `loop_wait` old.
    pub patroni_lag_bytes: Option<u64>,
    /// replag's, read the same way (received, not replayed): the leader's
    /// position at its last poll minus what the member had received at its own.
    pub replag_lag_bytes: Option<u64>,
    /// The two differ by more than `patroni_lag_tolerance_bytes`.
    pub lag_disagrees: bool,
    /// Why the member is not simply running, where it is not.
    pub note: Option<String>,
}
