//! What a batch of polls costs, off the request path: the lag engine's
//! lookups (position history, breach history) and a whole engine round —
//! ingesting one report per node and building the snapshot — at 100, 1,000
//! and 10,000 links.

mod common;

use std::hint::black_box;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use replag::engine::Engine;
use replag::failover::{Journal, Tracker};
use replag::gate::breach::{BreachHistory, RETENTION};
use replag::gate::memory::Memory;
use replag::lag::history::{PositionHistory, DEFAULT_CAPACITY};
use replag::model::{FailureKind, Node, PollFailure, Sampled};
use replag::poller::NodeReport;
use replag::systems::postgres::{Lsn, PgObservation, PostgresTarget, Slot, WalReceiver, WalSender};
use replag::systems::redis::{ConnectedReplica, RedisObservation, RedisTarget, ReplicaState};
use replag::systems::{NodeSpec, Observation, Target};

use common::{link_counts, REGIONS};

/// Bytes a busy primary writes per second in the fixtures.
const WRITE_RATE: u64 = 1 << 20;
const SECOND: Duration = Duration::from_secs(1);

/// A source that has written continuously long enough to fill its history
/// (`DEFAULT_CAPACITY` samples, one per second): the deepest search a lag
/// lookup does. Returns the history and the time of its last sample.
fn full_position_history() -> (PositionHistory, Instant) {
    let start = Instant::now();
    let mut history = PositionHistory::default();
    let mut at = start;
    for i in 0..DEFAULT_CAPACITY as u64 {
        at = start + SECOND * i as u32;
        history.push(at, i * WRITE_RATE);
    }
    assert_eq!(history.len(), DEFAULT_CAPACITY);
    (history, at)
}

/// `PositionHistory` at its full size: a push (which also drops the oldest
/// sample), the lag of a replica 30 s behind (two binary searches and an
/// interpolation), of one caught up, and the source position at a moment.
fn position_history(c: &mut Criterion) {
    let mut group = c.benchmark_group("position_history");
    let (history, last) = full_position_history();
    let latest = history.latest().expect("a full history").position;
    let behind = latest - 30 * WRITE_RATE - WRITE_RATE / 3;

    group.bench_function("push_when_full", |b| {
        let (mut history, mut at, mut position) = (history.clone(), last, latest);
        b.iter(|| {
            at += SECOND;
            position += WRITE_RATE;
            history.push(at, position)
        })
    });
    group.bench_function("lag_30s_behind", |b| b.iter(|| history.lag(black_box(behind), last)));
    group.bench_function("lag_caught_up", |b| b.iter(|| history.lag(black_box(latest), last)));
    group.bench_function("position_at", |b| b.iter(|| history.position_at(black_box(last - SECOND * 600))));
    group.finish();
}

/// `BreachHistory` at its largest: lag rising for the whole retention (an
/// hour at one sample per second), so every sample is kept. A push (which
/// also drops one past the retention) and `above_since` for a limit half
/// way up.
fn breach_history(c: &mut Criterion) {
    let mut group = c.benchmark_group("breach_history");
    let start = Instant::now();
    let samples = RETENTION.as_secs();
    let mut history = BreachHistory::default();
    for i in 0..samples {
        history.push(start + SECOND * i as u32, i as f64);
    }
    let last = start + SECOND * (samples - 1) as u32;
    eprintln!("breach_history: {} entries after an hour of rising lag", history.len());

    group.bench_function("push_rising_when_full", |b| {
        let (mut history, mut at, mut value) = (history.clone(), last, (samples - 1) as f64);
        b.iter(|| {
            at += SECOND;
            value += 1.0;
            history.push(at, value)
        })
    });
    let limit = samples as f64 / 2.0;
    group.bench_function("above_since", |b| b.iter(|| history.above_since(black_box(limit))));
    group.finish();
}

/// The nodes of a deployment with `links` links (half PostgreSQL physical,
/// half Redis; each primary or master with one replica in each of the two
/// other regions) and the reports one polling round produces for them.
struct Deployment {
    specs: Vec<NodeSpec>,
    /// Per cluster: the source's node index and its replicas' indices.
    postgres: Vec<(usize, [usize; 2])>,
    redis: Vec<(usize, [usize; 2])>,
    start: Instant,
}

/// A distinct address per node, as discovery matches nodes by address.
fn host(node: usize) -> String {
    format!("10.{}.{}.{}", node / 62_500, node / 250 % 250, node % 250 + 1)
}

