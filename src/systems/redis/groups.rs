//! Sentinel groups and Cluster shards: who is master of each now (as the
//! newest reachable view says), how many of its replicas are healthy (by
//! replag's own links, not the topology's slower failure detection), how
//! many failovers replag has seen, and each link's group and shard.
//!
//! Links themselves follow failovers from the servers' INFO, not from
//! here: a promoted replica says so on its next poll, whatever Sentinel
//! says or when.

use std::collections::{BTreeMap, HashMap};

use super::cluster::ClusterView;
use super::detail::{RedisClusterState, RedisGroupView};
use super::fleet::{RedisLink, TopologyFleet, SYSTEM};
use super::sentinel::SentinelMaster;
use super::topology::RedisTopology;
use crate::model::{normalize_host, UNKNOWN_REGION};

/// What the group rules remember between snapshots.
#[derive(Debug, Default)]
pub struct GroupMemory {
    /// (group, shard) → the master's address last seen, and failovers seen.
    masters: HashMap<(String, Option<String>), (String, u64)>,
}

/// Every Sentinel group and Cluster shard, and each Redis link's group.
pub fn derive(
    memory: &mut GroupMemory,
    topology: &TopologyFleet<'_>,
    links: &mut [RedisLink],
) -> (Vec<RedisGroupView>, Vec<RedisClusterState>) {
    let mut sentinels: BTreeMap<&str, Vec<(&SentinelMaster, bool)>> = BTreeMap::new();
    let mut clusters: BTreeMap<String, Vec<(&ClusterView, bool)>> = BTreeMap::new();
    for i in topology.indices() {
        let Some((view, _)) = topology.last_ok(i) else { continue };
        let fresh = topology.fresh(i).is_some();
        match view {
            RedisTopology::Sentinel(s) => {
                for m in &s.masters {
                    sentinels.entry(&m.name).or_default().push((m, fresh));
                }
            }
            RedisTopology::Cluster(c) => {
                let node = &topology.nodes[i];
                let name = node.group.clone().unwrap_or_else(|| node.name.clone());
                clusters.entry(name).or_default().push((c, fresh));
            }
        }
    }
    let name_of = |host: &str, port: u16| -> (String, String) {
        match topology.index.nodes_at(SYSTEM, &normalize_host(host), port).next() {
            Some(n) => (topology.nodes[n].name.clone(), topology.nodes[n].region.clone()),
            None => (format!("{host}:{port}"), UNKNOWN_REGION.to_string()),
        }
    };
    // Each source's links that are up: its healthy replicas (counted once,
    // not per group: a large cluster has as many groups as links).
    let mut up_from: HashMap<String, usize> = HashMap::new();
    for l in links.iter().filter(|l| l.up) {
        *up_from.entry(l.id.source.clone()).or_default() += 1;
    }
    let mut groups = Vec::new();
    // Which group (and shard) each node belongs to, by name.
    let mut belongs: HashMap<String, (String, Option<String>)> = HashMap::new();

    for (name, views) in &sentinels {
        let fresh: Vec<&SentinelMaster> = views.iter().filter(|(_, f)| *f).map(|(m, _)| *m).collect();
        let stale = fresh.is_empty();
        let candidates: Vec<&SentinelMaster> =
            if stale { views.iter().map(|(m, _)| *m).collect() } else { fresh.clone() };
        // The newest view: the highest config epoch (bumped by each failover).
        // The leader of a failover bumps it before it switches the address,
        // so at one epoch a Sentinel not failing over wins, then the address
        // most Sentinels give.
        let agreeing = |m: &SentinelMaster| candidates.iter().filter(|o| (&o.ip, o.port) == (&m.ip, m.port)).count();
        let Some(newest) = candidates
            .iter()
            .max_by_key(|m| (m.config_epoch, !m.has_flag("failover_in_progress"), agreeing(m)))
            .copied()
        else {
            continue;
        };
        let (master, region) = name_of(&newest.ip, newest.port);
        belongs.insert(master.clone(), (name.to_string(), None));
        for r in &newest.replicas {
            belongs.insert(name_of(&r.ip, r.port).0, (name.to_string(), None));
        }
        let failovers = memory.note_master(name, None, &format!("{}:{}", newest.ip, newest.port));
        let any = |flag: &str| (!stale).then(|| fresh.iter().any(|m| m.has_flag(flag)));
        groups.push(RedisGroupView {
            kind: "sentinel",
            group: name.to_string(),
            shard: None,
            healthy_replicas: up_from.get(master.as_str()).copied().unwrap_or(0),
            master: Some(master),
            master_region: Some(region),
            replicas: newest.replicas.len(),
            failovers_total: failovers,
            stale,
            quorum: Some(newest.quorum),
            quorum_ok: (!stale).then(|| fresh.iter().any(|m| m.quorum_ok)),
            sentinels_reachable: Some(fresh.len()),
            sdown: any("s_down"),
            odown: any("o_down"),
            failover_in_progress: any("failover_in_progress"),
        });
    }

    let mut states = Vec::new();
    for (name, views) in &clusters {
        let stale = views.iter().all(|(_, f)| !*f);
        let Some((newest, _)) = views.iter().filter(|(_, f)| *f || stale).max_by_key(|(c, _)| c.current_epoch) else {
            continue;
        };
        states.push(RedisClusterState {
            group: name.clone(),
            state_ok: newest.state_ok,
            slots_assigned: newest.slots_assigned,
            slots_ok: newest.slots_ok,
            slots_pfail: newest.slots_pfail,
            slots_fail: newest.slots_fail,
            stale,
        });
        // A master without slots (a failed-over old master, an empty new node) is no shard.
        for m in newest.nodes.iter().filter(|n| n.is_master && n.reachable_address && !n.slots.is_empty()) {
            let shard = newest.shard_of_master(m);
            let (master, region) = name_of(&m.ip, m.port);
            let replicas: Vec<_> =
                newest.nodes.iter().filter(|n| n.master_id.as_deref() == Some(m.id.as_str())).collect();
            belongs.insert(master.clone(), (name.clone(), Some(shard.clone())));
            for r in &replicas {
                belongs.insert(name_of(&r.ip, r.port).0, (name.clone(), Some(shard.clone())));
            }
            let failovers = memory.note_master(name, Some(&shard), &m.id);
            groups.push(RedisGroupView {
                kind: "cluster",
                group: name.clone(),
                healthy_replicas: up_from.get(master.as_str()).copied().unwrap_or(0),
                shard: Some(shard),
                master: Some(master),
                master_region: Some(region),
                replicas: replicas.len(),
                failovers_total: failovers,
                stale,
                quorum: None,
                quorum_ok: None,
                sentinels_reachable: None,
                sdown: None,
                odown: None,
                failover_in_progress: None,
            });
        }
    }

    for link in links.iter_mut() {
        let found = belongs.get(&link.id.replica).or_else(|| belongs.get(&link.id.source));
        if let Some((group, shard)) = found {
            link.group = Some(group.clone());
            link.shard = shard.clone();
        }
    }
    (groups, states)
}

impl GroupMemory {
    /// Record the master of a group (or shard) now; returns the failovers
    /// seen so far, counting this one if it is a change.
    fn note_master(&mut self, group: &str, shard: Option<&str>, master: &str) -> u64 {
        let key = (group.to_string(), shard.map(str::to_string));
        let entry = self.masters.entry(key).or_insert_with(|| (master.to_string(), 0));
        if entry.0 != master {
            entry.0 = master.to_string();
            entry.1 += 1;
        }
        entry.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_change_is_one_failover() {
        let mut memory = GroupMemory::default();
        assert_eq!(memory.note_master("orders", None, "10.0.0.1:6379"), 0);
        assert_eq!(memory.note_master("orders", None, "10.0.0.1:6379"), 0);
        assert_eq!(memory.note_master("orders", None, "10.0.0.2:6379"), 1);
        assert_eq!(memory.note_master("orders", None, "10.0.0.2:6379"), 1);
        assert_eq!(memory.note_master("orders", Some("0-5460"), "abc"), 0, "shards are counted apart");
    }
}
