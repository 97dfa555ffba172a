//! What a snapshot shows of nodes and links: plain data, serialized as the
//! `/api/v1/status` JSON (field order is that contract).

use std::time::SystemTime;

use serde::Serialize;

use super::failure::{FailureKind, PollFailure};
use super::labels::{LinkId, LinkKind, System};
use super::text::to_unix;

#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub system: System,
    pub name: String,
    pub region: String,
    /// The last poll succeeded.
    pub up: bool,
    pub role: Option<String>,
    pub version: Option<String>,
    /// Identity labels for `replag_node_info` (system identifier, ...);
    /// a JSON object.
    #[serde(serialize_with = "as_object")]
    pub identity: Vec<(String, String)>,
    pub failure: Option<PollFailure>,
    pub last_poll_duration_seconds: Option<f64>,
    #[serde(serialize_with = "opt_unix_seconds")]
    pub last_success: Option<SystemTime>,
    pub polls_total: u64,
    /// Reads of the node's position between polls that replag took (a
    /// source sampled every `poll.sample_interval`): growing while lag is
    /// resolved finer than the poll interval.
    pub position_reads_total: u64,
    /// Failed polls by reason, in `FailureKind::ALL` order; a JSON object
    /// by reason (`{"connect": 3, "auth": 0, …}`).
    #[serde(serialize_with = "failures_as_object")]
    pub failures_total: [u64; FailureKind::ALL.len()],
}

/// `(name, value)` pairs as a JSON object (named fields, never positional
/// arrays, in `/api/v1/status`).
pub fn as_object<S: serde::Serializer, K: Serialize, V: Serialize>(pairs: &[(K, V)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

fn failures_as_object<S: serde::Serializer>(counts: &[u64; FailureKind::ALL.len()], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(counts.len()))?;
    for (kind, n) in FailureKind::ALL.iter().zip(counts) {
        map.serialize_entry(kind.as_str(), n)?;
    }
    map.end()
}

fn opt_unix_seconds<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&to_unix(*t)),
        None => s.serialize_none(),
    }
}

/// How far a replica trails its source, as shown.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LagView {
    pub bytes: u64,
    pub seconds: f64,
    pub lower_bound: bool,
    /// How finely the source's position history placed this reading
    /// (`lag::Lag::resolution`); None where lag is not measured against a
    /// position history (SeaweedFS volume copies, heartbeats alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution_seconds: Option<f64>,
}

/// The state of a link whose periodic messages stopped arriving (a silent
/// partition): it is down, whatever the servers still say.
pub const SILENT: &str = "silent";

/// One replication link. `D` is what its system adds (a PostgreSQL link
/// carries its upstream's `pg_stat_replication` view, say); a snapshot holds
/// every system's links with `systems::LinkDetail`.
#[derive(Debug, Clone, Serialize)]
pub struct LinkView<D> {
    #[serde(flatten)]
    pub id: LinkId,
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
    /// Seconds since the link's periodic message (a standby's status reply,
    /// a replica's ACK) last arrived at its source, as replag saw it; None
    /// where the system does not say. Past its interval the link is `silent`.
    pub last_message_age_seconds: Option<f64>,
    /// With replag's heartbeats on: seconds since replag wrote the first
    /// heartbeat on the source that the replica does not have (0 when it has
    /// the last one). End to end, traffic-independent, skew-free.
    pub heartbeat_lag_seconds: Option<f64>,
    /// The replication group the link belongs to, where a topology says:
    /// a Redis Sentinel master name, or a Redis Cluster's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Redis Cluster: the shard, named by its slot ranges (`0-5460`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    #[serde(flatten)]
    pub detail: D,
}

impl<D: Default> LinkView<D> {
    /// A link that is down until its rules say otherwise.
    pub fn new(system: System, kind: LinkKind, source: (String, String), replica: (String, String)) -> Self {
        LinkView {
            id: LinkId::new(system, kind, source, replica),
            up: false,
            state: "unknown".into(),
            reason: None,
            lag: None,
            data_age_seconds: None,
            down_seconds: None,
            last_message_age_seconds: None,
            heartbeat_lag_seconds: None,
            group: None,
            shard: None,
            detail: D::default(),
        }
    }
}

impl<D> LinkView<D> {
    /// The lag gates judge: the position lag, or the heartbeat lag where
    /// heartbeats are on and it is larger (a cut link at idle). Heartbeats
    /// add to a measured link; without a position lag there is nothing to
    /// judge bytes by, and the gate says so.
    pub fn gate_lag(&self) -> Option<LagView> {
        match (self.lag, self.heartbeat_lag_seconds) {
            (Some(lag), Some(hb)) if hb > lag.seconds => Some(LagView { seconds: hb, ..lag }),
            (lag, _) => lag,
        }
    }

    /// The same link with its detail turned into another type.
    pub fn map_detail<E>(self, f: impl FnOnce(D) -> E) -> LinkView<E> {
        LinkView {
            id: self.id,
            up: self.up,
            state: self.state,
            reason: self.reason,
            lag: self.lag,
            data_age_seconds: self.data_age_seconds,
            down_seconds: self.down_seconds,
            last_message_age_seconds: self.last_message_age_seconds,
            heartbeat_lag_seconds: self.heartbeat_lag_seconds,
            group: self.group,
            shard: self.shard,
            detail: f(self.detail),
        }
    }
}

/// Who a node is, as of its last successful poll: for `replag_node_info`
/// and the status views.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// `primary`, `standby`, `master`, `replica`, `leader`, ...
    pub role: String,
    pub version: Option<String>,
    /// Further identity labels (system identifier, replication ID, ...).
    pub labels: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_judge_the_larger_of_position_and_heartbeat_lag() {
        let mut link: LinkView<()> =
            LinkView::new(System::Postgres, LinkKind::Physical, ("a".into(), "r1".into()), ("b".into(), "r2".into()));
        link.heartbeat_lag_seconds = Some(4.0);
        assert_eq!(link.gate_lag(), None, "heartbeats add to a measured link, they do not replace it");
        link.lag = Some(LagView { bytes: 0, seconds: 0.0, lower_bound: false, resolution_seconds: None });
        assert_eq!(link.gate_lag().map(|l| l.seconds), Some(4.0), "a cut link at idle");
        link.lag = Some(LagView { bytes: 900, seconds: 6.0, lower_bound: false, resolution_seconds: None });
        assert_eq!(link.gate_lag(), link.lag, "position lag when it is the larger");
    }
}
