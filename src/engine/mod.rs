//! The engine: takes poll reports, keeps each source's position history,
//! has every system derive its links with lag in bytes and seconds, tracks
//! outages, and publishes snapshots. It knows systems only through
//! `systems` (observations' source positions and identities, and one
//! `derive` over the whole fleet).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::failover::Tracker;
use crate::lag::{capacity_for, Histories, PositionHistory, Pushed, StreamKey};
use crate::model::{FailureKind, LinkId, Node, NodeIndex, NodeView, PollFailure, Sampled, SourcePosition};
use crate::poller::{NodeReport, PositionSample, Report};
use crate::snapshot::Snapshot;
use crate::systems::{self, FleetState, Link, NodeSpec, Observation, Observed};

/// A history no source has extended for this long is dropped.
const HISTORY_IDLE_DROP: Duration = Duration::from_secs(3600);
/// `poll.interval`'s default.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// At most this many nodes join by discovery (a hostile or broken topology
/// cannot grow the fleet without bound).
const JOINED_MAX: usize = 10_000;

/// A node a Sentinel or Cluster entry revealed, now part of the fleet at
/// `index`: someone must start polling it.
#[derive(Debug, Clone)]
pub struct Joined {
    pub index: usize,
    pub spec: NodeSpec,
}

/// What the engine knows of one node.
#[derive(Debug, Default)]
pub struct NodeState {
    pub last_report: Option<ReportMeta>,
    /// The last successful poll, kept while the node is down.
    pub last_ok: Option<(Sampled<Observation>, SystemTime)>,
    pub failure: Option<PollFailure>,
    pub polls_total: u64,
    pub position_reads_total: u64,
    pub failures_total: [u64; FailureKind::ALL.len()],
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

    fn observed(&self) -> Observed<'_> {
        Observed {
            last_ok: self.last_ok.as_ref().map(|(s, _)| s),
            polled: self.last_report.is_some(),
            failure: self.failure.as_ref(),
        }
    }
}

pub struct Engine {
    specs: Vec<NodeSpec>,
    /// `specs`' nodes as one slice, for the link rules.
    nodes: Vec<Node>,
    index: NodeIndex,
    states: Vec<NodeState>,
    histories: Histories,
    memory: systems::Memory,
    /// When each link was first seen down in its current outage.
    down_since: HashMap<LinkId, Instant>,
    started_at: SystemTime,
    poll_interval: Duration,
    /// Where nodes that join by discovery are announced (to start pollers).
    joins: Option<mpsc::UnboundedSender<Joined>>,
    joined: usize,
    /// Nodes from the config (the first ones); the rest joined by discovery.
    configured: usize,
    /// Role facts → failover events and data at risk.
    failover: Tracker,
}

impl Engine {
    pub fn new(specs: Vec<NodeSpec>, started_at: SystemTime) -> Self {
        let specs_len = specs.len();
        Self {
            index: systems::node_index(&specs),
            nodes: specs.iter().map(|s| s.node.clone()).collect(),
            states: specs.iter().map(|_| NodeState::default()).collect(),
            specs,
            histories: Histories::new(),
            memory: systems::Memory::default(),
            down_since: HashMap::new(),
            started_at,
            poll_interval: DEFAULT_POLL_INTERVAL,
            joins: None,
            joined: 0,
            configured: specs_len,
            failover: Tracker::new(crate::failover::Journal::new(None), Vec::new()),
        }
    }

    /// Keep failover events with `tracker` (its journal, the events read
    /// back from it).
    pub fn with_failover(mut self, tracker: Tracker) -> Self {
        self.failover = tracker;
        self
    }

    /// Announce nodes that join by discovery on `joins`. Without it,
    /// revealed servers are not polled (`replag check`).
    pub fn with_joins(mut self, joins: mpsc::UnboundedSender<Joined>) -> Self {
        self.joins = Some(joins);
        self
    }

