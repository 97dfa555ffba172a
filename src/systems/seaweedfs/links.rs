//! SeaweedFS volume replication health, from the leader master's view.
//!
//! Volume replication is synchronous, so "lag" is divergence: for each data
//! center, a link `kind="volume"` from the cluster (the master node) to the
//! data center, with bytes = how far that data center's copies trail the
//! freshest copy of each volume (summed) and seconds = how long a copy has
//! lacked what another reported (beyond a heartbeat's allowance). Missing copies are counted per collection and replica
//! placement, never one series per volume. A data center that drops out of
//! the topology stays as a down link.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::detail::{
    SeaweedClusterView, SeaweedDataCenterView, SeaweedDetails, SeaweedMasterView, SeaweedVolumeGroupView,
};
use super::fleet::{Fleet, SeaweedLink, SYSTEM};
use super::source::{MasterObservation, SeaweedObservation, VolumeReplica};
use super::sync_links::SyncMemory;
use super::target::SeaweedRole;
use crate::model::{LagView, LinkKind};

/// Data centers remembered per cluster (bounds memory on a hostile topology).
const MAX_DATACENTERS: usize = 256;

/// What the link rules remember between snapshots.
#[derive(Debug, Default)]
pub struct SeaweedMemory {
    datacenters: HashMap<usize, BTreeSet<String>>,
    /// Per master: how its volumes' largest copies grew.
    progress: HashMap<usize, VolumeProgress>,
    pub(super) filer_sync: SyncMemory,
}

/// The fleet as SeaweedFS' rules read it.
pub(super) struct SeaweedInputs<'f, 'a> {
    pub fleet: &'f Fleet<'a>,
}

impl<'a> SeaweedInputs<'_, 'a> {
    /// The masters, in config order.
    fn nodes(&self) -> impl Iterator<Item = usize> + '_ {
        self.fleet.indices().filter(|i| self.fleet.member(*i).is_some_and(|m| m.target.role == SeaweedRole::Master))
    }

    fn fresh(&self, i: usize) -> Option<(&'a MasterObservation, Instant)> {
        match self.fleet.fresh(i)? {
            (SeaweedObservation::Master(m), at) => Some((m, at)),
            _ => None,
        }
    }

    fn region_of(&self, i: usize, datacenter: &str) -> String {
        match self.fleet.member(i) {
            Some(m) => m.target.region_of(datacenter),
            None => datacenter.to_string(),
        }
    }
}

/// How long a copy may trail another copy of its volume in the master's
/// view before it counts as behind. Volume servers report their volumes'
/// sizes in heartbeats every 5 s (`-pulseSeconds`), each on its own phase,
/// so under writes one copy's report is routinely a heartbeat older than
/// another's although replication is synchronous: two heartbeats cover that
/// (and one across a WAN).
pub const REPORT_ALLOWANCE: Duration = Duration::from_secs(10);

/// Steps remembered per volume (bounds memory under continuous writes).
const MAX_STEPS: usize = 64;

/// Per volume: when replag first saw its largest copy reach each size, on
/// replag's clock; only sizes some copy still lacks are kept.
pub type VolumeProgress = HashMap<u32, VecDeque<(Instant, u64)>>;

/// Per data center: (bytes its copies trail the freshest copy of each
/// volume, summed; the longest time one of them has trailed it). A copy
/// counts as behind once it has lacked a size another copy reported for
/// longer than `REPORT_ALLOWANCE`; until then it is in sync (the master's
/// view of it is a heartbeat older). Seconds are measured on replag's clock
/// from when a copy was first seen larger — not from the copies'
/// modification times, which come from different servers' clocks (and are 0
/// for some replicas on real masters).
pub fn divergence(
    replicas: &[VolumeReplica],
    progress: &mut VolumeProgress,
    at: Instant,
) -> BTreeMap<String, (u64, f64)> {
    let mut by_volume: BTreeMap<u32, Vec<&VolumeReplica>> = BTreeMap::new();
    for r in replicas {
        by_volume.entry(r.id).or_default().push(r);
    }
    progress.retain(|id, _| by_volume.contains_key(id));
    let mut out: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for (id, copies) in &by_volume {
        let max_size = copies.iter().map(|r| r.size).max().unwrap_or(0);
        let min_size = copies.iter().map(|r| r.size).min().unwrap_or(0);
        let steps = progress.entry(*id).or_default();
        if steps.back().is_none_or(|(_, size)| *size < max_size) {
            steps.push_back((at, max_size));
        }
        // Sizes every copy has no longer matter.
        while steps.front().is_some_and(|(_, size)| *size <= min_size) {
            steps.pop_front();
        }
        while steps.len() > MAX_STEPS {
            steps.pop_front();
        }
        // The most-behind copy of the volume in each data center.
        let mut per_dc: BTreeMap<&str, &VolumeReplica> = BTreeMap::new();
        for r in copies {
            let e = per_dc.entry(&r.datacenter).or_insert(r);
            if r.size < e.size {
                *e = r;
            }
        }
        for (dc, copy) in per_dc {
            let e = out.entry(dc.to_string()).or_insert((0, 0.0));
            // Since when some copy has had more than this one.
            let Some((since, _)) = steps.iter().find(|(_, size)| *size > copy.size) else { continue };
            let behind_for = at.saturating_duration_since(*since);
            if behind_for > REPORT_ALLOWANCE {
                e.0 += max_size - copy.size;
                e.1 = e.1.max(behind_for.as_secs_f64());
            }
        }
    }
    out
}

