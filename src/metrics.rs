//! `/metrics`: the snapshot in Prometheus text format. Families and labels
//! are the contract of docs/metrics.md; dashboards and alerts rely on them.

use hyper::body::Bytes;

use std::cell::RefCell;

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::TextEncoder;

use crate::server::Gates;
use crate::snapshot::{to_unix, LinkView, NodeView, Snapshot};
use crate::sources::FailureKind;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const NODE_LABELS: &[&str] = &["system", "node", "node_region"];
const LINK_LABELS: &[&str] = &["system", "kind", "source", "source_region", "replica", "replica_region"];
const WAL_STATUSES: &[&str] = &["reserved", "extended", "unreserved", "lost"];

pub fn build_revision() -> &'static str {
    option_env!("REPLAG_GIT_REVISION").unwrap_or("unknown")
}

/// The snapshot's metrics text, rendered once (per gates in force) and
/// shared by every scrape without a copy.
pub fn rendered(snapshot: &Snapshot, gates: &Gates) -> Bytes {
    let key = gates as *const Gates as usize;
    // Most scrapes find it rendered: no lock wait, no thread hand-off.
    if let Ok(cache) = snapshot.rendered_metrics.try_lock() {
        if let Some((k, text)) = &*cache {
            if *k == key {
                return text.clone();
            }
        }
    }
    // Render (or wait for the scrape that is rendering) off the workers.
    crate::cpu::heavy(|| {
        let mut cache = snapshot.rendered_metrics.lock().unwrap_or_else(|e| e.into_inner());
        match &*cache {
            Some((k, text)) if *k == key => text.clone(),
            _ => {
                let text = Bytes::from(render(snapshot, gates));
                *cache = Some((key, text.clone()));
                text
            }
        }
    })
}

/// The families of one render, built as the prometheus crate's metric
/// structs and written by its `TextEncoder`. (Through a `Registry` of
/// `GaugeVec`s — a `Desc`, a hash and a lock per series, then a `gather` that
/// copies everything — a render cost ~9 µs and 43 allocations per series.)
#[derive(Default)]
struct Families {
    families: RefCell<Vec<FamilyData>>,
}

struct FamilyData {
    name: String,
    help: String,
    kind: MetricType,
    label_names: Vec<String>,
    /// (label values, value) in the order set; at encoding, setting the same
    /// labels again replaces the value (a counter adds to it), as with the
    /// crate's own vectors.
    series: Vec<(Vec<String>, f64)>,
}

/// A family to set series of.
#[derive(Clone, Copy)]
struct Family<'a> {
    families: &'a Families,
    index: usize,
}

/// One series of a family: set it (or, for a counter, add to it).
struct Series<'a> {
    family: Family<'a>,
    values: Vec<String>,
}

impl<'a> Family<'a> {
    fn with_label_values(&self, values: &[&str]) -> Series<'a> {
        let values = values.iter().map(|v| v.to_string()).collect();
        Series { family: *self, values }
    }
}

impl Series<'_> {
    fn set(self, value: f64) {
        self.record(value);
    }

    /// For a counter: encoding sums what was recorded for the same labels.
    fn inc_by(self, n: u64) {
        self.record(n as f64);
    }

    fn record(self, value: f64) {
        let mut families = self.family.families.families.borrow_mut();
        let family = &mut families[self.family.index];
        debug_assert_eq!(self.values.len(), family.label_names.len(), "{}: label count", family.name);
        family.series.push((self.values, value));
    }
}

