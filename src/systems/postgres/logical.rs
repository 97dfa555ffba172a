//! PostgreSQL logical replication links: publisher → subscriber.
//!
//! A subscription's publisher is the node the config names for it, else the
//! one last seen, else the node (other than the subscriber) holding a logical
//! slot with the subscription's slot name — preferring one whose walsender for
//! that slot is named after the subscription. The subscriber's applied
//! position is what it last reported to the publisher's walsender
//! (`pg_stat_replication.replay_lsn`: the end of the last transaction it
//! applied, sent right after applying it), read in the same query as the
//! publisher's `pg_current_wal_lsn()`: one instant, so a caught-up
//! subscriber reads exactly 0. Without a walsender, the slot's
//! `confirmed_flush_lsn` (which waits for the subscriber's local flush, a few
//! hundred ms later). Bytes = publisher's position − that, seconds through
//! the publisher's WAL history (the same engine as physical links).
//! `latest_end_lsn` on the subscriber is the publisher's WAL end at the last
//! keepalive, not an applied position, and is not used.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::detail::PgSubscriptionView;
use super::fleet::{judge_replies, lag_of, stage_detail, PgInputs, PgLink, SYSTEM};
use super::lsn::Lsn;
use super::source::{PgObservation, Slot, Subscription, WalSender};
use crate::lag::{label, DiscoveredLinks, LastHeard, Upstream};
use crate::model::{LinkKind, UNKNOWN_REGION};

/// Apply errors that rose this recently mark the link as failing.
const ERROR_WINDOW: Duration = Duration::from_secs(120);

#[derive(Debug, Default)]
pub(super) struct LogicalMemory {
    /// (subscriber node, subscription) → publisher node.
    publishers: HashMap<(usize, String), usize>,
    /// (subscriber node, subscription) → (apply_error_count, when it last rose).
    errors: HashMap<(usize, String), (u64, Option<Instant>)>,
    discovered: DiscoveredLinks,
    /// Status replies per (publisher, walsender pid).
    replies: LastHeard<(usize, i32)>,
}

/// An apply worker checks whether feedback is due about once a second: its
/// replies can be a second later than a standby's.
const APPLY_LOOP_SLACK: Duration = Duration::from_secs(1);

/// Temporary slots of table synchronization workers (`pg_<oid>_sync_<relid>_<sysid>`).
fn is_tablesync_slot(name: &str) -> bool {
    name.starts_with("pg_") && name.contains("_sync_")
}

fn logical_slot<'a>(obs: &'a PgObservation, name: &str) -> Option<&'a Slot> {
    obs.slots.iter().find(|s| s.slot_type == "logical" && s.name == name)
}

fn publisher_of(mem: &LogicalMemory, inputs: &PgInputs<'_>, subscriber: usize, sub: &Subscription) -> Option<usize> {
    if let Some(name) = inputs.fleet.nodes[subscriber].publishers.get(&sub.name) {
        return inputs.node_named(name);
    }
    let slot = sub.slot_name.as_deref()?;
    let candidates: Vec<usize> = inputs
        .nodes()
        .filter(|&p| p != subscriber && inputs.last_ok(p).is_some_and(|(o, _)| logical_slot(o, slot).is_some()))
        .collect();
    let consumed_by_this_subscription = |p: &usize| {
        inputs.fresh(*p).is_some_and(|(o, _)| {
            logical_slot(o, slot)
                .and_then(|s| s.active_pid)
                .is_some_and(|pid| o.walsenders.iter().any(|w| w.pid == pid && w.application_name == sub.name))
        })
    };
    candidates
        .iter()
        .copied()
        .find(consumed_by_this_subscription)
        .or_else(|| mem.publishers.get(&(subscriber, sub.name.clone())).copied().filter(|p| candidates.contains(p)))
        .or_else(|| candidates.first().copied())
        .or_else(|| mem.publishers.get(&(subscriber, sub.name.clone())).copied())
}

