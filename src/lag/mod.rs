//! The lag engine: takes poll reports, keeps each source's position history,
//! derives replication links with lag in bytes and seconds, and produces
//! snapshots. Per-system link rules live in one file per system.

pub mod breach;
pub mod history;
mod postgres;
mod postgres_logical;
mod redis;
mod seaweedfs;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

pub use history::{Lag, PositionHistory, Pushed};

use crate::poller::NodeReport;
use crate::snapshot::{LagView, LinkTrack, LinkView, NodeView, Snapshot};
use crate::sources::{FailureKind, Observation, PollFailure, Sampled};
use crate::topology::{NodeIndex, NodeSpec, System};

/// A history no source has extended for this long is dropped.
const HISTORY_IDLE_DROP: Duration = Duration::from_secs(3600);
/// A discovered (unconfigured) replica that disappears stays visible as a
/// down link this long, so it does not just vanish.
const DISCOVERED_RETENTION: Duration = Duration::from_secs(3600);
/// At most this many discovered links are remembered per system (a flapping
/// or hostile topology cannot grow memory without bound).
const DISCOVERED_MAX: usize = 1000;

/// Where a replica replicates from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Upstream {
    Node(usize),
    /// A server no config names: `host:port`.
    Address(String),
}

/// `(name, region)` labels for an upstream.
fn label(specs: &[NodeSpec], upstream: &Upstream) -> (String, String) {
    match upstream {
        Upstream::Node(u) => (specs[*u].name.clone(), specs[*u].region.clone()),
        Upstream::Address(address) => (address.clone(), crate::snapshot::UNKNOWN_REGION.to_string()),
    }
}

/// Replicas found by discovery (named by the upstream's report), remembered
/// so that one that disappears shows as a down link for a while.
#[derive(Debug, Default)]
struct DiscoveredLinks {
    last_seen: HashMap<(usize, String), Instant>,
}

impl DiscoveredLinks {
    fn saw(&mut self, upstream: usize, name: &str, now: Instant) {
        let key = (upstream, name.to_string());
        if self.last_seen.len() < DISCOVERED_MAX || self.last_seen.contains_key(&key) {
            self.last_seen.insert(key, now);
        }
    }

    /// A configured replica claimed this one: it is not a lost discovery.
    fn forget(&mut self, upstream: usize, name: &str) {
        self.last_seen.remove(&(upstream, name.to_string()));
    }

    /// Down links for remembered discoveries not in `current` (after
    /// forgetting expired ones); `why(upstream, link)` says why each is gone.
    fn vanished_links(
        &mut self,
        current: &HashSet<(usize, String)>,
        now: Instant,
        specs: &[NodeSpec],
        (system, kind): (System, crate::snapshot::LinkKind),
        why: impl Fn(usize, &LinkView) -> String,
    ) -> Vec<LinkView> {
        self.last_seen.retain(|_, seen| now.saturating_duration_since(*seen) < DISCOVERED_RETENTION);
        let mut gone: Vec<_> = self
            .last_seen
            .iter()
            .filter(|(key, _)| !current.contains(*key))
            .map(|((u, name), seen)| (*u, name.clone(), *seen))
            .collect();
        gone.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        gone.into_iter()
            .map(|(u, name, last_seen)| {
                let replica = (name, crate::snapshot::UNKNOWN_REGION.to_string());
                let mut link = LinkView::new(system, kind, label(specs, &Upstream::Node(u)), replica);
                link.state = "down".into();
                link.reason = Some(why(u, &link));
                link.data_age_seconds = Some(now.saturating_duration_since(last_seen).as_secs_f64());
                link
            })
            .collect()
    }

    /// `base`, or `base@addr`, or `base#n`: unique among `taken` on that upstream.
    fn unique_name(taken: &HashSet<(usize, String)>, upstream: usize, base: &str, addr: Option<&str>) -> String {
        let mut name = base.to_string();
        if taken.contains(&(upstream, name.clone())) {
            name = format!("{base}@{}", addr.unwrap_or("local"));
        }
        let mut n = 2;
        while taken.contains(&(upstream, name.clone())) {
            name = format!("{base}#{n}");
            n += 1;
        }
        name
    }
}