impl Families {
    fn family(&self, name: &str, help: &str, labels: &[&str], kind: MetricType) -> Family<'_> {
        let mut families = self.families.borrow_mut();
        debug_assert!(families.iter().all(|f| f.name != name), "metric names are unique: {name}");
        families.push(FamilyData {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            label_names: labels.iter().map(|l| l.to_string()).collect(),
            series: Vec::new(),
        });
        Family { families: self, index: families.len() - 1 }
    }

    fn gauge(&self, name: &str, help: &str, labels: &[&str]) -> Family<'_> {
        self.family(name, help, labels, MetricType::GAUGE)
    }

    /// A family without labels: its one series.
    fn plain_gauge(&self, name: &str, help: &str) -> Series<'_> {
        self.gauge(name, help, &[]).with_label_values(&[])
    }

    fn counter(&self, name: &str, help: &str, labels: &[&str]) -> Family<'_> {
        self.family(name, help, labels, MetricType::COUNTER)
    }

    /// The text exposition format, families by name, series by label values;
    /// families without series are left out (as a registry leaves them).
    fn encode(self) -> String {
        let mut families = self.families.into_inner();
        families.sort_by(|a, b| a.name.cmp(&b.name));
        let protos: Vec<MetricFamily> = families
            .into_iter()
            .filter(|f| !f.series.is_empty())
            .map(|f| {
                let mut series = f.series;
                // Stable: of equal label values, the one set last comes last.
                series.sort_by(|a, b| a.0.cmp(&b.0));
                series.dedup_by(|later, earlier| {
                    let same = later.0 == earlier.0;
                    if same {
                        earlier.1 = if f.kind == MetricType::COUNTER { earlier.1 + later.1 } else { later.1 };
                    }
                    same
                });
                let metrics = series
                    .into_iter()
                    .map(|(values, value)| {
                        let labels = f
                            .label_names
                            .iter()
                            .zip(values)
                            .map(|(name, value)| {
                                let mut pair = LabelPair::default();
                                pair.set_name(name.clone());
                                pair.set_value(value);
                                pair
                            })
                            .collect();
                        let mut metric = Metric::from_label(labels);
                        match f.kind {
                            MetricType::COUNTER => {
                                let mut counter = Counter::default();
                                counter.set_value(value);
                                metric.set_counter(counter);
                            }
                            _ => {
                                let mut gauge = Gauge::default();
                                gauge.set_value(value);
                                metric.set_gauge(gauge);
                            }
                        }
                        metric
                    })
                    .collect();
                let mut family = MetricFamily::default();
                family.set_name(f.name);
                family.set_help(f.help);
                family.set_field_type(f.kind);
                family.set_metric(metrics);
                family
            })
            .collect();
        TextEncoder::new().encode_to_string(&protos).expect("text encoding cannot fail")
    }
}

fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

fn node_values(n: &NodeView) -> [&str; 3] {
    [n.system.as_str(), &n.name, &n.region]
}

fn link_values(l: &LinkView) -> [&str; 6] {
    [l.system.as_str(), l.kind.as_str(), &l.source, &l.source_region, &l.replica, &l.replica_region]
}

fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