impl Deployment {
    fn new(links: usize) -> Self {
        let mut d = Deployment { specs: Vec::new(), postgres: Vec::new(), redis: Vec::new(), start: Instant::now() };
        for cluster in 0..links / 4 {
            let nodes = d.cluster(cluster, "pg", |h| {
                let url = format!("postgresql://replag@{h}:5432/postgres");
                Target::Postgres(PostgresTarget::new(tokio_postgres::Config::from_str(&url).expect("valid URL")))
            });
            d.postgres.push(nodes);
        }
        for cluster in 0..links / 4 {
            let nodes = d.cluster(cluster, "redis", |h| {
                let info = redis::IntoConnectionInfo::into_connection_info(format!("redis://{h}:6379"));
                Target::Redis(RedisTarget::server(info.expect("valid URL")))
            });
            d.redis.push(nodes);
        }
        d
    }

    /// Adds a source and two replicas, one per region.
    fn cluster(&mut self, cluster: usize, prefix: &str, target: impl Fn(&str) -> Target) -> (usize, [usize; 2]) {
        let mut add = |k: usize| {
            let region = REGIONS[(cluster + k) % REGIONS.len()];
            let index = self.specs.len();
            let target = target(&host(index));
            let node = Node {
                name: format!("{prefix}-{cluster:04}-{region}"),
                region: region.into(),
                system: target.system(),
                upstream: None,
                publishers: Default::default(),
                group: None,
            };
            self.specs.push(NodeSpec { node, target });
            index
        };
        (add(0), [add(1), add(2)])
    }

    /// Round `round` of polls: one report per node, a second apart per round.
    /// Sources write `WRITE_RATE` bytes a second; replicas are caught up,
    /// except every tenth 2 s behind and every fiftieth not answering after
    /// the first round.
    fn reports(&self, round: u64) -> (Vec<NodeReport>, Instant) {
        let at = self.start + SECOND * round as u32;
        let report = |node: usize, result: Result<Observation, PollFailure>| NodeReport {
            node,
            finished: at,
            finished_wall: SystemTime::now(),
            duration: Duration::from_millis(3),
            result: result.map(|observation| Sampled { at, observation }),
        };
        let replica_position = |source_position: u64, replica: usize| match replica % 10 {
            5 => source_position.saturating_sub(2 * WRITE_RATE),
            _ => source_position,
        };
        // Failing replicas answered once, so their links are known; then they
        // are gone for replag and their source alike: their links are down.
        let answers = |replica: usize| round == 0 || replica % 50 != 49;
        let timeout = || PollFailure::new(FailureKind::Timeout, "no answer within 5s");
        let mut reports = Vec::with_capacity(self.specs.len());
        for (cluster, &(primary, standbys)) in self.postgres.iter().enumerate() {
            let position = round * WRITE_RATE + cluster as u64;
            let system_identifier = format!("{}", 7_300_000_000_000_000_000u64 + cluster as u64);
            let streaming = standbys.iter().filter(|&&s| answers(s));
            let walsenders = streaming.map(|&s| walsender(s, &self.specs[s], replica_position(position, s)));
            let primary_observation = PgObservation {
                walsenders: walsenders.collect(),
                slots: standbys.iter().map(|&s| slot(s, &self.specs[s], position, answers(s))).collect(),
                ..pg_primary(system_identifier.clone(), position)
            };
            reports.push(report(primary, Ok(Observation::Postgres(primary_observation))));
            for s in standbys {
                let result = answers(s).then(|| {
                    let replayed = replica_position(position, s);
                    let receiver = wal_receiver(primary, &self.specs[s], replayed);
                    let standby = pg_standby(&system_identifier, replayed, &self.specs[s]);
                    Observation::Postgres(PgObservation { wal_receiver: Some(receiver), ..standby })
                });
                reports.push(report(s, result.ok_or_else(timeout)));
            }
        }
        for (cluster, &(master, replicas)) in self.redis.iter().enumerate() {
            let offset = round * WRITE_RATE + cluster as u64;
            let replid = format!("{:040x}", 0x5eed_0000 + cluster);
            let listed = replicas.iter().filter(|&&r| answers(r)).map(|&r| ConnectedReplica {
                ip: host(r),
                port: 6379,
                state: "online".into(),
                offset: replica_position(offset, r),
                ack_age: Some(0),
            });
            let master_observation =
                RedisObservation { replicas: listed.collect(), ..redis_node(&replid, offset, true) };
            reports.push(report(master, Ok(Observation::Redis(master_observation))));
            for r in replicas {
                let result = answers(r).then(|| {
                    let offset = replica_position(offset, r);
                    let replica = ReplicaState {
                        master_host: host(master),
                        master_port: 6379,
                        link_up: true,
                        last_io_seconds_ago: Some(0),
                        link_down_since_seconds: None,
                        sync_in_progress: false,
                        offset,
                    };
                    Observation::Redis(RedisObservation {
                        replica: Some(replica),
                        ..redis_node(&replid, offset, false)
                    })
                });
                reports.push(report(r, result.ok_or_else(timeout)));
            }
        }
        (reports, at)
    }
}

