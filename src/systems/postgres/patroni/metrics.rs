//! The `replag_patroni_*` families: each cluster's endpoints, maintenance
//! mode and members, Patroni's lag beside replag's.

use super::detail::PatroniClusterView;
use crate::exposition::{bool_value, Families};

pub fn render(f: &Families, clusters: &[PatroniClusterView]) {
    let endpoint_up = f.gauge(
        "replag_patroni_endpoint_up",
        "1 if the Patroni REST endpoint answered replag's last poll of its cluster with a Patroni view.",
        &["cluster", "endpoint"],
    );
    let paused = f.gauge(
        "replag_patroni_paused",
        "1 while the Patroni cluster is in maintenance mode (paused: no automatic failover).",
        &["cluster"],
    );
    let disagree = f.gauge(
        "replag_patroni_endpoints_disagree",
        "1 if the cluster's Patroni endpoints answered with different leaders or timelines (the newest view is used).",
        &["cluster"],
    );
    let member_info = f.gauge(
        "replag_patroni_member_info",
        "A Patroni member as Patroni lists it (role, state) and the replag node polled for it; always 1.",
        &["cluster", "member", "node", "role", "state"],
    );
    let patroni_lag = f.gauge(
        "replag_patroni_member_lag_bytes",
        "Patroni's own lag of the member (its leader's position in the DCS minus the member's; up to loop_wait old).",
        &["cluster", "member"],
    );
    let lag_disagrees = f.gauge(
        "replag_patroni_lag_disagrees",
        "1 if Patroni's lag of the member and replag's (received bytes) differ by more than patroni_lag_tolerance_bytes.",
        &["cluster", "member"],
    );
    for c in clusters {
        for e in &c.endpoints {
            endpoint_up.with_label_values(&[&c.node, &e.endpoint]).set(bool_value(c.up && e.up));
        }
        paused.with_label_values(&[&c.node]).set(bool_value(c.paused));
        disagree.with_label_values(&[&c.node]).set(bool_value(c.disagreement.is_some()));
        for m in &c.members {
            let node = m.node.as_deref().unwrap_or("");
            member_info.with_label_values(&[&c.node, &m.member, node, &m.role, &m.state]).set(1.0);
            if let Some(bytes) = m.patroni_lag_bytes {
                patroni_lag.with_label_values(&[&c.node, &m.member]).set(bytes as f64);
            }
            lag_disagrees.with_label_values(&[&c.node, &m.member]).set(bool_value(m.lag_disagrees));
        }
    }
}