/// Volumes, under-replicated volumes and volumes missing a copy in another
/// data center, per (collection, placement code).
pub fn replication_health(replicas: &[VolumeReplica]) -> BTreeMap<(String, String), (u64, u64, u64)> {
    let mut by_volume: BTreeMap<u32, Vec<&VolumeReplica>> = BTreeMap::new();
    for r in replicas {
        by_volume.entry(r.id).or_default().push(r);
    }
    let mut out: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
    for copies in by_volume.values() {
        let placement = copies.iter().map(|r| r.placement).max_by_key(|p| p.copies()).unwrap_or_default();
        let servers: BTreeSet<&str> = copies.iter().map(|r| r.server.as_str()).collect();
        let datacenters: BTreeSet<&str> = copies.iter().map(|r| r.datacenter.as_str()).collect();
        let e = out.entry((copies[0].collection.clone(), placement.code())).or_insert((0, 0, 0));
        e.0 += 1;
        if servers.len() < placement.copies() {
            e.1 += 1;
        }
        if datacenters.len() < usize::from(placement.other_datacenters) + 1 {
            e.2 += 1;
        }
    }
    out
}

pub(super) fn derive(
    mem: &mut SeaweedMemory,
    inputs: &SeaweedInputs<'_, '_>,
    now: Instant,
) -> (Vec<SeaweedLink>, SeaweedDetails) {
    let mut links = Vec::new();
    let mut details = SeaweedDetails::default();
    for m in inputs.nodes() {
        let spec = &inputs.fleet.nodes[m];
        let Some((obs, at)) = inputs.fresh(m) else {
            // Master unreachable: the data centers it showed are unknown now.
            for dc in mem.datacenters.get(&m).into_iter().flatten() {
                let mut link = dc_link(inputs, m, dc);
                link.state = "unknown".into();
                link.reason = Some(format!("master {} unreachable", spec.name));
                links.push(link);
            }
            continue;
        };
        details.masters.push(SeaweedMasterView {
            node: spec.name.clone(),
            region: spec.region.clone(),
            is_leader: obs.is_leader,
            leader_known: obs.leader.is_some(),
            peers: obs.peers,
        });
        let Some(topology) = &obs.topology else { continue };
        let known = mem.datacenters.entry(m).or_default();
        for dc in &topology.datacenters {
            if known.len() < MAX_DATACENTERS {
                known.insert(dc.id.clone());
            }
        }
        let diverged = divergence(&topology.replicas, mem.progress.entry(m).or_default(), at);
        for dc_id in known.iter() {
            let mut link = dc_link(inputs, m, dc_id);
            let present = topology.datacenters.iter().find(|d| &d.id == dc_id && d.data_nodes > 0);
            link.data_age_seconds = Some(now.saturating_duration_since(at).as_secs_f64());
            match present {
                Some(_) => {
                    let (bytes, seconds) = diverged.get(dc_id).copied().unwrap_or((0, 0.0));
                    link.up = true;
                    link.state = if bytes == 0 { "in sync".into() } else { "diverged".into() };
                    link.lag = Some(LagView { bytes, seconds, lower_bound: false, resolution_seconds: None });
                }
                None => {
                    link.state = "no volume servers".into();
                    link.reason = Some(format!("data center {dc_id} has no volume servers in the master's topology"));
                }
            }
            links.push(link);
        }
        details.clusters.push(SeaweedClusterView {
            node: spec.name.clone(),
            region: spec.region.clone(),
            datacenters: topology
                .datacenters
                .iter()
                .map(|d| SeaweedDataCenterView {
                    datacenter: d.id.clone(),
                    data_nodes: d.data_nodes,
                    volumes: d.volumes,
                    free_slots: d.max_volumes.saturating_sub(d.volumes),
                })
                .collect(),
            volume_groups: replication_health(&topology.replicas)
                .into_iter()
                .map(|((collection, replication), (volumes, under, missing_dc))| {
                    let writable = topology
                        .layouts
                        .iter()
                        .filter(|l| l.collection == collection && l.replication == replication)
                        .map(|l| l.writables)
                        .sum();
                    SeaweedVolumeGroupView {
                        collection,
                        replication,
                        volumes,
                        under_replicated: under,
                        missing_datacenter: missing_dc,
                        writable,
                    }
                })
                .collect(),
        });
    }
    (links, details)
}