fn pg_primary(system_identifier: String, position: u64) -> PgObservation {
    PgObservation {
        version: "15.18 (Debian 15.18-0+deb12u1)".into(),
        version_num: 150_018,
        in_recovery: false,
        system_identifier,
        timeline: Some(1),
        current_lsn: Some(Lsn(position)),
        commit_mark: None,
        receive_lsn: None,
        replay_lsn: None,
        replay_paused: None,
        last_xact_replay_unix: None,
        cluster_name: String::new(),
        walsenders: Vec::new(),
        slots: Vec::new(),
        wal_receiver: None,
        subscriptions: Vec::new(),
        status_interval: Some(10.0),
        heartbeats: Default::default(),
        timeline_switch: None,
    }
}

fn pg_standby(system_identifier: &str, replayed: u64, spec: &NodeSpec) -> PgObservation {
    PgObservation {
        in_recovery: true,
        current_lsn: None,
        commit_mark: None,
        receive_lsn: Some(Lsn(replayed)),
        replay_lsn: Some(Lsn(replayed)),
        replay_paused: Some(false),
        cluster_name: spec.name.clone(),
        ..pg_primary(system_identifier.into(), 0)
    }
}

/// The walsender pid serving a standby: derived from its node index.
fn walsender_pid(standby: usize) -> i32 {
    standby as i32 + 1000
}

/// Each standby streams through a physical slot named after it.
fn slot_name(standby: &NodeSpec) -> String {
    standby.name.replace('-', "_")
}

/// The primary's `pg_stat_replication` row for a standby.
fn walsender(standby: usize, spec: &NodeSpec, replayed: u64) -> WalSender {
    WalSender {
        pid: walsender_pid(standby),
        application_name: spec.name.clone(),
        client_addr: Some(host(standby)),
        state: "streaming".into(),
        sync_state: "async".into(),
        sent_lsn: Some(Lsn(replayed)),
        write_lsn: Some(Lsn(replayed)),
        flush_lsn: Some(Lsn(replayed)),
        replay_lsn: Some(Lsn(replayed)),
        write_lag: Some(0.001),
        flush_lag: Some(0.002),
        replay_lag: Some(0.003),
        reply_time: Some(1_800_000_000.0),
    }
}

fn slot(standby: usize, spec: &NodeSpec, position: u64, active: bool) -> Slot {
    Slot {
        name: slot_name(spec),
        slot_type: "physical".into(),
        active,
        active_pid: active.then(|| walsender_pid(standby)),
        restart_lsn: Some(Lsn(position.saturating_sub(16 << 20))),
        confirmed_flush_lsn: None,
        wal_status: Some("reserved".into()),
        safe_wal_size: Some(1 << 30),
    }
}

fn wal_receiver(primary: usize, spec: &NodeSpec, replayed: u64) -> WalReceiver {
    WalReceiver {
        status: "streaming".into(),
        received_tli: Some(1),
        flushed_lsn: Some(Lsn(replayed)),
        last_msg_receipt_age: Some(0.05),
        slot_name: Some(slot_name(spec)),
        sender_host: Some(host(primary)),
        sender_port: Some(5432),
    }
}

fn redis_node(replid: &str, offset: u64, is_master: bool) -> RedisObservation {
    RedisObservation {
        version: "7.0.15".into(),
        run_id: format!("{offset:040x}"),
        tcp_port: Some(6379),
        is_master,
        replid: replid.into(),
        replid2: None,
        second_repl_offset: None,
        master_repl_offset: offset,
        data_mark: offset,
        backlog_size: Some(1 << 20),
        backlog_histlen: Some(1 << 20),
        replicas: Vec::new(),
        replica: None,
        sync_full: Some(0),
        sync_partial_ok: Some(0),
        sync_partial_err: Some(0),
        heartbeats: Default::default(),
    }
}

