//! The failover families. Series for data at risk and unreachable
//! primaries exist only while a primary is unreachable; split brain is a
//! 0/1 series per group that has a primary; failovers are counted from the
//! events (so the count survives a restart with the journal), from 0.

use std::collections::BTreeMap;

use super::event::{Event, EventKind};
use super::tracker::FailoverView;
use crate::exposition::{Families, LINK_LABELS, NODE_LABELS};
use crate::model::{RoleFact, System};

const GROUP_LABELS: &[&str] = &["system", "group"];

pub fn render(f: &Families, view: &FailoverView, roles: &[RoleFact]) {
    let at_risk = f.gauge(
        "replag_data_at_risk_bytes",
        "While the link's primary is unreachable: its last position replag saw minus what the replica has received. \
         At least this much is not on the replica (the primary may have written more after it was last seen).",
        LINK_LABELS,
    );
    let unreplayed = f.gauge(
        "replag_data_unreplayed_bytes",
        "While the link's primary is unreachable: bytes the replica has received but not yet replayed.",
        LINK_LABELS,
    );
    for risk in &view.data_at_risk {
        let v = risk.link.label_values();
        at_risk.with_label_values(&v).set(risk.at_risk_bytes as f64);
        if let Some(bytes) = risk.unreplayed_bytes {
            unreplayed.with_label_values(&v).set(bytes as f64);
        }
    }
    let last_seen = f.gauge(
        "replag_primary_last_seen_seconds",
        "Seconds since an unreachable primary was last read (present only while it is unreachable and not replaced).",
        NODE_LABELS,
    );
    for lost in &view.primaries_unreachable {
        last_seen.with_label_values(&[lost.system.as_str(), &lost.node, &lost.node_region]).set(lost.last_seen_seconds);
    }
    let split = f.gauge(
        "replag_split_brain",
        "1 while two primaries of the group take writes (the old one back beside the one promoted in its place), else 0.",
        GROUP_LABELS,
    );
    let mut groups: BTreeMap<(System, &str), bool> = BTreeMap::new();
    for fact in roles.iter().filter(|r| r.primary().is_some() && !r.group.is_empty()) {
        groups.insert((fact.system, fact.group.as_str()), false);
    }
    for s in &view.split_brains {
        groups.insert((s.system, s.group.as_str()), true);
    }
    for ((system, group), on) in groups {
        split.with_label_values(&[system.as_str(), group]).set(crate::exposition::bool_value(on));
    }
    render_events(f, &view.events, roles);
}

/// Counters from the events; 0 for every group that has a primary, so the
/// first failover is an increase Prometheus sees, not a new series.
fn render_events(f: &Families, events: &[Event], roles: &[RoleFact]) {
    let total = f.counter(
        "replag_failovers_total",
        "Promotions replag saw (kind failover or switchover), from its events journal.",
        &["system", "group", "kind"],
    );
    let lost = f.gauge(
        "replag_last_failover_lost_bytes",
        "The last failover's lost bytes: the old primary's last position past the switch point (at least; exact once \
         the old primary was seen again).",
        GROUP_LABELS,
    );
    let gap = f.gauge(
        "replag_last_failover_write_gap_seconds",
        "The last failover's write gap: from the last write seen on the old primary to the first on the new one.",
        GROUP_LABELS,
    );
    let when =
        f.gauge("replag_last_failover_timestamp_seconds", "When the last failover was seen (Unix time).", GROUP_LABELS);
    let mut counts: BTreeMap<(System, &str, EventKind), u64> = BTreeMap::new();
    for fact in roles.iter().filter(|r| r.primary().is_some() && !r.group.is_empty()) {
        for kind in [EventKind::Failover, EventKind::Switchover] {
            counts.insert((fact.system, fact.group.as_str(), kind), 0);
        }
    }
    let mut last: BTreeMap<(System, &str), &Event> = BTreeMap::new();
    // Newest first: the first seen per group is its last.
    for e in events.iter().filter(|e| matches!(e.kind, EventKind::Failover | EventKind::Switchover)) {
        *counts.entry((e.system, e.group.as_str(), e.kind)).or_default() += 1;
        last.entry((e.system, e.group.as_str())).or_insert(e);
    }
    for ((system, group, kind), n) in counts {
        total.with_label_values(&[system.as_str(), group, kind.as_str()]).inc_by(n);
    }
    for ((system, group), e) in last {
        let v = [system.as_str(), group];
        when.with_label_values(&v).set(e.at);
        if let Some(bytes) = e.lost_bytes {
            lost.with_label_values(&v).set(bytes as f64);
        }
        if let Some(seconds) = e.write_gap_seconds {
            gap.with_label_values(&v).set(seconds);
        }
    }
}