/// One source position stream. A new epoch (PostgreSQL timeline) is a new
/// stream: positions that are not progress never mix with the old ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub system: System,
    pub id: String,
    pub epoch: u64,
}

/// What the engine knows of one node.
#[derive(Debug, Default)]
pub struct NodeState {
    pub last_report: Option<ReportMeta>,
    /// The last successful poll, kept while the node is down.
    pub last_ok: Option<(Sampled, SystemTime)>,
    pub failure: Option<PollFailure>,
    pub polls_total: u64,
    pub failures_total: [u64; 5],
}

#[derive(Debug, Clone, Copy)]
pub struct ReportMeta {
    pub finished: Instant,
    pub duration: Duration,
}

impl NodeState {
    /// The last poll succeeded.
    pub fn is_up(&self) -> bool {
        self.last_report.is_some() && self.failure.is_none()
    }

    /// The last observation, only if the last poll succeeded.
    pub fn fresh(&self) -> Option<&Sampled> {
        self.last_ok.as_ref().filter(|_| self.is_up()).map(|(s, _)| s)
    }
}

pub struct Engine {
    specs: Vec<NodeSpec>,
    index: NodeIndex,
    states: Vec<NodeState>,
    histories: HashMap<StreamKey, PositionHistory>,
    pg: postgres::PgMemory,
    redis: redis::RedisMemory,
    seaweed: seaweedfs::SeaweedMemory,
    /// When each link was first seen down in its current outage.
    down_since: HashMap<(System, String, String), Instant>,
    /// Each link's lag over time, for gates.
    tracks: HashMap<String, Arc<LinkTrack>>,
    started_at: SystemTime,
}

impl Engine {
    pub fn new(specs: Vec<NodeSpec>, started_at: SystemTime) -> Self {
        let states = specs.iter().map(|_| NodeState::default()).collect();
        Self {
            index: NodeIndex::new(&specs),
            specs,
            states,
            histories: HashMap::new(),
            pg: postgres::PgMemory::default(),
            redis: redis::RedisMemory::default(),
            seaweed: seaweedfs::SeaweedMemory::default(),
            down_since: HashMap::new(),
            tracks: HashMap::new(),
            started_at,
        }
    }

    pub fn specs(&self) -> &[NodeSpec] {
        &self.specs
    }

    pub fn ingest(&mut self, report: NodeReport) {
        let Some(state) = self.states.get_mut(report.node) else { return };
        state.polls_total += 1;
        state.last_report = Some(ReportMeta { finished: report.finished, duration: report.duration });
        match report.result {
            Ok(sampled) => {
                state.failure = None;
                if let Some((key, position)) = source_position(&sampled.observation) {
                    let history = self.histories.entry(key.clone()).or_default();
                    if history.push(sampled.at, position) == Pushed::Reset {
                        tracing::warn!(node = %self.specs[report.node].name, stream = ?key,
                            "source position went backwards; lag history restarted");
                    }
                }
                state.last_ok = Some((sampled, report.finished_wall));
            }
            Err(failure) => {
                let slot = FailureKind::ALL.iter().position(|k| *k == failure.kind).unwrap_or(0);
                state.failures_total[slot] += 1;
                state.failure = Some(failure);
            }
        }
    }

    pub fn snapshot(&mut self, now: Instant, wall: SystemTime) -> Snapshot {
        self.histories
            .retain(|_, h| h.latest().is_some_and(|s| now.saturating_duration_since(s.at) < HISTORY_IDLE_DROP));
        let nodes = self.specs.iter().zip(&self.states).map(|(spec, state)| node_view(spec, state)).collect();
        // Until every node has reported once, a replica's upstream may report
        // it before the replica itself does: no discovery yet.
        let discovery = self.states.iter().all(|s| s.last_report.is_some());
        let pg_inputs = postgres::PgInputs::new(&self.specs, &self.states, &self.histories, &self.index, discovery);
        let (mut links, pg_details) = postgres::derive(&mut self.pg, &pg_inputs, now);
        let redis_inputs = redis::RedisInputs {
            specs: &self.specs,
            states: &self.states,
            histories: &self.histories,
            index: &self.index,
            discovery,
        };
        let (redis_links, redis_details) = redis::derive(&mut self.redis, &redis_inputs, now);
        links.extend(redis_links);
        let seaweed_inputs = seaweedfs::SeaweedInputs { specs: &self.specs, states: &self.states };
        let (seaweed_links, seaweed_details) = seaweedfs::derive(&mut self.seaweed, &seaweed_inputs, now);
        links.extend(seaweed_links);
        links.sort_by(|a, b| (a.system, &a.source, &a.replica).cmp(&(b.system, &b.source, &b.replica)));
        self.track_outages(&mut links, now);
        self.track_lag(&mut links, now);
        let mut snapshot = Snapshot::empty(self.started_at);
        snapshot.generated_at = wall;
        snapshot.nodes = nodes;
        snapshot.links = links;
        snapshot.postgres = pg_details;
        snapshot.redis = redis_details;
        snapshot.seaweedfs = seaweed_details;
        snapshot
    }