pub fn render(s: &Snapshot, gates: &Gates) -> String {
    let f = Families::default();

    let gate_pass =
        f.gauge("replag_gate_pass", "1 if the configured gate passes now, else 0 (see /gate/<gate>).", &["gate"]);
    let (now, wall) = (std::time::Instant::now(), std::time::SystemTime::now());
    for (name, spec) in &gates.named {
        gate_pass.with_label_values(&[name]).set(bool_value(crate::gate::evaluate(spec, s, now, wall).pass));
    }

    let build = f.gauge("replag_build_info", "replag version and revision; always 1.", &["version", "revision"]);
    build.with_label_values(&[env!("CARGO_PKG_VERSION"), build_revision()]).set(1.0);

    if let Some(shard) = gates.shard {
        let info = f.gauge(
            "replag_shard_info",
            "This instance polls shard `index` of `count` (0-based); always 1. Absent when not sharded.",
            &["index", "count"],
        );
        info.with_label_values(&[&shard.shard.index.to_string(), &shard.shard.count.to_string()]).set(1.0);
    }

    if let Some((ok, at)) = gates.last_reload {
        let help = "1 if the last SIGHUP reload of the config was taken, 0 if it was refused.";
        f.plain_gauge("replag_config_last_reload_successful", help).set(bool_value(ok));
        f.plain_gauge("replag_config_last_reload_timestamp_seconds", "Unix time of the last SIGHUP reload attempt.")
            .set(to_unix(at));
    }

    // ---- nodes
    let node_up = f.gauge("replag_node_up", "1 if the last poll of the node succeeded, else 0.", NODE_LABELS);
    let node_info = f.gauge(
        "replag_node_info",
        "Identity of a node as of its last successful poll; always 1.",
        &with(NODE_LABELS, &["role", "version", "system_identifier", "replication_id"]),
    );
    let poll_duration = f.gauge(
        "replag_poll_duration_seconds",
        "Duration of the last poll of the node, including any reconnect.",
        NODE_LABELS,
    );
    let last_success = f.gauge(
        "replag_node_last_success_timestamp_seconds",
        "Unix time of the last successful poll of the node.",
        NODE_LABELS,
    );
    let failing = f.gauge(
        "replag_node_failing",
        "1 for the reason the last poll failed (connect, auth, timeout, query, protocol), 0 for the others.",
        &with(NODE_LABELS, &["reason"]),
    );
    let polls = f.counter("replag_node_polls_total", "Polls of the node since replag started.", NODE_LABELS);
    let failures = f.counter(
        "replag_node_poll_failures_total",
        "Failed polls of the node since replag started, by reason.",
        &with(NODE_LABELS, &["reason"]),
    );
    for n in &s.nodes {
        let v = node_values(n);
        node_up.with_label_values(&v).set(bool_value(n.up));
        if let Some(role) = &n.role {
            let version = n.version.as_deref().unwrap_or("");
            let id = |key: &str| n.identity.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str());
            node_info
                .with_label_values(&[v[0], v[1], v[2], role, version, id("system_identifier"), id("replication_id")])
                .set(1.0);
        }
        if let Some(d) = n.last_poll_duration_seconds {
            poll_duration.with_label_values(&v).set(d);
        }
        if let Some(t) = n.last_success {
            last_success.with_label_values(&v).set(to_unix(t));
        }
        polls.with_label_values(&v).inc_by(n.polls_total);
        for (i, kind) in FailureKind::ALL.iter().enumerate() {
            let labels = [v[0], v[1], v[2], kind.as_str()];
            let current = n.failure.as_ref().is_some_and(|f| f.kind == *kind);
            failing.with_label_values(&labels).set(bool_value(current));
            failures.with_label_values(&labels).inc_by(n.failures_total[i]);
        }
    }

    // ---- links
    let lag_seconds = f.gauge(
        "replag_lag_seconds",
        "Seconds the replica trails its source (apply/replay stage), measured on replag's clock from the source's position history.",
        LINK_LABELS,
    );
    let lag_bytes =
        f.gauge("replag_lag_bytes", "Bytes the replica trails its source (apply/replay stage).", LINK_LABELS);
    let lower_bound = f.gauge(
        "replag_lag_lower_bound",
        "1 if replag_lag_seconds is a lower bound: the replica is older than the source history replag keeps.",
        LINK_LABELS,
    );
    let link_up = f.gauge("replag_link_up", "1 if the link is connected and streaming, else 0.", LINK_LABELS);
    let data_age = f.gauge(
        "replag_link_data_age_seconds",
        "Age of the replica position the link's lag was computed from.",
        LINK_LABELS,
    );
    let down_seconds = f.gauge(
        "replag_link_down_seconds",
        "Seconds replag has seen the link down without a break; 0 while it is up.",
        LINK_LABELS,
    );
    let redis_link = f.gauge(
        "replag_redis_replica_info",
        "The master's INFO view of a Redis replica: its state (online, wait_bgsave, ...); always 1.",
        &with(LINK_LABELS, &["state"]),
    );
    let ack_age = f.gauge(
        "replag_redis_replica_ack_age_seconds",
        "Seconds since the replica last ACKed to its master (the 'lag' field of INFO; a liveness signal, not data lag).",
        LINK_LABELS,
    );
    let stage_bytes = f.gauge(
        "replag_pg_stage_lag_bytes",
        "PostgreSQL physical link: bytes behind the root primary per stage (sent, write, flush, replay), from the upstream's pg_stat_replication.",
        &with(LINK_LABELS, &["stage"]),
    );
    let stage_seconds = f.gauge(
        "replag_pg_stage_lag_seconds",
        "PostgreSQL physical link: seconds behind the root primary per stage, from the upstream's pg_stat_replication.",
        &with(LINK_LABELS, &["stage"]),
    );
    let reported = f.gauge(
        "replag_pg_reported_lag_seconds",
        "PostgreSQL's own write_lag/flush_lag/replay_lag (absent while PostgreSQL reports NULL; stale when idle).",
        &with(LINK_LABELS, &["stage"]),
    );
    let walsender = f.gauge(
        "replag_pg_walsender_info",
        "The upstream's pg_stat_replication state and sync_state for the link; always 1.",
        &with(LINK_LABELS, &["state", "sync_state"]),
    );
    for l in &s.links {
        let v = link_values(l);
        link_up.with_label_values(&v).set(bool_value(l.up));
        if let Some(lag) = l.lag {
            lag_seconds.with_label_values(&v).set(lag.seconds);
            lag_bytes.with_label_values(&v).set(lag.bytes as f64);
            lower_bound.with_label_values(&v).set(bool_value(lag.lower_bound));
        }
        if let Some(age) = l.data_age_seconds {
            data_age.with_label_values(&v).set(age);
        }
        down_seconds.with_label_values(&v).set(l.down_seconds.unwrap_or(0.0));
        if let Some(r) = &l.redis {
            redis_link.with_label_values(&with(&v, &[&r.state])).set(1.0);
            if let Some(age) = r.ack_age_seconds {
                ack_age.with_label_values(&v).set(age as f64);
            }
        }
        if let Some(pg) = &l.postgres {
            for (stage, lag) in &pg.stages {
                let labels = with(&v, &[stage]);
                stage_bytes.with_label_values(&labels).set(lag.bytes as f64);
                stage_seconds.with_label_values(&labels).set(lag.seconds);
            }
            for (stage, seconds) in &pg.reported {
                reported.with_label_values(&with(&v, &[stage])).set(*seconds);
            }
            walsender.with_label_values(&with(&v, &[&pg.state, &pg.sync_state])).set(1.0);
        }
    }

    // ---- PostgreSQL servers and slots
    let position = f.gauge(
        "replag_pg_wal_position_bytes",
        "WAL position in bytes: current (primary: pg_current_wal_lsn), receive and replay (standby).",
        &with(NODE_LABELS, &["position"]),
    );
    let timeline =
        f.gauge("replag_pg_timeline", "Timeline the server writes (primary) or receives (standby).", NODE_LABELS);
    let paused = f.gauge("replag_pg_replay_paused", "1 if WAL replay is paused on the standby.", NODE_LABELS);
    let last_replay = f.gauge(
        "replag_pg_last_xact_replay_timestamp_seconds",
        "pg_last_xact_replay_timestamp() as Unix time (the commit time on the primary's clock); not a lag figure.",
        NODE_LABELS,
    );
    let receiver_up = f.gauge(
        "replag_pg_wal_receiver_streaming",
        "1 if the standby's WAL receiver is streaming, else 0.",
        NODE_LABELS,
    );
    let receiver_age = f.gauge(
        "replag_pg_wal_receiver_last_message_age_seconds",
        "Seconds since the standby's WAL receiver last heard from its upstream (on the standby's clock).",
        NODE_LABELS,
    );
    for srv in &s.postgres.servers {
        let v = ["postgres", srv.node.as_str(), srv.region.as_str()];
        for (name, lsn) in [("current", srv.current_lsn), ("receive", srv.receive_lsn), ("replay", srv.replay_lsn)] {
            if let Some(lsn) = lsn {
                position.with_label_values(&with(&v, &[name])).set(lsn as f64);
            }
        }
        if let Some(t) = srv.timeline {
            timeline.with_label_values(&v).set(f64::from(t));
        }
        if let Some(p) = srv.replay_paused {
            paused.with_label_values(&v).set(bool_value(p));
        }
        if let Some(t) = srv.last_xact_replay_unix {
            last_replay.with_label_values(&v).set(t);
        }
        if let Some(status) = &srv.wal_receiver_status {
            receiver_up.with_label_values(&v).set(bool_value(status == "streaming"));
        } else if srv.replay_lsn.is_some() {
            receiver_up.with_label_values(&v).set(0.0);
        }
        if let Some(age) = srv.wal_receiver_last_message_age_seconds {
            receiver_age.with_label_values(&v).set(age);
        }
    }
    let slot_labels = with(NODE_LABELS, &["slot", "slot_type"]);
    let retained = f.gauge(
        "replag_pg_slot_retained_bytes",
        "WAL held back by the replication slot: the server's position minus the slot's restart_lsn (disk risk).",
        &slot_labels,
    );
    let active = f.gauge("replag_pg_slot_active", "1 if a consumer is connected to the slot.", &slot_labels);
    let safe_size = f.gauge(
        "replag_pg_slot_safe_wal_size_bytes",
        "Bytes that can still be written before the slot is in danger of losing WAL (PostgreSQL 13+, with max_slot_wal_keep_size).",
        &slot_labels,
    );
    let wal_status = f.gauge(
        "replag_pg_slot_wal_status",
        "1 for the slot's wal_status (reserved, extended, unreserved, lost), 0 for the others (PostgreSQL 13+).",
        &with(&slot_labels, &["wal_status"]),
    );
    for slot in &s.postgres.slots {
        let v = ["postgres", slot.node.as_str(), slot.region.as_str(), slot.slot.as_str(), slot.slot_type.as_str()];
        if let Some(bytes) = slot.retained_bytes {
            retained.with_label_values(&v).set(bytes as f64);
        }
        active.with_label_values(&v).set(bool_value(slot.active));
        if let Some(size) = slot.safe_wal_size_bytes {
            safe_size.with_label_values(&v).set(size as f64);
        }
        if let Some(current) = &slot.wal_status {
            for status in WAL_STATUSES {
                wal_status.with_label_values(&with(&v, &[status])).set(bool_value(current == status));
            }
        }
    }

    render_subscriptions(&f, s);
    render_redis(&f, s);
    render_seaweedfs(&f, s);

    f.encode()
}