fn dc_link(inputs: &SeaweedInputs<'_, '_>, m: usize, datacenter: &str) -> SeaweedLink {
    let spec = &inputs.fleet.nodes[m];
    SeaweedLink::new(
        SYSTEM,
        LinkKind::Volume,
        (spec.name.clone(), spec.region.clone()),
        (datacenter.to_string(), inputs.region_of(m, datacenter)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systems::seaweedfs::source::Placement;

    fn replica(id: u32, dc: &str, server: &str, size: u64, modified: i64) -> VolumeReplica {
        VolumeReplica {
            id,
            collection: String::new(),
            placement: Placement { other_datacenters: 1, other_racks: 0, same_rack: 0 },
            datacenter: dc.into(),
            rack: "r1".into(),
            server: server.into(),
            size,
            file_count: 0,
            modified_at: modified,
            read_only: false,
        }
    }

    #[test]
    fn a_copy_one_heartbeat_behind_is_in_sync_one_that_stays_behind_is_not() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut progress = VolumeProgress::new();
        // Volume 1 grows on "a" first; "b" reports it a heartbeat later.
        let d = divergence(&[replica(1, "us", "a", 100, 50), replica(1, "eu", "b", 80, 45)], &mut progress, at(0));
        assert_eq!(d["eu"], (0, 0.0), "one report behind: in sync");
        let d = divergence(&[replica(1, "us", "a", 120, 55), replica(1, "eu", "b", 100, 50)], &mut progress, at(5));
        assert_eq!(d["eu"], (0, 0.0), "caught up with the last report, behind the newest: in sync");
        // Volume 2 on "b" stops growing at 10 while "a" has 20, and stays so.
        let stuck = [replica(2, "us", "a", 20, 60), replica(2, "eu", "b", 10, 0)];
        divergence(&stuck, &mut progress, at(5));
        let d = divergence(&stuck, &mut progress, at(15));
        assert_eq!(d["eu"], (0, 0.0), "10 s: still within the allowance");
        let d = divergence(&stuck, &mut progress, at(16));
        assert_eq!(d["eu"], (10, 11.0), "behind for 11 s, timed on replag's clock, not modified times");
        assert_eq!(d["us"], (0, 0.0));
        // It catches up: in sync, and the volume's steps are dropped.
        let d = divergence(&[replica(2, "us", "a", 20, 60), replica(2, "eu", "b", 20, 0)], &mut progress, at(17));
        assert_eq!(d["eu"], (0, 0.0));
        assert!(progress[&2].is_empty());
        // Volumes gone from the topology are forgotten.
        divergence(&[], &mut progress, at(18));
        assert!(progress.is_empty());
    }

    #[test]
    fn equal_copies_are_in_sync_whatever_their_timestamps() {
        // Seen on a real master: a replica with ModifiedAtSecond 0.
        let t0 = Instant::now();
        let mut progress = VolumeProgress::new();
        let r = [
            replica(1, "us", "a", 8, 1795304231),
            replica(1, "eu", "b", 8, 0),
            replica(2, "eu", "b", 4, 0),
            replica(2, "us", "a", 8, 50),
        ];
        divergence(&r, &mut progress, t0);
        let d = divergence(&r, &mut progress, t0 + Duration::from_secs(11));
        assert_eq!(d["eu"], (4, 11.0), "behind by 4 bytes for 11 s, whatever the timestamps say");
        assert_eq!(d["us"], (0, 0.0));
    }

    #[test]
    fn counts_missing_copies_and_missing_datacenters() {
        let r = [
            replica(1, "us", "a", 1, 1),
            replica(1, "eu", "b", 1, 1),
            replica(2, "us", "a", 1, 1),
            replica(3, "us", "a", 1, 1),
            replica(3, "us", "c", 1, 1),
        ];
        // 3 volumes of placement 100; volume 2 has one copy; volume 3 has two copies but in one DC.
        assert_eq!(replication_health(&r)[&(String::new(), "100".to_string())], (3, 1, 2));
    }
}