pub(super) fn derive(
    mem: &mut LogicalMemory,
    inputs: &PgInputs<'_>,
    now: Instant,
) -> (Vec<PgLink>, Vec<PgSubscriptionView>) {
    let mut links = Vec::new();
    let mut views = Vec::new();
    // Slots some configured subscription consumes: (publisher, slot).
    let mut claimed: HashSet<(usize, String)> = HashSet::new();
    let mut taken_names: HashSet<(String, String)> = HashSet::new();

    for r in inputs.nodes() {
        let Some((obs, at_sub)) = inputs.last_ok(r) else { continue };
        let subscriber_fresh = inputs.fresh(r).is_some();
        for sub in &obs.subscriptions {
            let key = (r, sub.name.clone());
            let errors_rising = note_errors(mem, &key, sub.apply_error_count, now);
            if subscriber_fresh {
                views.push(subscription_view(inputs, r, sub, errors_rising));
            }
            let publisher = publisher_of(mem, inputs, r, sub);
            if let Some(p) = publisher {
                mem.publishers.insert(key.clone(), p);
            }
            let source = match publisher {
                Some(p) => label(inputs.fleet.nodes, &Upstream::Node(p)),
                None => ("unknown".to_string(), UNKNOWN_REGION.to_string()),
            };
            // Two subscriptions from one publisher on one node: name the second by subscription.
            let mut replica = inputs.fleet.nodes[r].name.clone();
            if !taken_names.insert((source.0.clone(), replica.clone())) {
                replica = format!("{replica}/{}", sub.name);
                taken_names.insert((source.0.clone(), replica.clone()));
            }
            let mut link =
                PgLink::new(SYSTEM, LinkKind::Logical, source, (replica, inputs.fleet.nodes[r].region.clone()));
            let slot_name = sub.slot_name.as_deref().unwrap_or("");
            if let Some(p) = publisher {
                claimed.insert((p, slot_name.to_string()));
            }
            let publisher_view = publisher
                .and_then(|p| inputs.fresh(p).map(|(o, at)| (p, o, at)))
                .and_then(|(p, o, at)| logical_slot(o, slot_name).map(|slot| (p, o, slot, at)));
            let walsender = publisher_view.and_then(|(p, pub_obs, slot, _)| {
                let pid = slot.active_pid?;
                pub_obs.walsenders.iter().find(|w| w.pid == pid).map(|row| (p, row))
            });
            let history = publisher.and_then(|p| inputs.root_history(p));

            // Position: what the subscriber reported applying, as the
            // publisher's walsender has it, else the slot's confirmed_flush_lsn,
            // or failing both what the subscriber says it received (ahead of
            // what it applied, so the lag is then a lower bound).
            if let Some((_, _, slot, at)) = publisher_view {
                let row = walsender.map(|(_, row)| row);
                link.lag = lag_of(history, applied_position(slot, row), at);
                link.data_age_seconds = Some(now.saturating_duration_since(at).as_secs_f64());
                link.detail = row.map(|row| stage_detail(history, row, at));
            } else if let Some(worker) = &sub.apply_worker {
                link.lag = lag_of(history, worker.received_lsn, at_sub).map(|mut l| {
                    l.lower_bound = l.seconds > 0.0;
                    l
                });
                link.data_age_seconds = Some(now.saturating_duration_since(at_sub).as_secs_f64());
            }

            let (up, state, reason) = if !subscriber_fresh {
                let failure = inputs.fleet.failure_text(r);
                match publisher_view {
                    Some((_, _, slot, _)) if slot.active => (
                        true,
                        "streaming".into(),
                        Some(format!("subscriber unreachable ({failure}); figures from the publisher's slot")),
                    ),
                    _ => (false, "down".into(), Some(format!("subscriber unreachable ({failure})"))),
                }
            } else if !sub.enabled {
                (false, "disabled".into(), Some(format!("subscription {} is disabled", sub.name)))
            } else if errors_rising {
                let count = sub.apply_error_count.unwrap_or(0);
                (
                    false,
                    "failing".into(),
                    Some(format!("apply errors rising (apply_error_count {count}); see the subscriber's log")),
                )
            } else if sub.apply_worker.is_none() {
                (false, "no worker".into(), Some(format!("no apply worker running for subscription {}", sub.name)))
            } else if publisher.is_none() {
                (false, "unknown publisher".into(), Some(format!("no configured node holds slot {slot_name:?}")))
            } else {
                match publisher_view {
                    Some((_, _, slot, _)) if !slot.active => (
                        false,
                        "inactive slot".into(),
                        Some(format!("slot {slot_name} has no consumer on {}", link.id.source)),
                    ),
                    Some(_) => (true, "streaming".into(), None),
                    None => (
                        true,
                        "streaming".into(),
                        Some(format!(
                            "publisher {} unreachable; lag from the subscriber's received_lsn",
                            link.id.source
                        )),
                    ),
                }
            };
            link.up = up;
            link.state = state;
            link.reason = reason;
            if let Some(walsender) = walsender {
                let interval = obs.status_interval;
                judge_replies(&mut mem.replies, inputs, &mut link, walsender, interval, APPLY_LOOP_SLACK);
            }
            links.push(link);
        }
    }
    mem.replies.forget_stale(now);
    mem.errors.retain(|(r, name), _| {
        inputs.last_ok(*r).is_some_and(|(o, _)| o.subscriptions.iter().any(|s| &s.name == name))
    });
    links.extend(unclaimed_slots(mem, inputs, &claimed, now));
    (links, views)
}

