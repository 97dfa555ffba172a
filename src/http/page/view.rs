//! What the status page shows, decided before any HTML: each link's health
//! against the threshold that matters for it, for how long, and the fleet
//! grouped by region. Pure logic over a snapshot, the gates' memory and the
//! config in force.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use crate::gate::breach::BreachStart;
use crate::gate::recent::Bucket;
use crate::gate::{evaluate, LinkTrack, Tracked, Verdict};
use crate::http::in_force::InForce;
use crate::model::{NodeView, SILENT};
use crate::systems::Link;

/// Lag above which a link counts as lagging when no configured gate covers
/// it: `ReplicationLagHigh`'s threshold.
pub const DEFAULT_THRESHOLD: Duration = Duration::from_secs(30);

/// A link's health, in words, symbols and classes — colour is never the
/// only signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    Healthy,
    /// No lag measured yet.
    NoData,
    Lagging,
    Down,
    Silent,
}

impl Health {
    pub fn class(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::NoData => "nodata",
            Health::Lagging => "lagging",
            Health::Down => "down",
            Health::Silent => "silent",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::NoData => "no data",
            Health::Lagging => "lagging",
            Health::Down => "down",
            Health::Silent => "silent",
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Health::Healthy => "✓",
            Health::NoData => "?",
            Health::Lagging => "▲",
            Health::Down | Health::Silent => "✕",
        }
    }
}

/// For how long a link has been in its state, as far as replag knows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Since {
    pub seconds: f64,
    /// Longer than replag remembers: at least this long.
    pub at_least: bool,
}

#[derive(Debug)]
pub struct LinkRow<'a> {
    pub link: &'a Link,
    pub health: Health,
    /// The lag limit it is judged against (seconds) and where it comes from.
    pub threshold: f64,
    pub threshold_from: String,
    pub since: Option<Since>,
    pub buckets: Vec<Bucket>,
}

/// A Redis Sentinel group or Cluster shard, as the page shows it.
#[derive(Debug)]
pub struct GroupRow<'a> {
    pub group: &'a crate::systems::redis::RedisGroupView,
    pub health: Health,
    /// What is wrong, in words (empty when healthy).
    pub problems: Vec<String>,
}

/// Judge a group: no healthy replica is down; a stale view, a lost quorum, a
/// master seen down or a failover running is lagging (needs eyes).
fn group_row(group: &crate::systems::redis::RedisGroupView) -> GroupRow<'_> {
    let mut problems = Vec::new();
    let mut health = Health::Healthy;
    if group.healthy_replicas == 0 {
        problems.push("no healthy replica".to_string());
        health = Health::Down;
    }
    let mut flag = |on: bool, text: &str| {
        if on {
            problems.push(text.to_string());
            health = health.max(Health::Lagging);
        }
    };
    flag(group.stale, "topology stale (no Sentinel or cluster node answers)");
    flag(group.quorum_ok == Some(false), "Sentinel quorum lost");
    flag(group.odown == Some(true), "master objectively down");
    flag(group.sdown == Some(true) && group.odown != Some(true), "master subjectively down");
    flag(group.failover_in_progress == Some(true), "failover in progress");
    GroupRow { group, health, problems }
}

#[derive(Debug)]
pub struct Region<'a> {
    pub name: &'a str,
    pub nodes: Vec<&'a NodeView>,
    /// Links into this region (by replica region).
    pub links: Vec<LinkRow<'a>>,
}

#[derive(Debug)]
pub struct PageView<'a> {
    pub generated_at: SystemTime,
    pub data_age_seconds: f64,
    pub regions: Vec<Region<'a>>,
    pub gates: Vec<Verdict>,
    /// Redis Sentinel groups and Cluster shards, worst first.
    pub redis_groups: Vec<GroupRow<'a>>,
    pub redis_clusters: &'a [crate::systems::redis::RedisClusterState],
    /// Primaries lost, what is at risk, split brains, and the events.
    pub failover: &'a crate::failover::FailoverView,
    pub now: Instant,
    pub wall: SystemTime,
}

impl PageView<'_> {
    pub fn links(&self) -> impl Iterator<Item = &LinkRow<'_>> {
        self.regions.iter().flat_map(|r| &r.links)
    }

    pub fn count(&self, health: Health) -> usize {
        self.links().filter(|l| l.health == health).count()
    }

    pub fn nodes_down(&self) -> usize {
        self.regions.iter().flat_map(|r| &r.nodes).filter(|n| !n.up).count()
    }
}

/// The smallest `max_lag` of the configured gates whose scope covers the
/// link, else the default.
fn threshold(in_force: &InForce, link: &Link) -> (f64, String) {
    in_force
        .named
        .iter()
        .filter(|(_, g)| g.scope.matches(&link.id, link.group.as_deref(), link.shard.as_deref()))
        .filter_map(|(name, g)| Some((g.max_lag?.as_secs_f64(), format!("gate {name}"))))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or((DEFAULT_THRESHOLD.as_secs_f64(), "default (ReplicationLagHigh)".to_string()))
}

fn health(link: &Link, threshold: f64) -> Health {
    if !link.up {
        return if link.state == SILENT { Health::Silent } else { Health::Down };
    }
    match link.gate_lag() {
        None => Health::NoData,
        Some(lag) if lag.seconds > threshold => Health::Lagging,
        Some(_) => Health::Healthy,
    }
}

