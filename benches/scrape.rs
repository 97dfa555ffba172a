//! What a request costs: rendering `/metrics` for a snapshot, and evaluating
//! a deploy gate against one, at 100, 1,000 and 10,000 links.
//!
//! Both read a snapshot the engine has already built, so they are measured
//! against a fixture snapshot rather than a running engine. A scrape renders
//! once per snapshot (later scrapes of the same snapshot share the text);
//! a `/gate` request evaluates on every call.

mod common;

use std::alloc::{GlobalAlloc, Layout, System as SystemAllocator};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput};
use replag::gate::{self, GateSpec, LinkTrack, Tracked};
use replag::http::InForce;
use replag::model::{FailureKind, LagView, LinkKind, NodeView, PollFailure, System};
use replag::snapshot::Snapshot;
use replag::systems::postgres::{PgLinkDetail, PgServerView, PgSlotView};
use replag::systems::redis::{RedisLinkDetail, RedisServerView};
use replag::systems::Link;

use common::{link_counts, REGIONS};

/// The gate the benchmarks use: a typical deploy gate.
const GATE_QUERY: &str = "max_lag=500ms&for=30s";
const DEFAULT_MAX_DATA_AGE: Duration = Duration::from_secs(10);
/// Seconds of lag history each link's track holds (one sample per second).
const TRACK_SECONDS: usize = 300;
const SECOND: Duration = Duration::from_secs(1);

/// The system allocator, counting allocations (a `realloc` counts as one)
/// while `COUNTING` is set, to report allocations per render. Off, it costs
/// one relaxed load per allocation, so the timed runs are not skewed.
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static ALLOCATED_BYTES: AtomicUsize = AtomicUsize::new(0);

// Safety: every call is passed unchanged to the system allocator.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { SystemAllocator.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { SystemAllocator.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { SystemAllocator.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { SystemAllocator.dealloc(ptr, layout) }
    }
}

