//! PostgreSQL physical replication links.
//!
//! A standby's upstream is what its WAL receiver says it is connected to
//! (`sender_host:sender_port`), else what was last seen, else the config's
//! `upstream`, else the only primary with the same system identifier. Lag is
//! measured against the root primary's WAL history: a cascaded standby's lag
//! is how stale its data is, not how far it trails its intermediate.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::detail::{PgDetails, PgServerView, PgSlotView};
use super::fleet::{judge_replies, lag_of, stage_detail, PgInputs, PgLink, SYSTEM};
use super::source::WalSender;
use crate::lag::{label, DiscoveredLinks, LastHeard, StreamKey, Upstream};
use crate::model::{LinkKind, UNKNOWN_REGION};

const MAX_CASCADE_DEPTH: usize = 8;

#[derive(Debug, Clone)]
struct ReplicaMemory {
    upstream: Upstream,
    slot_name: Option<String>,
    application_names: Vec<String>,
}

/// What the physical link rules remember between snapshots.
#[derive(Debug, Default)]
pub(super) struct PhysicalMemory {
    replicas: HashMap<usize, ReplicaMemory>,
    /// Status replies per (upstream, walsender pid).
    replies: LastHeard<(usize, i32)>,
    discovered: DiscoveredLinks,
}

/// The root primary's stream for node `i`: follow upstreams to a primary;
/// failing that, the newest primary with the same system identifier.
fn root_stream(mem: &PhysicalMemory, inputs: &PgInputs<'_>, i: usize) -> Option<StreamKey> {
    let mut current = i;
    for _ in 0..MAX_CASCADE_DEPTH {
        if let Some(key) = inputs.stream_of_primary(current) {
            return Some(key);
        }
        match mem.replicas.get(&current).map(|m| &m.upstream) {
            Some(Upstream::Node(u)) if *u != current => current = *u,
            _ => break,
        }
    }
    let (obs, _) = inputs.last_ok(i)?;
    inputs.primaries_of(&obs.system_identifier).first().and_then(|&p| inputs.stream_of_primary(p))
}

pub(super) fn derive(mem: &mut PhysicalMemory, inputs: &PgInputs<'_>, now: Instant) -> (Vec<PgLink>, PgDetails) {
    learn_upstreams(mem, inputs);
    let (matched, unmatched) = match_walsenders(mem, inputs);
    for (u, row) in matched.values() {
        // A row a configured standby claims is no lost discovery.
        mem.discovered.forget(*u, &row.application_name);
        if let Some(addr) = &row.client_addr {
            mem.discovered.forget(*u, &format!("{}@{addr}", row.application_name));
        }
    }
    let mut links = Vec::new();
    for r in inputs.nodes() {
        let row = matched.get(&r);
        if let Some(mut link) = configured_link(mem, inputs, r, row, now) {
            if let Some((u, row)) = row {
                let interval = inputs.last_ok(r).and_then(|(o, _)| o.status_interval);
                judge_replies(&mut mem.replies, inputs, &mut link, (*u, row), interval, Duration::ZERO);
            }
            links.push(link);
        }
    }
    links.extend(discovered_links(mem, inputs, &unmatched, now));
    mem.replies.forget_stale(now);
    (links, details(inputs))
}