    /// Extend each link's lag history and attach it; forget links that are gone.
    fn track_lag(&mut self, links: &mut [LinkView], now: Instant) {
        let mut current = HashSet::new();
        for link in links.iter_mut() {
            let id = link.id();
            let track = self.tracks.entry(id.clone()).or_default();
            if let Some(lag) = link.lag {
                let t = Arc::make_mut(track);
                t.seconds.push(now, lag.seconds);
                t.bytes.push(now, lag.bytes as f64);
            }
            link.track = Some(track.clone());
            current.insert(id);
        }
        self.tracks.retain(|id, _| current.contains(id));
    }

    /// Fill in how long each down link has been down; forget links that are
    /// up or gone.
    fn track_outages(&mut self, links: &mut [LinkView], now: Instant) {
        let mut current = HashSet::new();
        for link in links.iter_mut() {
            let key = (link.system, link.source.clone(), link.replica.clone());
            if link.up {
                continue;
            }
            let since = *self.down_since.entry(key.clone()).or_insert(now);
            link.down_seconds = Some(now.saturating_duration_since(since).as_secs_f64());
            current.insert(key);
        }
        self.down_since.retain(|key, _| current.contains(key));
    }
}

/// The source position a primary-like observation contributes to its stream.
fn source_position(observation: &Observation) -> Option<(StreamKey, u64)> {
    match observation {
        Observation::Postgres(pg) if !pg.in_recovery => {
            let key = StreamKey {
                system: System::Postgres,
                id: pg.system_identifier.clone(),
                epoch: u64::from(pg.timeline.unwrap_or(0)),
            };
            Some((key, pg.current_lsn?.0))
        }
        Observation::Postgres(_) => None,
        Observation::Redis(r) if r.is_master => Some((redis::stream(&r.replid), r.master_repl_offset)),
        Observation::Redis(_) | Observation::Seaweed(_) => None,
    }
}

fn node_view(spec: &NodeSpec, state: &NodeState) -> NodeView {
    let observation = state.last_ok.as_ref().map(|(s, _)| &s.observation);
    let (role, version, identity) = match observation {
        Some(Observation::Postgres(pg)) => (
            Some(pg.role().to_string()),
            Some(pg.version.clone()),
            vec![("system_identifier".to_string(), pg.system_identifier.clone())],
        ),
        Some(Observation::Redis(r)) => (
            Some(r.role().to_string()),
            Some(r.version.clone()),
            vec![("replication_id".to_string(), r.replid.clone()), ("run_id".to_string(), r.run_id.clone())],
        ),
        Some(Observation::Seaweed(w)) => (
            Some(if w.is_leader { "leader" } else { "follower" }.to_string()),
            Some(w.version.clone()).filter(|v| !v.is_empty()),
            Vec::new(),
        ),
        None => (None, None, Vec::new()),
    };
    NodeView {
        system: spec.system(),
        name: spec.name.clone(),
        region: spec.region.clone(),
        up: state.is_up(),
        role,
        version,
        identity,
        failure: state.failure.clone(),
        last_poll_duration_seconds: state.last_report.map(|r| r.duration.as_secs_f64()),
        last_success: state.last_ok.as_ref().map(|(_, wall)| *wall),
        polls_total: state.polls_total,
        failures_total: state.failures_total,
    }
}