    /// Servers a Sentinel or Cluster entry revealed that the fleet does not
    /// have yet join it, at the end: indices of the nodes already there
    /// never change, so what the link rules remember by index stays right.
    fn admit_revealed(&mut self, from: usize, revealed: Vec<crate::model::Revealed>) {
        let Some(joins) = &self.joins else { return };
        let system = self.specs[from].system();
        let mut added = HashSet::new();
        for found in revealed {
            let address = (crate::model::normalize_host(&found.host), found.port);
            if self.index.nodes_at(system, &address.0, address.1).next().is_some() || added.contains(&address) {
                continue;
            }
            if self.joined >= JOINED_MAX {
                break;
            }
            let Some(spec) = self.specs[from].revealed_member(&found) else { continue };
            if self.index.named(system, &spec.name).is_some() {
                continue;
            }
            tracing::info!(node = %spec.name, region = %spec.region, group = ?spec.group,
                revealed_by = %self.specs[from].name, "discovered a server; polling it");
            let index = self.specs.len();
            self.nodes.push(spec.node.clone());
            self.states.push(NodeState::default());
            self.specs.push(spec.clone());
            self.joined += 1;
            added.insert(address);
            let _ = joins.send(Joined { index, spec });
        }
        if !added.is_empty() {
            // Once per batch: rebuilding per node made a large cluster's first
            // discovery quadratic.
            self.index = systems::node_index(&self.specs);
            tracing::debug!(nodes = self.specs.len(), "fleet grew by discovery");
        }
    }