/// Record each reachable standby's upstream, slot and application names.
fn learn_upstreams(mem: &mut PhysicalMemory, inputs: &PgInputs<'_>) {
    for i in inputs.nodes() {
        let Some((obs, _)) = inputs.fresh(i) else { continue };
        if !obs.in_recovery {
            continue;
        }
        let spec = &inputs.fleet.nodes[i];
        let actual = obs.wal_receiver.as_ref().and_then(|w| {
            let (host, port) = (w.sender_host.as_deref()?, w.sender_port?);
            Some(match inputs.node_at(host, port, &obs.system_identifier) {
                Some(u) => Upstream::Node(u),
                None => Upstream::Address(format!("{host}:{port}")),
            })
        });
        let declared = || spec.upstream.as_deref().and_then(|n| inputs.node_named(n)).map(Upstream::Node);
        let only_primary = || match inputs.primaries_of(&obs.system_identifier) {
            [only] => Some(Upstream::Node(*only)),
            _ => None,
        };
        let last_seen = || mem.replicas.get(&i).map(|m| m.upstream.clone());
        let upstream = match actual {
            Some(Upstream::Node(u)) => Some(Upstream::Node(u)),
            // An address no config names (a proxy, a VIP, NAT) is weaker
            // evidence than the config's `upstream` or a node seen before.
            Some(address) => declared()
                .or_else(|| last_seen().filter(|u| matches!(u, Upstream::Node(_))))
                .or_else(only_primary)
                .or(Some(address)),
            None => last_seen().or_else(declared).or_else(only_primary),
        };
        let Some(upstream) = upstream else { continue };
        let mut application_names = vec![spec.name.clone()];
        if !obs.cluster_name.is_empty() {
            application_names.push(obs.cluster_name.clone());
        }
        let slot_name = obs.wal_receiver.as_ref().and_then(|w| w.slot_name.clone());
        mem.replicas.insert(i, ReplicaMemory { upstream, slot_name, application_names });
    }
}

/// Pair configured standbys with their upstream's `pg_stat_replication` rows:
/// by slot (the slot's `active_pid` is the walsender's pid), by application
/// name, and where one row and one standby are left on an upstream, by elimination.
fn match_walsenders<'a>(mem: &PhysicalMemory, inputs: &PgInputs<'a>) -> (HashMap<usize, RowOf<'a>>, Vec<RowOf<'a>>) {
    let mut matched: HashMap<usize, RowOf<'a>> = HashMap::new();
    let mut unmatched = Vec::new();
    // Each upstream's configured standbys, in config order.
    let mut replicas_of: HashMap<usize, Vec<usize>> = HashMap::new();
    for r in inputs.nodes() {
        if let Some(Upstream::Node(u)) = mem.replicas.get(&r).map(|m| &m.upstream) {
            replicas_of.entry(*u).or_default().push(r);
        }
    }
    for u in inputs.nodes() {
        let Some((upstream_obs, _)) = inputs.fresh(u) else { continue };
        let replicas = replicas_of.get(&u).map_or(&[][..], Vec::as_slice);
        let mut left_rows = Vec::new();
        // Logical walsenders belong to logical links; WAL clients are no standbys.
        let rows =
            upstream_obs.walsenders.iter().filter(|w| !upstream_obs.is_logical_walsender(w.pid) && !is_wal_client(w));
        for row in rows {
            let by_slot = |m: &ReplicaMemory| {
                m.slot_name.as_ref().is_some_and(|slot| {
                    upstream_obs.slots.iter().any(|s| &s.name == slot && s.active_pid == Some(row.pid))
                })
            };
            let by_name = |m: &ReplicaMemory| m.application_names.contains(&row.application_name);
            let found = replicas
                .iter()
                .find(|r| !matched.contains_key(r) && by_slot(&mem.replicas[r]))
                .or_else(|| replicas.iter().find(|r| !matched.contains_key(r) && by_name(&mem.replicas[r])));
            match found {
                Some(&r) => {
                    matched.insert(r, (u, row));
                }
                None => left_rows.push(row),
            }
        }
        let left_replicas: Vec<usize> = replicas
            .iter()
            .copied()
            .filter(|r| !matched.contains_key(r) && inputs.fresh(*r).is_some_and(|(o, _)| o.in_recovery))
            .collect();
        if let ([row], [r]) = (left_rows.as_slice(), left_replicas.as_slice()) {
            matched.insert(*r, (u, row));
            left_rows.clear();
        }
        unmatched.extend(left_rows.into_iter().map(|row| (u, row)));
    }
    (matched, unmatched)
}