fn since(link: &Link, health: Health, threshold: f64, track: Option<&LinkTrack>, now: Instant) -> Option<Since> {
    let ago = |at: Instant| now.saturating_duration_since(at).as_secs_f64();
    match health {
        Health::Down | Health::Silent => link.down_seconds.map(|seconds| Since { seconds, at_least: false }),
        Health::Lagging => match track?.seconds.above_since(threshold)? {
            BreachStart::At(at) => Some(Since { seconds: ago(at), at_least: false }),
            BreachStart::BeforeHistory(at) => Some(Since { seconds: ago(at), at_least: true }),
        },
        Health::Healthy => {
            let recent = &track?.recent;
            let start = recent.window(now).next()?.start;
            let ok = |b: &Bucket| !b.down && b.max_lag_seconds.is_some_and(|l| l <= threshold);
            let at = recent.healthy_since(now, ok)?;
            Some(Since { seconds: ago(at), at_least: at == start })
        }
        Health::NoData => None,
    }
}

/// The page's view of one snapshot.
pub fn build<'a>(tracked: &'a Tracked, in_force: &InForce, now: Instant, wall: SystemTime) -> PageView<'a> {
    let snapshot = &tracked.snapshot;
    let mut regions: BTreeMap<&str, Region<'a>> = BTreeMap::new();
    let empty = |name: &'a str| Region { name, nodes: Vec::new(), links: Vec::new() };
    for node in &snapshot.nodes {
        regions.entry(&node.region).or_insert_with(|| empty(&node.region)).nodes.push(node);
    }
    for (i, link) in snapshot.links.iter().enumerate() {
        let (limit, from) = threshold(in_force, link);
        let health = health(link, limit);
        let track = tracked.tracks.of(i);
        let row = LinkRow {
            link,
            health,
            threshold: limit,
            threshold_from: from,
            since: since(link, health, limit, track, now),
            buckets: track.map(|t| t.recent.window(now).copied().collect()).unwrap_or_default(),
        };
        let name = link.id.replica_region.as_str();
        regions.entry(name).or_insert_with(|| empty(name)).links.push(row);
    }
    for r in regions.values_mut() {
        // Worst first, then by name: what needs eyes is on top.
        r.links.sort_by(|a, b| b.health.cmp(&a.health).then_with(|| a.link.id.cmp(&b.link.id)));
        r.nodes.sort_by(|a, b| a.up.cmp(&b.up).then_with(|| (a.system, &a.name).cmp(&(b.system, &b.name))));
    }
    let gates = in_force.named.values().map(|spec| evaluate(spec, snapshot, &tracked.tracks, now, wall)).collect();
    let mut redis_groups: Vec<GroupRow<'a>> = snapshot.details.redis.groups.iter().map(group_row).collect();
    redis_groups.sort_by(|a, b| {
        b.health.cmp(&a.health).then_with(|| (&a.group.group, &a.group.shard).cmp(&(&b.group.group, &b.group.shard)))
    });
    PageView {
        redis_groups,
        redis_clusters: &snapshot.details.redis.clusters,
        failover: &snapshot.failover,
        generated_at: snapshot.generated_at,
        data_age_seconds: wall.duration_since(snapshot.generated_at).unwrap_or_default().as_secs_f64(),
        regions: regions.into_values().collect(),
        gates,
        now,
        wall,
    }
}

/// "850 ms", "5.2 s", "2 m 10 s", "3 h 5 m", "2 d 4 h".
pub fn duration_text(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".into();
    }
    let whole = seconds as u64;
    match whole {
        0 if seconds < 0.001 => "0 s".into(),
        0 => format!("{:.0} ms", seconds * 1000.0),
        1..=9 => format!("{seconds:.1} s"),
        10..=59 => format!("{whole} s"),
        60..=3599 => format!("{} m {} s", whole / 60, whole % 60),
        3600..=86_399 => format!("{} h {} m", whole / 3600, whole % 3600 / 60),
        _ => format!("{} d {} h", whole / 86_400, whole % 86_400 / 3600),
    }
}

/// "0 B", "512 B", "1.5 KiB", "3.2 GiB".
pub fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_bytes_read_like_a_person_writes_them() {
        assert_eq!(duration_text(0.0), "0 s");
        assert_eq!(duration_text(0.25), "250 ms");
        assert_eq!(duration_text(5.24), "5.2 s");
        assert_eq!(duration_text(42.9), "42 s");
        assert_eq!(duration_text(130.0), "2 m 10 s");
        assert_eq!(duration_text(3.0 * 3600.0 + 300.0), "3 h 5 m");
        assert_eq!(duration_text(2.0 * 86_400.0 + 4.0 * 3600.0), "2 d 4 h");
        assert_eq!(duration_text(f64::NAN), "?");
        assert_eq!(bytes_text(0), "0 B");
        assert_eq!(bytes_text(512), "512 B");
        assert_eq!(bytes_text(1536), "1.5 KiB");
        assert_eq!(bytes_text(3 << 30), "3.0 GiB");
    }

    #[test]
    fn worst_health_sorts_last_so_it_comes_first() {
        let mut all = vec![Health::Healthy, Health::Silent, Health::Lagging, Health::NoData, Health::Down];
        all.sort_by(|a, b| b.cmp(a));
        assert_eq!(all, vec![Health::Silent, Health::Down, Health::Lagging, Health::NoData, Health::Healthy]);
    }
}