    /// The nodes' poll interval (default 1 s): how late a change may be seen,
    /// which bounds how soon a link can be judged silent.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    pub fn specs(&self) -> &[NodeSpec] {
        &self.specs
    }

    pub fn take(&mut self, report: Report) {
        match report {
            Report::Polled(report) => self.ingest(*report),
            Report::Sampled(sample) => self.ingest_sample(sample),
        }
    }

    /// A source's position read between polls: a finer history, nothing else
    /// (only a poll starts a stream's history).
    pub fn ingest_sample(&mut self, sample: PositionSample) {
        if self.histories.contains_key(&sample.stream) {
            if let Some(state) = self.states.get_mut(sample.node) {
                state.position_reads_total += 1;
            }
            let node = self.specs.get(sample.node).map_or("?", |s| s.name.as_str());
            extend_history(&mut self.histories, node, sample.stream, sample.at, sample.source);
        }
    }

    pub fn ingest(&mut self, report: NodeReport) {
        let Some(state) = self.states.get_mut(report.node) else { return };
        state.polls_total += 1;
        state.last_report = Some(ReportMeta { finished: report.finished, duration: report.duration });
        match report.result {
            Ok(sampled) => {
                state.failure = None;
                let heartbeat = sampled.observation.heartbeats().and_then(|h| h.written.as_ref());
                let heartbeat = heartbeat.map(|(source, seq)| {
                    (StreamKey::heartbeat(self.specs[report.node].system(), source), SourcePosition::all_data(*seq))
                });
                let revealed = sampled.observation.revealed();
                for (key, position) in sampled.observation.source_positions().into_iter().chain(heartbeat) {
                    extend_history(&mut self.histories, &self.specs[report.node].name, key, sampled.at, position);
                }
                state.last_ok = Some((sampled, report.finished_wall));
                self.admit_revealed(report.node, revealed);
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
        let observed: Vec<Observed<'_>> = self.states.iter().map(NodeState::observed).collect();
        let fleet = FleetState {
            specs: &self.specs,
            nodes: &self.nodes,
            observed: &observed,
            index: &self.index,
            histories: &self.histories,
            // Until every configured node has reported once, a replica's
            // upstream may report it before the replica itself does: no
            // discovery yet. (Nodes that join later are known by address
            // before their first report, so they are claimed all the same;
            // waiting for them — 5 s for one that does not answer — would
            // hide every discovered link meanwhile.)
            discovery: self.states[..self.configured].iter().all(|s| s.last_report.is_some()),
            poll_interval: self.poll_interval,
        };
        let (mut links, details, roles) = self.memory.derive(&fleet, now);
        self.note_stale_sources(&mut links, now);
        self.note_heartbeats(&mut links);
        links.sort_by(|a, b| {
            (a.id.system, &a.id.source, &a.id.replica).cmp(&(b.id.system, &b.id.source, &b.id.replica))
        });
        self.track_outages(&mut links, now);
        let failover = self.failover.observe(&roles, &links, now, wall);
        Snapshot { generated_at: wall, started_at: self.started_at, nodes, links, details, failover, roles, taken: now }
    }

    /// With heartbeats on, each link's heartbeat lag: against the heartbeats
    /// replag wrote on the link's source — or, for a cascade whose source
    /// writes none, on the one source whose heartbeats the replica holds.
    fn note_heartbeats(&self, links: &mut [Link]) {
        for link in links.iter_mut() {
            let system = link.id.system;
            let Some(r) = self.index.named(system, &link.id.replica) else { continue };
            let state = &self.states[r];
            let Some(sampled) = state.last_ok.as_ref().filter(|_| state.is_up()).map(|(s, _)| s) else { continue };
            let Some(seen) = sampled.observation.heartbeats() else { continue };
            let history_of = |source: &str| self.histories.get(&StreamKey::heartbeat(system, source));
            let source = match history_of(&link.id.source) {
                Some(_) => Some(link.id.source.as_str()),
                None => {
                    let mut written = seen.seen.iter().filter(|(s, _)| history_of(s).is_some());
                    match (written.next(), written.next()) {
                        (Some((only, _)), None) => Some(only.as_str()),
                        _ => None,
                    }
                }
            };
            let Some(source) = source else { continue };
            let position = seen.seen(source).unwrap_or(0);
            link.heartbeat_lag_seconds =
                history_of(source).and_then(|h| h.lag_in_steps(position, sampled.at)).map(|l| l.seconds);
        }
    }

    /// A link whose source replag cannot reach is measured against the
    /// source's position as of its last poll: say so, and count the data as
    /// that old (gates fail closed on it).
    fn note_stale_sources(&self, links: &mut [Link], now: Instant) {
        for link in links.iter_mut().filter(|l| l.lag.is_some()) {
            let Some(u) = self.index.named(link.id.system, &link.id.source) else { continue };
            let state = &self.states[u];
            if state.is_up() || state.last_report.is_none() {
                continue;
            }
            let age = state.last_ok.as_ref().map(|(s, _)| now.saturating_duration_since(s.at).as_secs_f64());
            if let Some(age) = age {
                link.data_age_seconds = Some(link.data_age_seconds.map_or(age, |a| a.max(age)));
            }
            let failure = state.failure.as_ref().map_or_else(String::new, |f| format!(" ({f})"));
            let note = format!(
                "source {} unreachable{failure}: lag as of its last poll{}",
                link.id.source,
                age.map_or(String::new(), |a| format!(" {a:.0} s ago"))
            );
            link.reason = Some(match link.reason.take() {
                Some(reason) => format!("{reason}; {note}"),
                None => note,
            });
        }
    }

    /// Fill in how long each down link has been down; forget links that are
    /// up or gone.
    fn track_outages(&mut self, links: &mut [Link], now: Instant) {
        let mut current = HashSet::new();
        for link in links.iter_mut() {
            if link.up {
                continue;
            }
            let since = *self.down_since.entry(link.id.clone()).or_insert(now);
            link.down_seconds = Some(now.saturating_duration_since(since).as_secs_f64());
            current.insert(link.id.clone());
        }
        self.down_since.retain(|key, _| current.contains(key));
    }
}

/// Push a source's position onto its stream's history (started if new).
fn extend_history(histories: &mut Histories, node: &str, stream: StreamKey, at: Instant, position: SourcePosition) {
    // Every history's share of the process's samples, as the fleet grows.
    let capacity = capacity_for(histories.len() + usize::from(!histories.contains_key(&stream)));
    let history = histories.entry(stream.clone()).or_insert_with(|| PositionHistory::with_capacity(capacity));
    history.set_capacity(capacity);
    if history.push_marked(at, position) == Pushed::Reset {
        tracing::warn!(node = %node, stream = ?stream, "source position went backwards; lag history restarted");
    }
}

fn node_view(spec: &NodeSpec, state: &NodeState) -> NodeView {
    let identity = state.last_ok.as_ref().map(|(s, _)| s.observation.identity());
    let (role, version, identity) = match identity {
        Some(id) => (Some(id.role), id.version, id.labels),
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
        position_reads_total: state.position_reads_total,
        failures_total: state.failures_total,
    }
}

/// A new configuration for a running engine (SIGHUP): its nodes, and the
/// channel their new pollers report on. The old channel is dropped, so the
/// old pollers' next report fails and they stop.
pub struct Reconfigure {
    pub specs: Vec<NodeSpec>,
    pub poll_interval: Duration,
    pub reports: mpsc::Receiver<Report>,
    /// Where the new configuration's discovered nodes are announced.
    pub joins: Option<mpsc::UnboundedSender<Joined>>,
}

impl Engine {
    /// The engine for new node specs, keeping what is keyed by identity
    /// rather than by position in the node list: source position histories
    /// (by stream) and outage starts (by link).
    pub fn reconfigured(
        self,
        specs: Vec<NodeSpec>,
        poll_interval: Duration,
        joins: Option<mpsc::UnboundedSender<Joined>>,
    ) -> Engine {
        let mut next = Engine::new(specs, self.started_at).with_poll_interval(poll_interval);
        next.joins = joins;
        next.histories = self.histories;
        next.down_since = self.down_since;
        next.failover = self.failover;
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

/// A snapshot's build time times this is the least gap before the next: a
/// large fleet's snapshots (and the gate tracks and renders that follow
/// each) then cost little — at 2,000 nodes a build takes ~5 ms, so 2
/// snapshots a second instead of 10. A small fleet's builds take
/// microseconds and keep `publish_gap`.
const BUILD_TIME_TO_GAP: u32 = 100;

/// The gap never grows past this many `publish_gap`s (half a poll
/// interval): a build slowed by a loaded machine must not leave gates and
/// scrapes on data seconds old.
const MAX_GAPS: u32 = 5;

/// The gap before the next snapshot, given the last one's build time.
pub fn next_gap(gap: Duration, built_in: Duration) -> Duration {
    gap.max(built_in.saturating_mul(BUILD_TIME_TO_GAP)).min(gap * MAX_GAPS)
}

/// Feed reports into the engine and publish a snapshot after each batch (at
/// most one per `gap`); switch to a new configuration when one arrives.
pub async fn run(
    mut engine: Engine,
    mut reports: mpsc::Receiver<Report>,
    mut reconfigure: mpsc::Receiver<Reconfigure>,
    publish: watch::Sender<Arc<Snapshot>>,
    gap: Duration,
) {
    // The old pollers may stop (closing their channel) before the switch to
    // the new one arrives: only both channels closed ends the engine.
    let (mut reports_open, mut reconfigure_open) = (true, true);
    let mut published = tokio::time::Instant::now() - gap;
    let mut wait = gap;
    loop {
        tokio::select! {
            report = reports.recv(), if reports_open => {
                let Some(report) = report else {
                    reports_open = false;
                    continue;
                };
                match report {
                    // A sample extends a history; the next poll's snapshot reads it.
                    Report::Sampled(sample) => {
                        engine.ingest_sample(sample);
                        continue;
                    }
                    Report::Polled(report) => engine.ingest(*report),
                }
                // Let the reports of this moment gather, then take them all.
                tokio::time::sleep_until(published + wait).await;
                while let Ok(report) = reports.try_recv() {
                    engine.take(report);
                }
            }
            change = reconfigure.recv(), if reconfigure_open => {
                let Some(change) = change else {
                    reconfigure_open = false;
                    continue;
                };
                engine = engine.reconfigured(change.specs, change.poll_interval, change.joins);
                reports = change.reports;
                reports_open = true;
            }
            else => return,
        }
        let started = Instant::now();
        let snapshot = crate::offload::heavy(|| engine.snapshot(Instant::now(), SystemTime::now()));
        wait = next_gap(gap, started.elapsed());
        publish.send_replace(Arc::new(snapshot));
        published = tokio::time::Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::System;
    use crate::systems::postgres::{Lsn, PgObservation, PostgresTarget, WalReceiver, WalSender};
    use crate::systems::Target;
    use redis::IntoConnectionInfo;
    use std::str::FromStr;

    fn spec(name: &str, region: &str, port: u16, upstream: Option<&str>) -> NodeSpec {
        let url = format!("postgresql://mon:pw@127.0.0.1:{port}/postgres");
        NodeSpec {
            node: Node {
                name: name.into(),
                region: region.into(),
                system: System::Postgres,
                upstream: upstream.map(String::from),
                publishers: Default::default(),
                group: None,
            },
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
            commit_mark: None,
            receive_lsn: None,
            replay_lsn: None,
            replay_paused: None,
            last_xact_replay_unix: None,
            cluster_name: String::new(),
            walsenders,
            slots: vec![],
            wal_receiver: None,
            subscriptions: vec![],
            status_interval: Some(10.0),
            heartbeats: Default::default(),
            timeline_switch: None,
        }
    }

    fn standby(replay: u64, sender_port: u16) -> PgObservation {
        PgObservation {
            in_recovery: true,
            current_lsn: None,
            commit_mark: None,
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
            reply_time: Some(1_800_000_000.0),
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

    fn find<'a>(s: &'a Snapshot, source: &str, replica: &str) -> &'a Link {
        s.links
            .iter()
            .find(|l| l.id.source == source && l.id.replica == replica)
            .unwrap_or_else(|| panic!("{source}->{replica}: {:?}", s.links))
    }

    #[test]
    fn servers_a_sentinel_reveals_join_once_at_the_end() {
        use crate::systems::redis::{RedisTopology, SentinelMaster, SentinelReplica, SentinelView};
        let sentinel_url = "redis://127.0.0.1:26379".into_connection_info().unwrap();
        let mut sentinel_target = crate::systems::redis::RedisTarget::server(sentinel_url);
        sentinel_target.role = crate::systems::redis::RedisRole::Sentinel { masters: vec![] };
        let sentinel = NodeSpec {
            node: Node {
                name: "sentinel".into(),
                region: "r1".into(),
                system: System::Redis,
                upstream: None,
                publishers: Default::default(),
                group: None,
            },
            target: Target::Redis(sentinel_target),
        };
        let listed_url = "redis://127.0.0.1:6379".into_connection_info().unwrap();
        let listed = NodeSpec {
            node: Node { name: "listed-master".into(), ..sentinel.node.clone() },
            target: Target::Redis(crate::systems::redis::RedisTarget::server(listed_url)),
        };
        let (tx, mut joins) = mpsc::unbounded_channel();
        let mut engine = Engine::new(vec![sentinel, listed], SystemTime::now()).with_joins(tx);
        let replica =
            |port| SentinelReplica { ip: "127.0.0.1".into(), port, flags: vec!["slave".into()], link_ok: true };
        let view = RedisTopology::Sentinel(SentinelView {
            masters: vec![SentinelMaster {
                name: "orders".into(),
                ip: "localhost".into(),
                port: 6379,
                flags: vec!["master".into()],
                quorum: 2,
                other_sentinels: 2,
                config_epoch: 0,
                replicas: vec![replica(6380), replica(6381)],
                quorum_ok: true,
                quorum_message: String::new(),
            }],
        });
        let t0 = Instant::now();
        for _ in 0..2 {
            engine.ingest(NodeReport {
                node: 0,
                finished: t0,
                finished_wall: SystemTime::now(),
                duration: Duration::from_millis(1),
                result: Ok(Sampled { at: t0, observation: Observation::RedisTopology(view.clone()) }),
            });
        }
        let names: Vec<&str> = engine.specs().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["sentinel", "listed-master", "127.0.0.1:6380", "127.0.0.1:6381"], "the listed master stays");
        let announced: Vec<(usize, String)> =
            std::iter::from_fn(|| joins.try_recv().ok()).map(|j| (j.index, j.spec.name.clone())).collect();
        assert_eq!(announced, [(2, "127.0.0.1:6380".to_string()), (3, "127.0.0.1:6381".to_string())], "once each");
        assert_eq!(engine.specs()[2].group.as_deref(), Some("orders"));
        let s = engine.snapshot(t0, SystemTime::now());
        assert_eq!(s.nodes.len(), 4, "joined nodes are in the snapshot, not polled yet");
        assert_eq!(s.details.redis.groups[0].master.as_deref(), Some("listed-master"), "by address, not host:port");
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
        assert_eq!((bc.id.source_region.as_str(), bc.id.replica_region.as_str()), ("r2", "r3"));
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
        assert_eq!(link.id.replica_region, crate::model::UNKNOWN_REGION);
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
    fn slow_snapshots_are_published_less_often() {
        let gap = publish_gap(Duration::from_secs(1));
        assert_eq!(gap, Duration::from_millis(100));
        assert_eq!(next_gap(gap, Duration::from_micros(50)), gap, "a small fleet keeps the gap");
        assert_eq!(next_gap(gap, Duration::from_millis(3)), Duration::from_millis(300));
        assert_eq!(next_gap(gap, Duration::from_millis(60)), Duration::from_millis(500), "at most half a poll");
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
            crate::model::LagView { bytes: 0, seconds: 0.0, lower_bound: false, resolution_seconds: Some(0.0) }
        );
        assert_eq!(engine.histories.len(), 2, "one stream per timeline");
    }
}