/// A base backup (`state = backup`) or a WAL archiver — pg_basebackup's WAL
/// stream, pg_receivewal, backup tools — which never reports a replay
/// position, unlike every standby. Not a replication link: a nightly backup
/// must not leave a "down link" behind when it ends.
fn is_wal_client(row: &WalSender) -> bool {
    row.state == "backup" || row.replay_lsn.is_none()
}

/// A `pg_stat_replication` row and the node whose view it is.
type RowOf<'a> = (usize, &'a WalSender);

fn configured_link(
    mem: &mut PhysicalMemory,
    inputs: &PgInputs<'_>,
    r: usize,
    row: Option<&(usize, &WalSender)>,
    now: Instant,
) -> Option<PgLink> {
    let spec = &inputs.fleet.nodes[r];
    let configured = spec.upstream.as_deref().and_then(|n| inputs.node_named(n)).map(Upstream::Node);
    let upstream = mem.replicas.get(&r).map(|m| m.upstream.clone()).or(configured.clone())?;
    let source = label(inputs.fleet.nodes, &upstream);
    let mut link = PgLink::new(SYSTEM, LinkKind::Physical, source, (spec.name.clone(), spec.region.clone()));

    // A node that is a primary now: promoted, or misdeclared.
    if let Some((obs, _)) = inputs.last_ok(r).filter(|(o, _)| !o.in_recovery) {
        let split_brain = match upstream {
            Upstream::Node(u) => inputs.primaries_of(&obs.system_identifier).contains(&u),
            Upstream::Address(_) => false,
        };
        link.state = "promoted".into();
        if split_brain {
            link.reason = Some(format!(
                "{} is a primary now (timeline {}) while {} is still a primary with the same system identifier",
                spec.name,
                obs.timeline.map_or("?".into(), |t| t.to_string()),
                link.id.source
            ));
        } else if configured.is_some() {
            link.reason = Some(format!("{} is a primary, not a standby of its configured upstream", spec.name));
        } else {
            // A settled failover: the old link no longer exists.
            mem.replicas.remove(&r);
            return None;
        }
        return Some(link);
    }

    let history = root_stream(mem, inputs, r).and_then(|k| inputs.fleet.histories.get(&k));
    let upstream_view = row.and_then(|(u, row)| inputs.fresh(*u).map(|(_, at)| (*row, at)));
    link.detail = upstream_view.map(|(row, at)| stage_detail(history, row, at));

    if let Some((obs, at)) = inputs.fresh(r) {
        // The standby's own view is the freshest truth about its replay position.
        link.lag = lag_of(history, obs.replay_lsn, at);
        link.data_age_seconds = Some(now.saturating_duration_since(at).as_secs_f64());
        match &obs.wal_receiver {
            Some(w) if w.status == "streaming" => {
                link.up = true;
                link.state = w.status.clone();
            }
            Some(w) => {
                link.state = w.status.clone();
                link.reason = Some(format!("WAL receiver is {}", w.status));
            }
            None => {
                link.state = "stopped".into();
                link.reason = Some("no WAL receiver: the standby is not connected to its upstream".into());
            }
        }
        if obs.replay_paused == Some(true) {
            link.reason = Some("WAL replay is paused on the standby".into());
        }
        if history.is_none() {
            link.reason.get_or_insert_with(|| "no history of the primary's WAL position yet".into());
        }
        return Some(link);
    }

    let failure = inputs.fleet.failure_text(r);
    if let Some((row, at)) = upstream_view {
        // Replica unreachable for replag, but its upstream still sees it.
        link.lag = lag_of(history, row.replay_lsn, at);
        link.data_age_seconds = Some(now.saturating_duration_since(at).as_secs_f64());
        link.up = row.state == "streaming";
        link.state = row.state.clone();
        link.reason =
            Some(format!("replica unreachable ({failure}); figures from {}'s pg_stat_replication", link.id.source));
        return Some(link);
    }
    // Neither the replica nor its upstream shows the link: it is down.
    link.state = "down".into();
    link.reason = Some(format!("replica unreachable ({failure}) and not in {}'s pg_stat_replication", link.id.source));
    if let Some((obs, at)) = inputs.last_ok(r) {
        // It has replayed nothing since it was last seen: measured from there, the lag keeps growing.
        link.lag = lag_of(history, obs.replay_lsn, now);
        link.data_age_seconds = Some(now.saturating_duration_since(at).as_secs_f64());
    }
    Some(link)
}