fn render_redis(f: &Families, s: &Snapshot) {
    let offset = f.gauge(
        "replag_redis_repl_offset_bytes",
        "Replication offset: master_repl_offset on a master, slave_repl_offset (applied) on a replica.",
        NODE_LABELS,
    );
    let connected = f.gauge("replag_redis_connected_replicas", "Replicas connected to the master now.", NODE_LABELS);
    let backlog =
        f.gauge("replag_redis_backlog_size_bytes", "Replication backlog size (repl_backlog_size).", NODE_LABELS);
    let histlen =
        f.gauge("replag_redis_backlog_histlen_bytes", "Bytes of history in the replication backlog.", NODE_LABELS);
    let link_up =
        f.gauge("replag_redis_master_link_up", "Replica: 1 if master_link_status is up, else 0.", NODE_LABELS);
    let last_io = f.gauge(
        "replag_redis_master_last_io_seconds",
        "Replica: seconds since the last interaction with its master (master_last_io_seconds_ago).",
        NODE_LABELS,
    );
    let down_since = f.gauge(
        "replag_redis_master_link_down_since_seconds",
        "Replica: seconds its link to the master has been down, as the replica reports (absent while up).",
        NODE_LABELS,
    );
    let syncing = f.gauge(
        "replag_redis_master_sync_in_progress",
        "Replica: 1 while a full sync from the master runs.",
        NODE_LABELS,
    );
    let full = f.counter(
        "replag_redis_sync_full_total",
        "Full resynchronisations served (INFO stats sync_full).",
        NODE_LABELS,
    );
    let partial_ok = f.counter(
        "replag_redis_sync_partial_ok_total",
        "Partial resynchronisations accepted (INFO stats sync_partial_ok).",
        NODE_LABELS,
    );
    let partial_err = f.counter(
        "replag_redis_sync_partial_err_total",
        "Partial resynchronisations refused (INFO stats sync_partial_err).",
        NODE_LABELS,
    );
    for srv in &s.redis.servers {
        let v = ["redis", srv.node.as_str(), srv.region.as_str()];
        offset.with_label_values(&v).set(srv.offset as f64);
        if let Some(n) = srv.connected_replicas {
            connected.with_label_values(&v).set(n as f64);
        }
        if let Some(b) = srv.backlog_size {
            backlog.with_label_values(&v).set(b as f64);
        }
        if let Some(h) = srv.backlog_histlen {
            histlen.with_label_values(&v).set(h as f64);
        }
        if let Some(up) = srv.master_link_up {
            link_up.with_label_values(&v).set(bool_value(up));
        }
        if let Some(io) = srv.master_last_io_seconds {
            last_io.with_label_values(&v).set(io as f64);
        }
        if let Some(d) = srv.master_link_down_since_seconds {
            down_since.with_label_values(&v).set(d as f64);
        }
        if let Some(sync) = srv.master_sync_in_progress {
            syncing.with_label_values(&v).set(bool_value(sync));
        }
        for (counter, value) in
            [(&full, srv.sync_full), (&partial_ok, srv.sync_partial_ok), (&partial_err, srv.sync_partial_err)]
        {
            if let Some(value) = value {
                counter.with_label_values(&v).inc_by(value);
            }
        }
    }
}