/// A slot consumer's applied position: the newer of what it last reported
/// applying (its walsender's `replay_lsn`) and what it confirmed flushed.
fn applied_position(slot: &Slot, walsender: Option<&WalSender>) -> Option<Lsn> {
    walsender.and_then(|w| w.replay_lsn).max(slot.confirmed_flush_lsn)
}

/// Remember the apply error count; true if it rose within `ERROR_WINDOW`.
fn note_errors(mem: &mut LogicalMemory, key: &(usize, String), count: Option<u64>, now: Instant) -> bool {
    let Some(count) = count else { return false };
    let entry = mem.errors.entry(key.clone()).or_insert((count, None));
    if count > entry.0 {
        entry.1 = Some(now);
    }
    entry.0 = count;
    entry.1.is_some_and(|t| now.saturating_duration_since(t) < ERROR_WINDOW)
}

fn subscription_view(inputs: &PgInputs<'_>, r: usize, sub: &Subscription, errors_rising: bool) -> PgSubscriptionView {
    PgSubscriptionView {
        node: inputs.fleet.nodes[r].name.clone(),
        region: inputs.fleet.nodes[r].region.clone(),
        subscription: sub.name.clone(),
        enabled: sub.enabled,
        worker_running: sub.apply_worker.is_some(),
        sync_workers: sub.sync_workers,
        received_lsn: sub.apply_worker.as_ref().and_then(|w| w.received_lsn).map(|l| l.0),
        last_message_age_seconds: sub.apply_worker.as_ref().and_then(|w| w.last_msg_receipt_age),
        apply_error_count: sub.apply_error_count,
        sync_error_count: sub.sync_error_count,
        errors_rising,
        table_states: sub.table_states.clone(),
    }
}

/// Logical slots no configured subscription consumes (another cluster's
/// subscriber, a CDC tool, a forgotten slot): links to the slot itself, down
/// when it has no consumer — a forgotten slot fills the publisher's disk.
fn unclaimed_slots(
    mem: &mut LogicalMemory,
    inputs: &PgInputs<'_>,
    claimed: &HashSet<(usize, String)>,
    now: Instant,
) -> Vec<PgLink> {
    let mut links = Vec::new();
    let mut seen = HashSet::new();
    for (p, slot) in claimed {
        mem.discovered.forget(*p, slot);
    }
    for p in inputs.nodes().filter(|_| inputs.fleet.discovery) {
        let Some((obs, at)) = inputs.fresh(p) else { continue };
        for slot in obs.slots.iter().filter(|s| s.slot_type == "logical") {
            if claimed.contains(&(p, slot.name.clone())) || is_tablesync_slot(&slot.name) {
                continue;
            }
            seen.insert((p, slot.name.clone()));
            mem.discovered.saw(p, &slot.name, now);
            let history = inputs.root_history(p);
            let mut link = PgLink::new(
                SYSTEM,
                LinkKind::Logical,
                label(inputs.fleet.nodes, &Upstream::Node(p)),
                (slot.name.clone(), UNKNOWN_REGION.into()),
            );
            let row = slot.active_pid.and_then(|pid| obs.walsenders.iter().find(|w| w.pid == pid));
            link.lag = lag_of(history, applied_position(slot, row), at);
            link.data_age_seconds = Some(now.saturating_duration_since(at).as_secs_f64());
            link.detail = row.map(|row| stage_detail(history, row, at));
            link.up = slot.active;
            link.state = if slot.active { "streaming".into() } else { "inactive slot".into() };
            link.reason = Some(if slot.active {
                "slot consumer not in the config; figures from the publisher's slot".into()
            } else {
                format!("logical slot {} has no consumer", slot.name)
            });
            links.push(link);
        }
    }
    links.extend(mem.discovered.vanished_links(
        &seen,
        now,
        inputs.fleet.nodes,
        (SYSTEM, LinkKind::Logical),
        |_, link| format!("logical slot {} is gone from {}", link.id.replica, link.id.source),
    ));
    links
}