impl From<Lag> for LagView {
    fn from(lag: Lag) -> Self {
        LagView { bytes: lag.bytes, seconds: lag.seconds, lower_bound: lag.lower_bound }
    }
}

/// A new configuration for a running engine (SIGHUP): its nodes, and the
/// channel their new pollers report on. The old channel is dropped, so the
/// old pollers' next report fails and they stop.
pub struct Reconfigure {
    pub specs: Vec<NodeSpec>,
    pub reports: mpsc::Receiver<NodeReport>,
}

impl Engine {
    /// The engine for new node specs, keeping what is keyed by identity
    /// rather than by position in the node list: source position histories
    /// (by stream), gate tracks (by link), outage starts (by link).
    pub fn reconfigured(self, specs: Vec<NodeSpec>) -> Engine {
        let mut next = Engine::new(specs, self.started_at);
        next.histories = self.histories;
        next.tracks = self.tracks;
        next.down_since = self.down_since;
        next
    }
}

/// How long reports may wait to share a snapshot: a tenth of the poll
/// interval, at most 100 ms. Pollers are not in step, so without it a fleet
/// of N nodes made N snapshots (and N `/metrics` renders under scraping) per
/// interval.
pub fn publish_gap(poll_interval: Duration) -> Duration {
    (poll_interval / 10).min(Duration::from_millis(100))
}

