//! Nodes as configured: name, region, declared relations, and an index to
//! recognise them by address. How to reach a node is its system's business
//! (`systems::Target`).

use std::collections::{BTreeMap, HashMap};

use super::labels::System;

/// One configured node, whatever its system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub region: String,
    pub system: System,
    /// The node this one is expected to replicate from, if declared: its link
    /// exists (as down) even before the replica has ever been seen.
    pub upstream: Option<String>,
    /// PostgreSQL subscriber: the publisher node of each subscription, by
    /// subscription name, where discovery by slot name is not enough.
    pub publishers: BTreeMap<String, String>,
    /// Replication group for sharding (see `config::shard`), if declared.
    pub group: Option<String>,
}

/// A server a discovering entry (a Redis Sentinel or Cluster node, a
/// Patroni cluster) names: it joins the fleet and is polled like a
/// configured one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Revealed {
    pub host: String,
    pub port: u16,
    /// The group it belongs to, where the entry says (a Sentinel master name).
    pub group: Option<String>,
    /// Its name where the entry gives one (a Patroni member); else `host:port`.
    pub name: Option<String>,
}

/// Configured nodes by address and by name. Built once per config: matching
/// a replica list, a WAL receiver's sender or an `upstream` against the
/// config is then a lookup, not a scan of every node (which made each
/// snapshot quadratic in the number of nodes).
#[derive(Debug, Default, Clone)]
pub struct NodeIndex {
    /// (system, port) → normalized host → nodes, in config order.
    nodes: HashMap<(System, u16), HashMap<String, Vec<usize>>>,
    names: HashMap<String, (usize, System)>,
}

impl NodeIndex {
    /// `nodes`: each node's system, name and `(host, port)` addresses (as
    /// `normalize_host` gives them), in config order.
    pub fn new<'a>(nodes: impl IntoIterator<Item = (System, &'a str, Vec<(String, u16)>)>) -> Self {
        let mut index = NodeIndex::default();
        for (i, (system, name, addresses)) in nodes.into_iter().enumerate() {
            for (host, port) in addresses {
                let at = index.nodes.entry((system, port)).or_default().entry(host).or_default();
                // One node may list an address twice (two spellings of one host).
                if !at.contains(&i) {
                    at.push(i);
                }
            }
            index.names.insert(name.to_string(), (i, system));
        }
        index
    }

    /// The node of `system` named `name` (names are unique across systems).
    pub fn named(&self, system: System, name: &str) -> Option<usize> {
        self.names.get(name).filter(|(_, s)| *s == system).map(|(i, _)| *i)
    }

    /// Nodes of `system` at `host:port` (host as `normalize_host` gives it).
    pub fn nodes_at(&self, system: System, host: &str, port: u16) -> impl Iterator<Item = usize> + '_ {
        self.nodes.get(&(system, port)).and_then(|hosts| hosts.get(host)).into_iter().flatten().copied()
    }
}

/// Loopback spellings compare equal, and host names compare case-insensitively.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    match host.as_str() {
        "localhost" | "127.0.0.1" | "::1" => "127.0.0.1".to_string(),
        _ => host,
    }
}
