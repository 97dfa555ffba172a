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