/// Feed reports into the engine and publish a snapshot after each batch (at
/// most one per `gap`); switch to a new configuration when one arrives.
pub async fn run(
    mut engine: Engine,
    mut reports: mpsc::Receiver<NodeReport>,
    mut reconfigure: mpsc::Receiver<Reconfigure>,
    publish: watch::Sender<Arc<Snapshot>>,
    gap: Duration,
) {
    // The old pollers may stop (closing their channel) before the switch to
    // the new one arrives: only both channels closed ends the engine.
    let (mut reports_open, mut reconfigure_open) = (true, true);
    let mut published = tokio::time::Instant::now() - gap;
    loop {
        tokio::select! {
            report = reports.recv(), if reports_open => {
                let Some(report) = report else {
                    reports_open = false;
                    continue;
                };
                engine.ingest(report);
                // Let the reports of this moment gather, then take them all.
                tokio::time::sleep_until(published + gap).await;
                while let Ok(report) = reports.try_recv() {
                    engine.ingest(report);
                }
            }
            change = reconfigure.recv(), if reconfigure_open => {
                let Some(change) = change else {
                    reconfigure_open = false;
                    continue;
                };
                engine = engine.reconfigured(change.specs);
                reports = change.reports;
                reports_open = true;
            }
            else => return,
        }
        let snapshot = crate::cpu::heavy(|| engine.snapshot(Instant::now(), SystemTime::now()));
        publish.send_replace(Arc::new(snapshot));
        published = tokio::time::Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsn::Lsn;
    use crate::sources::postgres::{PgObservation, WalReceiver, WalSender};
    use crate::topology::{PostgresTarget, Target};
    use std::str::FromStr;

    fn spec(name: &str, region: &str, port: u16, upstream: Option<&str>) -> NodeSpec {
        let url = format!("postgresql://mon:pw@127.0.0.1:{port}/postgres");
        NodeSpec {
            name: name.into(),
            region: region.into(),
            upstream: upstream.map(String::from),
            publishers: Default::default(),
            group: None,
            target: Target::Postgres(PostgresTarget::new(tokio_postgres::Config::from_str(&url).unwrap())),
        }
    }

    fn primary(lsn: u64, timeline: u32, walsenders: Vec<WalSender>) -> PgObservation {
        PgObservation {
            version: "15".into(),
            version_num: 150000,
            in_recovery: false,
            system_identifier: "42".into(),
            timeline: Some(timeline),
            current_lsn: Some(Lsn(lsn)),
            receive_lsn: None,
            replay_lsn: None,
            replay_paused: None,
            last_xact_replay_unix: None,
            cluster_name: String::new(),
            walsenders,
            slots: vec![],
            wal_receiver: None,
            subscriptions: vec![],
        }
    }

    fn standby(replay: u64, sender_port: u16) -> PgObservation {
        PgObservation {
            in_recovery: true,
            current_lsn: None,
            receive_lsn: Some(Lsn(replay)),
            replay_lsn: Some(Lsn(replay)),
            replay_paused: Some(false),
            wal_receiver: Some(WalReceiver {
                status: "streaming".into(),
                received_tli: Some(1),
                flushed_lsn: Some(Lsn(replay)),
                last_msg_receipt_age: Some(0.1),
                slot_name: None,
                sender_host: Some("localhost".into()),
                sender_port: Some(sender_port),
            }),
            ..primary(0, 1, vec![])
        }
    }

    fn walsender(name: &str, replay: u64) -> WalSender {
        WalSender {
            pid: 7,
            application_name: name.into(),
            client_addr: Some("10.1.2.3".into()),
            state: "streaming".into(),
            sync_state: "async".into(),
            sent_lsn: Some(Lsn(replay)),
            write_lsn: Some(Lsn(replay)),
            flush_lsn: Some(Lsn(replay)),
            replay_lsn: Some(Lsn(replay)),
            write_lag: None,
            flush_lag: None,
            replay_lag: None,
        }
    }

    fn report(node: usize, at: Instant, result: Result<PgObservation, PollFailure>) -> NodeReport {
        NodeReport {
            node,
            finished: at,
            finished_wall: SystemTime::now(),
            duration: Duration::from_millis(1),
            result: result.map(|o| Sampled { at, observation: Observation::Postgres(o) }),
        }
    }

    fn find<'a>(s: &'a Snapshot, source: &str, replica: &str) -> &'a crate::snapshot::LinkView {
        s.links
            .iter()
            .find(|l| l.source == source && l.replica == replica)
            .unwrap_or_else(|| panic!("{source}->{replica}: {:?}", s.links))
    }

    #[test]
    fn cascaded_standby_is_measured_against_the_root_primary() {
        let specs = vec![spec("a", "r1", 5001, None), spec("b", "r2", 5002, None), spec("c", "r3", 5003, None)];
        let mut engine = Engine::new(specs, SystemTime::now());
        let t0 = Instant::now();
        // The primary writes 1000 bytes per second for 10 s.
        for i in 0..=10u64 {
            engine.ingest(report(0, t0 + Duration::from_secs(i), Ok(primary(1000 * i, 1, vec![]))));
        }
        let now = t0 + Duration::from_secs(10);
        engine.ingest(report(1, now, Ok(standby(9000, 5001))));
        engine.ingest(report(2, now, Ok(standby(6000, 5002))));
        let s = engine.snapshot(now, SystemTime::now());
        let ab = find(&s, "a", "b");
        let bc = find(&s, "b", "c");
        assert!(ab.up && bc.up);
        assert_eq!(ab.lag.unwrap().bytes, 1000);
        assert!((ab.lag.unwrap().seconds - 1.0).abs() < 1e-6);
        assert_eq!(bc.lag.unwrap().bytes, 4000, "c is measured against a, the root");
        assert!((bc.lag.unwrap().seconds - 4.0).abs() < 1e-6);
        assert_eq!((bc.source_region.as_str(), bc.replica_region.as_str()), ("r2", "r3"));
    }

    #[test]
    fn declared_replica_never_seen_is_a_down_link_not_a_missing_series() {
        let specs = vec![spec("a", "r1", 5001, None), spec("b", "r2", 5002, Some("a"))];
        let mut engine = Engine::new(specs, SystemTime::now());
        let t0 = Instant::now();
        engine.ingest(report(0, t0, Ok(primary(100, 1, vec![]))));
        engine.ingest(report(1, t0, Err(PollFailure::new(FailureKind::Connect, "connection refused"))));
        let s = engine.snapshot(t0, SystemTime::now());
        let link = find(&s, "a", "b");
        assert!(!link.up);
        assert!(link.reason.as_deref().unwrap().contains("connection refused"), "{link:?}");
        assert_eq!(link.lag, None, "no fake lag without a replica position");
    }

    #[test]
    fn unconfigured_standbys_are_discovered_and_do_not_vanish() {
        let specs = vec![spec("a", "r1", 5001, None)];
        let mut engine = Engine::new(specs, SystemTime::now());
        let t0 = Instant::now();
        engine.ingest(report(0, t0, Ok(primary(100, 1, vec![]))));
        engine.ingest(report(0, t0 + Duration::from_secs(1), Ok(primary(200, 1, vec![walsender("far-away", 100)]))));
        let s = engine.snapshot(t0 + Duration::from_secs(1), SystemTime::now());
        let link = find(&s, "a", "far-away");
        assert!(link.up);
        assert_eq!(link.replica_region, crate::snapshot::UNKNOWN_REGION);
        assert_eq!(link.lag.unwrap().bytes, 100);
        assert!((link.lag.unwrap().seconds - 1.0).abs() < 1e-6);

        engine.ingest(report(0, t0 + Duration::from_secs(2), Ok(primary(300, 1, vec![]))));
        let s = engine.snapshot(t0 + Duration::from_secs(2), SystemTime::now());
        let gone = find(&s, "a", "far-away");
        assert!(!gone.up, "a standby that left pg_stat_replication is a down link");
    }

    #[test]
    fn base_backups_and_wal_archivers_are_not_links() {
        let specs = vec![spec("a", "r1", 5001, None)];
        let mut engine = Engine::new(specs, SystemTime::now());
        let t0 = Instant::now();
        engine.ingest(report(0, t0, Ok(primary(100, 1, vec![]))));
        let backup = WalSender { state: "backup".into(), ..walsender("pg_basebackup", 100) };
        let wal_stream = WalSender { pid: 8, replay_lsn: None, ..walsender("pg_basebackup", 100) };
        let receivewal = WalSender { pid: 9, replay_lsn: None, ..walsender("pg_receivewal", 100) };
        let t1 = t0 + Duration::from_secs(1);
        engine.ingest(report(0, t1, Ok(primary(200, 1, vec![backup, wal_stream, receivewal]))));
        let s = engine.snapshot(t1, SystemTime::now());
        assert!(s.links.is_empty(), "{:?}", s.links);
        // And when the backup ends, nothing is left behind as a down link.
        let t2 = t0 + Duration::from_secs(2);
        engine.ingest(report(0, t2, Ok(primary(300, 1, vec![]))));
        assert!(engine.snapshot(t2, SystemTime::now()).links.is_empty());
    }

    #[test]
    fn a_standby_reported_by_its_primary_first_is_not_a_lingering_discovery() {
        let specs = vec![spec("a", "r1", 5001, None), spec("b", "r2", 5002, None)];
        let mut engine = Engine::new(specs, SystemTime::now());
        let t0 = Instant::now();
        // The primary's first report lists b's walsender before b has reported.
        engine.ingest(report(0, t0, Ok(primary(100, 1, vec![walsender("walreceiver", 100)]))));
        let s = engine.snapshot(t0, SystemTime::now());
        assert!(s.links.is_empty(), "no discovery before every node reported: {:?}", s.links);
        engine.ingest(report(1, t0, Ok(standby(100, 5001))));
        let s = engine.snapshot(t0, SystemTime::now());
        assert_eq!(s.links.len(), 1, "{:?}", s.links);
        assert!(find(&s, "a", "b").up);
    }

    #[test]
    fn timeline_change_starts_a_new_history_without_bogus_lag() {
        let specs = vec![spec("a", "r1", 5001, None), spec("b", "r2", 5002, None)];
        let mut engine = Engine::new(specs, SystemTime::now());
        let t0 = Instant::now();
        for i in 0..5u64 {
            engine.ingest(report(0, t0 + Duration::from_secs(i), Ok(primary(1_000_000 + i, 1, vec![]))));
        }
        // The same system on a new timeline (e.g. after a restore) at a lower position.
        let t1 = t0 + Duration::from_secs(10);
        engine.ingest(report(0, t1, Ok(primary(500, 2, vec![]))));
        engine.ingest(report(1, t1, Ok(standby(500, 5001))));
        let s = engine.snapshot(t1, SystemTime::now());
        assert_eq!(
            find(&s, "a", "b").lag.unwrap(),
            crate::snapshot::LagView { bytes: 0, seconds: 0.0, lower_bound: false }
        );
        assert_eq!(engine.histories.len(), 2, "one stream per timeline");
    }
}
