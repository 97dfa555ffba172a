//! Sharding: N replag instances, each polling a deterministic share of the
//! configured nodes, all reading the same config file.
//!
//! The unit of sharding is a *replication group*, never a single node: a
//! link's lag needs both ends' positions (a standby's lag is read against
//! its primary's history), so nodes that replicate from each other must be
//! polled by the same instance. Groups are the connected components of the
//! config's `upstream`, `publishers` and `group` keys. A group's shard is a
//! hash of its key (its `group` name, else its first node name) modulo the
//! shard count: it does not depend on the order of the file nor on any other
//! group, so adding a node moves nothing else.

use std::collections::BTreeMap;

use crate::systems::NodeSpec;

/// This instance's share: shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// FNV-1a, 64-bit: stable across builds, platforms and Rust versions (unlike
/// `std`'s hasher), which is the point: every instance must agree.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

fn root(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

fn union(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (root(parent, a), root(parent, b));
    if ra != rb {
        parent[ra.max(rb)] = ra.min(rb);
    }
}

/// The replication group key of every node, in `nodes` order.
pub fn group_keys(nodes: &[NodeSpec]) -> Vec<String> {
    let index: BTreeMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.name.as_str(), i)).collect();
    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    let mut first_of_group: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, node) in nodes.iter().enumerate() {
        let peers = node.upstream.iter().chain(node.publishers.values()).chain(node.target.peers());
        for peer in peers.filter_map(|name| index.get(name.as_str())) {
            union(&mut parent, i, *peer);
        }
        if let Some(group) = &node.group {
            let first = *first_of_group.entry(group.as_str()).or_insert(i);
            union(&mut parent, i, first);
        }
    }
    // A component's key: the smallest group name in it, else its smallest node name.
    let mut keys: BTreeMap<usize, (Option<&str>, &str)> = BTreeMap::new();
    for (i, node) in nodes.iter().enumerate() {
        let entry = keys.entry(root(&mut parent, i)).or_insert((None, node.name.as_str()));
        if let Some(group) = node.group.as_deref() {
            entry.0 = Some(entry.0.map_or(group, |g| g.min(group)));
        }
        entry.1 = entry.1.min(node.name.as_str());
    }
    (0..nodes.len())
        .map(|i| {
            let (group, name) = keys[&root(&mut parent, i)];
            group.unwrap_or(name).to_string()
        })
        .collect()
}

impl Shard {
    /// Which shard a replication group belongs to.
    pub fn of_group(group_key: &str, count: u32) -> u32 {
        (fnv1a(group_key) % u64::from(count.max(1))) as u32
    }

    /// Keep the nodes this shard owns; returns how many groups it owns.
    pub fn select(&self, nodes: Vec<NodeSpec>) -> (Vec<NodeSpec>, usize) {
        let keys = group_keys(&nodes);
        let mut owned_groups = std::collections::BTreeSet::new();
        let owned = nodes
            .into_iter()
            .zip(keys)
            .filter(|(_, key)| Shard::of_group(key, self.count) == self.index)
            .map(|(node, key)| {
                owned_groups.insert(key);
                node
            })
            .collect();
        (owned, owned_groups.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Node, System};
    use crate::systems::redis::RedisTarget;
    use crate::systems::Target;
    use redis::IntoConnectionInfo;

    fn node(name: &str, upstream: Option<&str>, group: Option<&str>) -> NodeSpec {
        NodeSpec {
            node: Node {
                name: name.into(),
                region: "r".into(),
                system: System::Redis,
                upstream: upstream.map(String::from),
                publishers: BTreeMap::new(),
                group: group.map(String::from),
            },
            target: Target::Redis(RedisTarget::server("redis://127.0.0.1:6379".into_connection_info().unwrap())),
        }
    }

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(fnv1a(""), 0xcbf29ce484222325);
        assert_eq!(fnv1a("a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a("foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn upstreams_and_groups_join_nodes() {
        let nodes = vec![
            node("pg-b", Some("pg-a"), None),
            node("pg-a", None, None),
            node("pg-c", Some("pg-b"), None),
            node("redis-2", None, Some("cache")),
            node("redis-1", None, Some("cache")),
            node("lonely", None, None),
        ];
        let keys = group_keys(&nodes);
        assert_eq!(keys, ["pg-a", "pg-a", "pg-a", "cache", "cache", "lonely"]);
    }

    #[test]
    fn every_node_lands_in_exactly_one_shard_and_groups_stay_whole() {
        let mut nodes = Vec::new();
        for g in 0..50 {
            nodes.push(node(&format!("m{g}"), None, None));
            nodes.push(node(&format!("r{g}"), Some(&format!("m{g}")), None));
        }
        let count = 3;
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        for index in 0..count {
            let (owned, _) = Shard { index, count }.select(nodes.clone());
            sizes.push(owned.len());
            for n in &owned {
                // The replica of every owned master is owned too.
                if let Some(up) = &n.upstream {
                    assert!(owned.iter().any(|o| &o.name == up), "{} without its upstream", n.name);
                }
            }
            seen.extend(owned.into_iter().map(|n| n.node.name));
        }
        seen.sort();
        let mut all: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        all.sort();
        assert_eq!(seen, all, "each node exactly once");
        // 50 groups over 3 shards: none empty, none with nearly everything.
        assert!(sizes.iter().all(|s| (10..=60).contains(s)), "{sizes:?}");
    }

    #[test]
    fn a_groups_shard_does_not_depend_on_order_or_other_groups() {
        let a = vec![node("x", None, None), node("y", Some("x"), None)];
        let mut b = vec![node("new", None, None), node("y", Some("x"), None), node("x", None, None)];
        let shard = |nodes: &[NodeSpec], name: &str| {
            let keys = group_keys(nodes);
            let i = nodes.iter().position(|n| n.name == name).unwrap();
            Shard::of_group(&keys[i], 7)
        };
        assert_eq!(shard(&a, "y"), shard(&b, "y"));
        b.reverse();
        assert_eq!(shard(&a, "x"), shard(&b, "x"));
    }
}