fn count(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(bytes, Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Heap allocations (and bytes requested) made by `f`; single-threaded use only.
fn allocations_of<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    ALLOCATIONS.store(0, Ordering::Relaxed);
    ALLOCATED_BYTES.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let out = f();
    COUNTING.store(false, Ordering::Relaxed);
    (out, ALLOCATIONS.load(Ordering::Relaxed), ALLOCATED_BYTES.load(Ordering::Relaxed))
}

/// Deterministic pseudo-random numbers (xorshift64*): fixtures vary from
/// link to link the same way on every run, without a dependency.
struct Noise(u64);

impl Noise {
    fn new(seed: u64) -> Self {
        Noise(seed | 1)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How a fixture link is doing.
#[derive(Clone, Copy)]
enum Health {
    /// Lag in the tens of milliseconds.
    CaughtUp,
    /// Over the gate's 500 ms for this many seconds (some shorter than its
    /// `for`, some longer).
    Lagging { seconds_over: usize },
    /// The replica stopped answering.
    Down,
}

/// About 10 % of links lag and 2 % are down: a gate has reasons to write
/// and histories to search, as in a real incident.
fn health_of(link_index: usize) -> Health {
    match link_index % 50 {
        49 => Health::Down,
        i if i % 10 == 5 => Health::Lagging { seconds_over: 10 + link_index * 7 % 80 },
        _ => Health::CaughtUp,
    }
}

/// A snapshot as the engine publishes it for `links` links: half PostgreSQL
/// physical, half Redis, each primary or master with one replica in each of
/// the two other regions, with the gates' memory of its links; and the
/// moment its lag tracks end, to evaluate gates at.
fn snapshot(links: usize) -> (Tracked, Instant) {
    let now = Instant::now() + SECOND * TRACK_SECONDS as u32;
    let wall = SystemTime::now();
    let mut snapshot = Snapshot::empty(wall - Duration::from_secs(86_400));
    snapshot.generated_at = wall;
    let mut noise = Noise::new(links as u64);
    let mut tracks = Vec::new();
    let clusters_per_system = links / 4;
    for cluster in 0..clusters_per_system {
        add_postgres_cluster(&mut snapshot, &mut tracks, cluster, now, wall, &mut noise);
    }
    for cluster in 0..clusters_per_system {
        add_redis_cluster(&mut snapshot, &mut tracks, cluster, now, wall, &mut noise);
    }
    assert_eq!(snapshot.links.len(), links, "the fixture has the links asked for");
    (Tracked { snapshot: Arc::new(snapshot), tracks: tracks.into_iter().collect() }, now)
}

/// The source and the two replica regions of cluster `cluster`.
fn regions_of(cluster: usize) -> (&'static str, [&'static str; 2]) {
    let r = |k: usize| REGIONS[(cluster + k) % REGIONS.len()];
    (r(0), [r(1), r(2)])
}

fn node_view(system: System, name: &str, region: &str, role: &str, version: &str, wall: SystemTime) -> NodeView {
    NodeView {
        system,
        name: name.to_string(),
        region: region.to_string(),
        up: true,
        role: Some(role.to_string()),
        version: Some(version.to_string()),
        identity: Vec::new(),
        failure: None,
        last_poll_duration_seconds: Some(0.003),
        last_success: Some(wall),
        polls_total: 86_400,
        position_reads_total: 0,
        failures_total: [2, 0, 1, 0, 0],
    }
}

/// A node whose polls time out (the replica of a down link).
fn mark_down(node: &mut NodeView) {
    node.up = false;
    node.failure = Some(PollFailure::new(FailureKind::Timeout, "no answer within 5s"));
    node.last_poll_duration_seconds = Some(5.0);
}

/// The link's lag now and its track: `TRACK_SECONDS` one-second samples
/// ending at `now`, noise around a few milliseconds, then for a lagging link
/// a climb over the gate's limit.
fn lag_and_track(health: Health, now: Instant, noise: &mut Noise) -> (LagView, Arc<LinkTrack>) {
    let mut track = LinkTrack::default();
    let mut seconds = 0.0;
    for i in 0..TRACK_SECONDS {
        let ago = (TRACK_SECONDS - 1 - i) as u64;
        seconds = match health {
            Health::Lagging { seconds_over } if (ago as usize) < seconds_over => {
                0.6 + (seconds_over - ago as usize) as f64 * 0.05
            }
            Health::Down if ago < 120 => 120.0 - ago as f64,
            _ => noise.next_f64() * 0.05,
        };
        let at = now - SECOND * ago as u32;
        track.seconds.push(at, seconds);
        track.bytes.push(at, seconds * 2e6);
    }
    let lag = LagView { bytes: (seconds * 2e6) as u64, seconds, lower_bound: false, resolution_seconds: Some(0.025) };
    (lag, Arc::new(track))
}

fn add_postgres_cluster(
    s: &mut Snapshot,
    tracks: &mut Vec<Arc<LinkTrack>>,
    cluster: usize,
    now: Instant,
    wall: SystemTime,
    noise: &mut Noise,
) {
    let (primary_region, replica_regions) = regions_of(cluster);
    let primary = format!("pg-{cluster:04}-{primary_region}");
    let version = "15.18 (Debian 15.18-0+deb12u1)";
    let mut primary_view = node_view(System::Postgres, &primary, primary_region, "primary", version, wall);
    let system_identifier = format!("{}", 7_300_000_000_000_000_000u64 + cluster as u64);
    primary_view.identity = vec![("system_identifier".into(), system_identifier.clone())];
    s.nodes.push(primary_view);
    let primary_lsn = 0x3_0000_0000 + cluster as u64 * 4096;
    s.details.postgres.servers.push(PgServerView {
        node: primary.clone(),
        region: primary_region.into(),
        timeline: Some(1),
        current_lsn: Some(primary_lsn),
        receive_lsn: None,
        replay_lsn: None,
        replay_paused: None,
        last_xact_replay_unix: None,
        wal_receiver_status: None,
        wal_receiver_last_message_age_seconds: None,
    });
    for region in replica_regions {
        let health = health_of(s.links.len());
        let standby = format!("pg-{cluster:04}-{region}");
        let mut standby_view = node_view(System::Postgres, &standby, region, "standby", version, wall);
        standby_view.identity = vec![("system_identifier".into(), system_identifier.clone())];
        let (lag, track) = lag_and_track(health, now, noise);
        let mut link = Link::new(
            System::Postgres,
            LinkKind::Physical,
            (primary.clone(), primary_region.into()),
            (standby.clone(), region.into()),
        );
        link.lag = Some(lag);
        tracks.push(track);
        let up = !matches!(health, Health::Down);
        s.details.postgres.slots.push(PgSlotView {
            node: primary.clone(),
            region: primary_region.into(),
            slot: standby.replace('-', "_"),
            slot_type: "physical".into(),
            active: up,
            retained_bytes: Some(lag.bytes + (16 << 20)),
            wal_status: Some("reserved".into()),
            safe_wal_size_bytes: Some(1 << 30),
        });
        if up {
            link.up = true;
            link.state = "streaming".into();
            link.data_age_seconds = Some(0.4);
            let stage = |fraction: f64| LagView {
                bytes: (lag.bytes as f64 * fraction) as u64,
                seconds: lag.seconds * fraction,
                ..lag
            };
            link.detail.postgres = Some(PgLinkDetail {
                state: "streaming".into(),
                sync_state: "async".into(),
                stages: vec![("sent", stage(0.1)), ("write", stage(0.3)), ("flush", stage(0.5)), ("replay", lag)],
                reported: vec![("write", 0.001), ("flush", 0.002), ("replay", lag.seconds)],
            });
            s.details.postgres.servers.push(PgServerView {
                node: standby.clone(),
                region: region.into(),
                timeline: Some(1),
                current_lsn: None,
                receive_lsn: Some(primary_lsn - lag.bytes / 2),
                replay_lsn: Some(primary_lsn - lag.bytes),
                replay_paused: Some(false),
                last_xact_replay_unix: Some(replag::model::to_unix(wall) - lag.seconds),
                wal_receiver_status: Some("streaming".into()),
                wal_receiver_last_message_age_seconds: Some(0.05),
            });
        } else {
            mark_down(&mut standby_view);
            link.state = "down".into();
            link.reason = Some(format!(
                "replica unreachable (timeout: no answer within 5s) and not in {primary}'s pg_stat_replication"
            ));
            link.data_age_seconds = Some(120.0);
            link.down_seconds = Some(120.0);
        }
        s.nodes.push(standby_view);
        s.links.push(link);
    }
}

fn add_redis_cluster(
    s: &mut Snapshot,
    tracks: &mut Vec<Arc<LinkTrack>>,
    cluster: usize,
    now: Instant,
    wall: SystemTime,
    noise: &mut Noise,
) {
    let (master_region, replica_regions) = regions_of(cluster);
    let master = format!("redis-{cluster:04}-{master_region}");
    let replication_id = format!("{:040x}", 0x5eed_0000 + cluster);
    let identity = |run_id: usize| {
        vec![("replication_id".into(), replication_id.clone()), ("run_id".into(), format!("{run_id:040x}"))]
    };
    let mut master_view = node_view(System::Redis, &master, master_region, "master", "7.0.15", wall);
    master_view.identity = identity(cluster * 3);
    s.nodes.push(master_view);
    let master_offset = 1_000_000_000 + cluster as u64 * 4096;
    s.details.redis.servers.push(RedisServerView {
        node: master.clone(),
        region: master_region.into(),
        offset: master_offset,
        connected_replicas: Some(2),
        backlog_size: Some(1 << 20),
        backlog_histlen: Some(1 << 20),
        sync_full: Some(2),
        sync_partial_ok: Some(1),
        sync_partial_err: Some(0),
        master_link_up: None,
        master_last_io_seconds: None,
        master_link_down_since_seconds: None,
        master_sync_in_progress: None,
    });
    for (k, region) in replica_regions.into_iter().enumerate() {
        let health = health_of(s.links.len());
        let replica = format!("redis-{cluster:04}-{region}");
        let mut replica_view = node_view(System::Redis, &replica, region, "replica", "7.0.15", wall);
        replica_view.identity = identity(cluster * 3 + 1 + k);
        let (lag, track) = lag_and_track(health, now, noise);
        let mut link = Link::new(
            System::Redis,
            LinkKind::Replica,
            (master.clone(), master_region.into()),
            (replica.clone(), region.into()),
        );
        link.lag = Some(lag);
        tracks.push(track);
        if matches!(health, Health::Down) {
            mark_down(&mut replica_view);
            link.state = "down".into();
            link.reason =
                Some(format!("replica unreachable (timeout: no answer within 5s) and not listed by {master}"));
            link.data_age_seconds = Some(120.0);
            link.down_seconds = Some(120.0);
        } else {
            link.up = true;
            link.state = "up".into();
            link.data_age_seconds = Some(0.4);
            link.detail.redis = Some(RedisLinkDetail { state: "online".into(), ack_age_seconds: Some(0) });
            s.details.redis.servers.push(RedisServerView {
                node: replica.clone(),
                region: region.into(),
                offset: master_offset - lag.bytes,
                connected_replicas: None,
                backlog_size: Some(1 << 20),
                backlog_histlen: Some(1 << 20),
                sync_full: Some(0),
                sync_partial_ok: Some(0),
                sync_partial_err: Some(0),
                master_link_up: Some(true),
                master_last_io_seconds: Some(0),
                master_link_down_since_seconds: None,
                master_sync_in_progress: Some(false),
            });
        }
        s.nodes.push(replica_view);
        s.links.push(link);
    }
}

fn gate_spec() -> GateSpec {
    GateSpec::from_query(GATE_QUERY, DEFAULT_MAX_DATA_AGE).expect("valid gate query")
}

/// `/metrics` text for N links, uncached (what the first scrape of each
/// snapshot pays), with no named gates: each configured gate adds one
/// `gate_evaluate` to a render. Also prints, once per size, the text's size,
/// series and allocations per render.
fn metrics_render(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics_render");
    for &links in link_counts() {
        let (snapshot, _) = snapshot(links);
        let no_gates = InForce::default();
        let (text, allocations, allocated) = allocations_of(|| replag::http::metrics::render(&snapshot, &no_gates));
        let series = text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count();
        let per_link = series as f64 / links as f64;
        eprintln!(
            "metrics_render/{links} links: {} bytes, {series} series ({per_link:.1} per link); \
             per render {allocations} allocations, {allocated} bytes allocated",
            text.len(),
        );
        group.throughput(Throughput::Elements(links as u64));
        group.bench_with_input(BenchmarkId::from_parameter(links), &snapshot, |b, s| {
            b.iter(|| replag::http::metrics::render(s, &no_gates))
        });
    }
    group.finish();
}

/// gzip of the `/metrics` text for N links (what the first scrape that asks
/// for gzip pays per snapshot; later ones share it). Prints the ratio.
fn metrics_gzip(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics_gzip");
    for &links in link_counts() {
        let (snapshot, _) = snapshot(links);
        let text = replag::http::metrics::render(&snapshot, &InForce::default());
        let zipped = replag::http::metrics::gzip(text.as_bytes());
        eprintln!(
            "metrics_gzip/{links} links: {} bytes -> {} bytes ({:.1}x)",
            text.len(),
            zipped.len(),
            text.len() as f64 / zipped.len() as f64
        );
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(links), &text, |b, t| {
            b.iter(|| replag::http::metrics::gzip(black_box(t.as_bytes())))
        });
    }
    group.finish();
}

/// One `/gate` evaluation (`max_lag=500ms&for=30s`, every link in scope)
/// for N links: the verdict of each link, before JSON encoding.
fn gate_evaluate(c: &mut Criterion) {
    let mut group = c.benchmark_group("gate_evaluate");
    let spec = gate_spec();
    for &links in link_counts() {
        let (snapshot, now) = snapshot(links);
        let verdict = gate::evaluate(&spec, &snapshot.snapshot, &snapshot.tracks, now, SystemTime::now());
        eprintln!("gate_evaluate/{links} links: {}", verdict.summary);
        group.throughput(Throughput::Elements(links as u64));
        group.bench_with_input(BenchmarkId::from_parameter(links), &snapshot, |b, s| {
            b.iter(|| gate::evaluate(&spec, black_box(&s.snapshot), &s.tracks, now, SystemTime::now()))
        });
    }
    group.finish();
}

fn main() {
    common::main(&[metrics_render, metrics_gzip, gate_evaluate]);
}