fn render_subscriptions(f: &Families, s: &Snapshot) {
    let labels = with(NODE_LABELS, &["subscription"]);
    let enabled = f.gauge("replag_pg_subscription_enabled", "1 if the logical subscription is enabled.", &labels);
    let worker = f.gauge(
        "replag_pg_subscription_worker_running",
        "1 if the subscription's apply worker is running (pg_stat_subscription).",
        &labels,
    );
    let sync_workers = f.gauge(
        "replag_pg_subscription_sync_workers",
        "Table synchronization workers running for the subscription.",
        &labels,
    );
    let received = f.gauge(
        "replag_pg_subscription_received_position_bytes",
        "Last WAL position the apply worker received (received, not applied).",
        &labels,
    );
    let message_age = f.gauge(
        "replag_pg_subscription_last_message_age_seconds",
        "Seconds since the apply worker last received a message from the publisher (a liveness signal; subscriber's clock).",
        &labels,
    );
    let apply_errors = f.counter(
        "replag_pg_subscription_apply_errors_total",
        "Errors applying changes (pg_stat_subscription_stats.apply_error_count, PostgreSQL 15+).",
        &labels,
    );
    let sync_errors = f.counter(
        "replag_pg_subscription_sync_errors_total",
        "Errors during initial table synchronization (pg_stat_subscription_stats.sync_error_count, PostgreSQL 15+).",
        &labels,
    );
    let tables = f.gauge(
        "replag_pg_subscription_tables",
        "Tables of the subscription per pg_subscription_rel state: i (init), d (data copy), f (finished copy), s (synchronized), r (ready).",
        &with(&labels, &["state"]),
    );
    for sub in &s.postgres.subscriptions {
        let v = ["postgres", sub.node.as_str(), sub.region.as_str(), sub.subscription.as_str()];
        enabled.with_label_values(&v).set(bool_value(sub.enabled));
        worker.with_label_values(&v).set(bool_value(sub.worker_running));
        sync_workers.with_label_values(&v).set(sub.sync_workers as f64);
        if let Some(lsn) = sub.received_lsn {
            received.with_label_values(&v).set(lsn as f64);
        }
        if let Some(age) = sub.last_message_age_seconds {
            message_age.with_label_values(&v).set(age);
        }
        if let Some(n) = sub.apply_error_count {
            apply_errors.with_label_values(&v).inc_by(n);
        }
        if let Some(n) = sub.sync_error_count {
            sync_errors.with_label_values(&v).inc_by(n);
        }
        for (state, n) in &sub.table_states {
            tables.with_label_values(&with(&v, &[state])).set(*n as f64);
        }
    }
}

