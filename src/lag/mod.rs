//! The lag engine: takes poll reports, keeps each source's position history,
//! derives replication links with lag in bytes and seconds, and produces
//! snapshots. Per-system link rules live in one file per system.

pub mod history;
mod postgres;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

pub use history::{Lag, PositionHistory, Pushed};

use crate::poller::NodeReport;
use crate::snapshot::{LagView, NodeView, Snapshot};
use crate::sources::{FailureKind, Observation, PollFailure, Sampled};
use crate::topology::{NodeSpec, System};

/// A history no source has extended for this long is dropped.
const HISTORY_IDLE_DROP: Duration = Duration::from_secs(3600);

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
    states: Vec<NodeState>,
    histories: HashMap<StreamKey, PositionHistory>,
    pg: postgres::PgMemory,
    started_at: SystemTime,
}

impl Engine {
    pub fn new(specs: Vec<NodeSpec>, started_at: SystemTime) -> Self {
        let states = specs.iter().map(|_| NodeState::default()).collect();
        Self { specs, states, histories: HashMap::new(), pg: postgres::PgMemory::default(), started_at }
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
        let view = postgres::PgInputs { specs: &self.specs, states: &self.states, histories: &self.histories };
        let (mut links, pg_details) = postgres::derive(&mut self.pg, &view, now);
        links.sort_by(|a, b| (a.system, &a.source, &a.replica).cmp(&(b.system, &b.source, &b.replica)));
        let mut snapshot = Snapshot::empty(self.started_at);
        snapshot.generated_at = wall;
        snapshot.nodes = nodes;
        snapshot.links = links;
        snapshot.postgres = pg_details;
        snapshot
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
        None => (None, None, Vec::new()),
    };
    NodeView {
        system: spec.system,
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

/// Feed reports into the engine and publish a snapshot after each batch.
pub async fn run(mut engine: Engine, mut reports: mpsc::Receiver<NodeReport>, publish: watch::Sender<Arc<Snapshot>>) {
    while let Some(report) = reports.recv().await {
        engine.ingest(report);
        while let Ok(report) = reports.try_recv() {
            engine.ingest(report);
        }
        publish.send_replace(Arc::new(engine.snapshot(Instant::now(), SystemTime::now())));
    }
}
