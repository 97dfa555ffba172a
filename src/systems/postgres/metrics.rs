//! PostgreSQL's metric families (`replag_pg_*`): per-link stages from the
//! upstream's `pg_stat_replication`, servers, slots and subscriptions.

use super::detail::{PgDetails, PgLinkDetail};
use crate::exposition::{bool_value, with, Families, LINK_LABELS, NODE_LABELS};
use crate::model::LinkId;

const WAL_STATUSES: &[&str] = &["reserved", "extended", "unreserved", "lost"];

/// Every `replag_pg_*` family: `links` are the PostgreSQL links that carry
/// an upstream's view.
pub fn render<'a>(f: &Families, links: impl Iterator<Item = (&'a LinkId, &'a PgLinkDetail)>, s: &PgDetails) {
    super::patroni::metrics::render(f, &s.patroni);
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
    for (id, pg) in links {
        let v = id.label_values();
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
    for srv in &s.servers {
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
    for slot in &s.slots {
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

    render_subscriptions(f, s);
}

fn render_subscriptions(f: &Families, s: &PgDetails) {
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
    for sub in &s.subscriptions {
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