fn render_seaweedfs(f: &Families, s: &Snapshot) {
    let leader = f.gauge(
        "replag_seaweedfs_leader_known",
        "1 if the master knows a raft leader (0: the cluster has no leader).",
        NODE_LABELS,
    );
    let is_leader = f.gauge("replag_seaweedfs_is_leader", "1 if this master is the raft leader.", NODE_LABELS);
    let peers = f.gauge("replag_seaweedfs_raft_peers", "Raft peers this master lists.", NODE_LABELS);
    for m in &s.seaweedfs.masters {
        let v = ["seaweedfs", m.node.as_str(), m.region.as_str()];
        leader.with_label_values(&v).set(bool_value(m.leader_known));
        is_leader.with_label_values(&v).set(bool_value(m.is_leader));
        peers.with_label_values(&v).set(m.peers as f64);
    }
    let dc_labels = with(NODE_LABELS, &["datacenter"]);
    let dc_volumes =
        f.gauge("replag_seaweedfs_datacenter_volumes", "Volume replicas held in the data center.", &dc_labels);
    let dc_free = f.gauge(
        "replag_seaweedfs_datacenter_free_slots",
        "Volume slots still free in the data center (max volumes − volumes).",
        &dc_labels,
    );
    let dc_nodes = f.gauge("replag_seaweedfs_datacenter_data_nodes", "Volume servers in the data center.", &dc_labels);
    let group_labels = with(NODE_LABELS, &["collection", "replication"]);
    let volumes =
        f.gauge("replag_seaweedfs_volumes", "Distinct volumes per collection and replica placement.", &group_labels);
    let under = f.gauge(
        "replag_seaweedfs_volumes_under_replicated",
        "Volumes with fewer copies than their placement xyz wants (x+y+z+1).",
        &group_labels,
    );
    let missing_dc = f.gauge(
        "replag_seaweedfs_volumes_missing_datacenter",
        "Volumes whose placement wants copies in other data centers but that have none there.",
        &group_labels,
    );
    let writable =
        f.gauge("replag_seaweedfs_writable_volumes", "Writable volumes per collection and placement.", &group_labels);
    for c in &s.seaweedfs.clusters {
        for dc in &c.datacenters {
            let v = ["seaweedfs", c.node.as_str(), c.region.as_str(), dc.datacenter.as_str()];
            dc_volumes.with_label_values(&v).set(dc.volumes as f64);
            dc_free.with_label_values(&v).set(dc.free_slots as f64);
            dc_nodes.with_label_values(&v).set(dc.data_nodes as f64);
        }
        for g in &c.volume_groups {
            let v = ["seaweedfs", c.node.as_str(), c.region.as_str(), g.collection.as_str(), g.replication.as_str()];
            volumes.with_label_values(&v).set(g.volumes as f64);
            under.with_label_values(&v).set(g.under_replicated as f64);
            missing_dc.with_label_values(&v).set(g.missing_datacenter as f64);
            writable.with_label_values(&v).set(g.writable as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn reload_status_is_rendered() {
        let snapshot = Snapshot::empty(SystemTime::now());
        let gates = Gates {
            last_reload: Some((false, SystemTime::now())),
            default_max_data_age: Duration::from_secs(10),
            ..Default::default()
        };
        let text = render(&snapshot, &gates);
        assert!(text.contains("replag_config_last_reload_successful 0"), "{text}");
        assert!(text.contains("replag_config_last_reload_timestamp_seconds "), "{text}");
        let fresh = Gates::default();
        assert!(!render(&snapshot, &fresh).contains("replag_config_last_reload"), "absent before any reload");
    }
}
