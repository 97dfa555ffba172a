//! What the engine knows of every node, as one system's link rules read it:
//! the configured nodes, this system's members with their typed targets and
//! last observations, the source position histories, and the node index.
//! Generic over the system's target and observation types, so a system's
//! folder never needs to know the others (or the engine's own records).

use std::collections::HashMap;
use std::time::Instant;

use super::history::PositionHistory;
use crate::model::{LagView, Node, NodeIndex, PollFailure, System, UNKNOWN_REGION};

/// One source position stream. A new epoch (PostgreSQL timeline) is a new
/// stream: positions that are not progress never mix with the old ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub system: System,
    pub id: String,
    pub epoch: u64,
}

impl StreamKey {
    /// The stream of replag's heartbeats written on `source`.
    pub fn heartbeat(system: System, source: &str) -> StreamKey {
        StreamKey { system, id: format!("heartbeat/{source}"), epoch: 0 }
    }
}

/// Every source position stream the engine keeps.
pub type Histories = HashMap<StreamKey, PositionHistory>;

/// Where a replica replicates from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Upstream {
    Node(usize),
    /// A server no config names: `host:port`.
    Address(String),
}

/// `(name, region)` labels for an upstream.
pub fn label(nodes: &[Node], upstream: &Upstream) -> (String, String) {
    match upstream {
        Upstream::Node(u) => (nodes[*u].name.clone(), nodes[*u].region.clone()),
        Upstream::Address(address) => (address.clone(), UNKNOWN_REGION.to_string()),
    }
}

/// One node of the system, as the engine last saw it.
#[derive(Debug)]
pub struct Member<'a, T, O> {
    pub target: &'a T,
    /// The last successful poll and the moment it describes, kept while the node is down.
    pub last_ok: Option<(&'a O, Instant)>,
    /// The node has reported at least once.
    pub polled: bool,
    /// Why the last poll failed (None: it succeeded, or none yet).
    pub failure: Option<&'a PollFailure>,
}

impl<T, O> Member<'_, T, O> {
    /// The last poll succeeded.
    pub fn is_up(&self) -> bool {
        self.polled && self.failure.is_none()
    }
}

/// The fleet as one system sees it. Node indices are config positions,
/// shared with every other system's view.
#[derive(Debug)]
pub struct Fleet<'a, T, O> {
    pub system: System,
    /// Every configured node, by index.
    pub nodes: &'a [Node],
    /// Per node index: `Some` for this system's nodes.
    pub members: Vec<Option<Member<'a, T, O>>>,
    pub index: &'a NodeIndex,
    pub histories: &'a Histories,
    /// Every node has reported at least once: unclaimed rows and slots are
    /// really unconfigured replicas.
    pub discovery: bool,
    /// How often nodes are polled: how late replag may see a change.
    pub poll_interval: std::time::Duration,
}

impl<'a, T, O> Fleet<'a, T, O> {
    /// This system's nodes, in config order.
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.members.iter().enumerate().filter_map(|(i, m)| m.as_ref().map(|_| i))
    }

    pub fn member(&self, i: usize) -> Option<&Member<'a, T, O>> {
        self.members.get(i)?.as_ref()
    }

    /// The last observation of node `i`, only if its last poll succeeded.
    pub fn fresh(&self, i: usize) -> Option<(&'a O, Instant)> {
        self.member(i).filter(|m| m.is_up()).and_then(|m| m.last_ok)
    }

    /// The last successful observation of node `i`, however old.
    pub fn last_ok(&self, i: usize) -> Option<(&'a O, Instant)> {
        self.member(i).and_then(|m| m.last_ok)
    }

    /// Why node `i` cannot be read now, for a link's reason.
    pub fn failure_text(&self, i: usize) -> String {
        self.member(i).and_then(|m| m.failure).map_or_else(|| "not polled yet".to_string(), |f| f.to_string())
    }

    /// How far behind replag's heartbeats on `source` a replica is that held
    /// `seen` at `at`: from the first write it lacks (no interpolation).
    pub fn heartbeat_lag(&self, source: &str, seen: &crate::model::Heartbeats, at: Instant) -> Option<f64> {
        let history = self.histories.get(&StreamKey::heartbeat(self.system, source))?;
        Some(history.lag_in_steps(seen.seen(source).unwrap_or(0), at)?.seconds)
    }

    /// This system's node named `name`.
    pub fn named(&self, name: &str) -> Option<usize> {
        self.index.named(self.system, name)
    }
}

/// Lag of a replica at `position`, observed at `at`, against `history`.
pub fn lag_of(history: Option<&PositionHistory>, position: Option<u64>, at: Instant) -> Option<LagView> {
    Some(history?.lag(position?, at)?.into())
}
