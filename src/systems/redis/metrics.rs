//! Redis' metric families (`replag_redis_*`): the master's view of each
//! replica link, and per-server replication figures.

use super::detail::{RedisDetails, RedisLinkDetail};
use crate::exposition::{bool_value, with, Families, LINK_LABELS, NODE_LABELS};
use crate::model::LinkId;

/// Every `replag_redis_*` family: `links` are the Redis links that carry the
/// master's view of the replica.
pub fn render<'a>(f: &Families, links: impl Iterator<Item = (&'a LinkId, &'a RedisLinkDetail)>, s: &RedisDetails) {
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
    for (id, r) in links {
        let v = id.label_values();
        redis_link.with_label_values(&with(&v, &[&r.state])).set(1.0);
        if let Some(age) = r.ack_age_seconds {
            ack_age.with_label_values(&v).set(age as f64);
        }
    }
    render_servers(f, s);
    render_groups(f, s);
}

/// Sentinel groups, Cluster shards and clusters: labelled `group` (and
/// `shard` for a Cluster's), the labels `replag_link_group_info` joins
/// links on.
fn render_groups(f: &Families, s: &RedisDetails) {
    const GROUP: &[&str] = &["group", "shard"];
    let master = f.gauge(
        "replag_redis_group_master_info",
        "The master of a Redis Sentinel group or Cluster shard now, by node name; always 1.",
        &["group", "shard", "kind", "master", "master_region"],
    );
    let replicas = f.gauge(
        "replag_redis_group_replicas",
        "Replicas the topology (Sentinel or CLUSTER NODES) lists for the group's master.",
        GROUP,
    );
    let healthy = f.gauge(
        "replag_redis_group_healthy_replicas",
        "Replicas of the group's master whose link replag sees up (0: a master without a healthy replica).",
        GROUP,
    );
    let failovers = f.counter(
        "replag_redis_group_failovers_total",
        "Master changes of the group replag has seen since it started.",
        GROUP,
    );
    let stale = f.gauge(
        "replag_redis_group_stale",
        "1 when no Sentinel or Cluster node that knows the group answers: the view is the last one known.",
        GROUP,
    );
    let quorum = f.gauge("replag_redis_sentinel_quorum", "The Sentinel group's configured quorum.", &["group"]);
    let quorum_ok = f.gauge(
        "replag_redis_sentinel_quorum_ok",
        "1 if a reachable Sentinel says a failover could be authorized now (SENTINEL CKQUORUM), else 0.",
        &["group"],
    );
    let reachable = f.gauge(
        "replag_redis_sentinel_sentinels_reachable",
        "Sentinels monitoring the group that replag reaches now.",
        &["group"],
    );
    let down = f.gauge(
        "replag_redis_sentinel_master_down",
        "1 while reachable Sentinels see the master down: state sdown (one Sentinel) or odown (agreed).",
        &["group", "state"],
    );
    let failing_over = f.gauge(
        "replag_redis_sentinel_failover_in_progress",
        "1 while a Sentinel runs a failover of the group.",
        &["group"],
    );
    for g in &s.groups {
        let shard = g.shard.as_deref().unwrap_or("");
        let v = [g.group.as_str(), shard];
        if let Some(m) = &g.master {
            let region = g.master_region.as_deref().unwrap_or("");
            master.with_label_values(&[&g.group, shard, g.kind, m, region]).set(1.0);
        }
        replicas.with_label_values(&v).set(g.replicas as f64);
        healthy.with_label_values(&v).set(g.healthy_replicas as f64);
        failovers.with_label_values(&v).inc_by(g.failovers_total);
        stale.with_label_values(&v).set(bool_value(g.stale));
        let one = [g.group.as_str()];
        if let Some(q) = g.quorum {
            quorum.with_label_values(&one).set(f64::from(q));
        }
        if let Some(ok) = g.quorum_ok {
            quorum_ok.with_label_values(&one).set(bool_value(ok));
        }
        if let Some(n) = g.sentinels_reachable {
            reachable.with_label_values(&one).set(n as f64);
        }
        for (state, value) in [("sdown", g.sdown), ("odown", g.odown)] {
            if let Some(value) = value {
                down.with_label_values(&[&g.group, state]).set(bool_value(value));
            }
        }
        if let Some(value) = g.failover_in_progress {
            failing_over.with_label_values(&one).set(bool_value(value));
        }
    }
    let cluster_ok =
        f.gauge("replag_redis_cluster_state_ok", "1 if CLUSTER INFO says cluster_state:ok, else 0.", &["group"]);
    let slots = f.gauge(
        "replag_redis_cluster_slots",
        "Hash slots by state, from CLUSTER INFO (assigned, ok, pfail, fail; 16384 in all).",
        &["group", "state"],
    );
    let cluster_stale =
        f.gauge("replag_redis_cluster_stale", "1 when no configured node of the cluster answers.", &["group"]);
    for c in &s.clusters {
        let g = c.group.as_str();
        cluster_ok.with_label_values(&[g]).set(bool_value(c.state_ok));
        cluster_stale.with_label_values(&[g]).set(bool_value(c.stale));
        for (state, n) in
            [("assigned", c.slots_assigned), ("ok", c.slots_ok), ("pfail", c.slots_pfail), ("fail", c.slots_fail)]
        {
            slots.with_label_values(&[g, state]).set(f64::from(n));
        }
    }
}

fn render_servers(f: &Families, s: &RedisDetails) {
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
    for srv in &s.servers {
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