/// Rounds fed before measuring: the first, where every node answers, makes
/// every link known; in the second, failing replicas' links go down.
const WARM_UP_ROUNDS: u64 = 2;

/// Above this many links one round takes seconds (link derivation compares
/// nodes with nodes): it is timed once rather than sampled for minutes.
const SAMPLED_UP_TO: usize = 1_000;

/// One engine round for N links: ingest one report per node (1.5 N nodes),
/// then build the snapshot (links, lag, details) and extend the gates'
/// tracks from it. Reports are built outside the timing.
fn engine_round(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine_round");
    for &links in link_counts() {
        let deployment = Deployment::new(links);
        let mut engine = Engine::new(deployment.specs.clone(), SystemTime::now());
        let mut memory = Memory::default();
        let mut snapshot = None;
        for round in 0..WARM_UP_ROUNDS {
            let (reports, at) = deployment.reports(round);
            reports.into_iter().for_each(|r| engine.ingest(r));
            let s = engine.snapshot(at, SystemTime::now());
            memory.observe(&s);
            snapshot = Some(s);
        }
        let snapshot = snapshot.expect("warmed up");
        assert_eq!(snapshot.links.len(), links, "the engine sees every link");
        let down = snapshot.links.iter().filter(|l| !l.up).count();
        let behind = snapshot.links.iter().filter(|l| l.lag.is_some_and(|lag| lag.bytes > 0)).count();
        eprintln!("engine_round/{links} links: {down} down, {behind} behind their source");
        drop(snapshot);
        if links > SAMPLED_UP_TO {
            let (reports, at) = deployment.reports(WARM_UP_ROUNDS);
            let started = Instant::now();
            reports.into_iter().for_each(|r| engine.ingest(r));
            let snapshot = engine.snapshot(at, SystemTime::now());
            let tracks = memory.observe(&snapshot);
            let elapsed = started.elapsed();
            drop((snapshot, tracks));
            eprintln!("engine_round/{links}: {:.2} s for one round (timed once, not sampled)", elapsed.as_secs_f64());
            continue;
        }
        group.throughput(Throughput::Elements(links as u64));
        let mut round = WARM_UP_ROUNDS;
        group.bench_function(BenchmarkId::from_parameter(links), |b| {
            b.iter_batched(
                || {
                    round += 1;
                    deployment.reports(round)
                },
                |(reports, at)| {
                    reports.into_iter().for_each(|r| engine.ingest(r));
                    let snapshot = engine.snapshot(at, SystemTime::now());
                    let tracks = memory.observe(&snapshot);
                    (snapshot, tracks)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// What failover tracking adds to each snapshot while nothing fails: the
/// role facts (cloned here as the engine builds them: one per node) and the
/// tracker's pass over them and the links. Compare with `engine_round`.
fn failover_while_nothing_fails(c: &mut Criterion) {
    let mut group = c.benchmark_group("failover_per_snapshot");
    for &links in link_counts().iter().filter(|&&l| l <= SAMPLED_UP_TO) {
        let deployment = Deployment::new(links);
        let mut engine = Engine::new(deployment.specs.clone(), SystemTime::now());
        let mut snapshot = None;
        for round in 0..WARM_UP_ROUNDS {
            let (reports, at) = deployment.reports(round);
            reports.into_iter().for_each(|r| engine.ingest(r));
            snapshot = Some(engine.snapshot(at, SystemTime::now()));
        }
        let snapshot = snapshot.expect("warmed up");
        assert!(snapshot.failover.split_brains.is_empty() && snapshot.failover.events.is_empty());
        let mut tracker = Tracker::new(Journal::new(None), Vec::new());
        tracker.observe(&snapshot.roles, &snapshot.links, snapshot.taken, SystemTime::now());
        group.throughput(Throughput::Elements(links as u64));
        group.bench_function(BenchmarkId::new("role_facts", links), |b| b.iter(|| black_box(snapshot.roles.clone())));
        group.bench_function(BenchmarkId::new("tracker", links), |b| {
            b.iter(|| tracker.observe(black_box(&snapshot.roles), &snapshot.links, snapshot.taken, SystemTime::now()))
        });
    }
    group.finish();
}

fn main() {
    common::main(&[position_history, breach_history, engine_round, failover_while_nothing_fails]);
}