/// Links to standbys no config names, from `pg_stat_replication`.
fn discovered_links(
    mem: &mut PhysicalMemory,
    inputs: &PgInputs<'_>,
    rows: &[(usize, &WalSender)],
    now: Instant,
) -> Vec<PgLink> {
    let mut links = Vec::new();
    let mut seen = HashSet::new();
    let rows = if inputs.fleet.discovery { rows } else { &[] };
    for (u, row) in rows {
        let base = if row.application_name.is_empty() { "walreceiver" } else { row.application_name.as_str() };
        let name = DiscoveredLinks::unique_name(&seen, *u, base, row.client_addr.as_deref());
        seen.insert((*u, name.clone()));
        mem.discovered.saw(*u, &name, now);
        let history = root_stream(mem, inputs, *u).and_then(|k| inputs.fleet.histories.get(&k));
        let at = inputs.fresh(*u).map_or(now, |(_, at)| at);
        let mut link = PgLink::new(
            SYSTEM,
            LinkKind::Physical,
            label(inputs.fleet.nodes, &Upstream::Node(*u)),
            (name, UNKNOWN_REGION.into()),
        );
        link.up = row.state == "streaming";
        link.state = row.state.clone();
        link.reason = Some("standby not in the config; figures from the upstream's pg_stat_replication".into());
        link.lag = lag_of(history, row.replay_lsn, at);
        link.data_age_seconds = Some(now.saturating_duration_since(at).as_secs_f64());
        link.detail = Some(stage_detail(history, row, at));
        judge_replies(&mut mem.replies, inputs, &mut link, (*u, row), None, Duration::ZERO);
        links.push(link);
    }
    links.extend(mem.discovered.vanished_links(
        &seen,
        now,
        inputs.fleet.nodes,
        (SYSTEM, LinkKind::Physical),
        |u, link| {
            let why = if inputs.fresh(u).is_some() { "no longer in" } else { "upstream unreachable; cannot read" };
            format!("{why} {}'s pg_stat_replication", link.id.source)
        },
    ));
    links
}

fn details(inputs: &PgInputs<'_>) -> PgDetails {
    let mut out = PgDetails::default();
    for i in inputs.nodes() {
        let Some((obs, _)) = inputs.fresh(i) else { continue };
        let spec = &inputs.fleet.nodes[i];
        out.servers.push(PgServerView {
            node: spec.name.clone(),
            region: spec.region.clone(),
            timeline: obs.timeline,
            current_lsn: obs.current_lsn.map(|l| l.0),
            receive_lsn: obs.receive_lsn.map(|l| l.0),
            replay_lsn: obs.replay_lsn.map(|l| l.0),
            replay_paused: obs.replay_paused,
            last_xact_replay_unix: obs.last_xact_replay_unix,
            wal_receiver_status: obs.wal_receiver.as_ref().map(|w| w.status.clone()),
            wal_receiver_last_message_age_seconds: obs.wal_receiver.as_ref().and_then(|w| w.last_msg_receipt_age),
        });
        let position = obs.current_lsn.or(obs.replay_lsn);
        for slot in &obs.slots {
            out.slots.push(PgSlotView {
                node: spec.name.clone(),
                region: spec.region.clone(),
                slot: slot.name.clone(),
                slot_type: slot.slot_type.clone(),
                active: slot.active,
                retained_bytes: position.zip(slot.restart_lsn).map(|(p, r)| p.0.saturating_sub(r.0)),
                wal_status: slot.wal_status.clone(),
                safe_wal_size_bytes: slot.safe_wal_size,
            });
        }
    }
    out
}
