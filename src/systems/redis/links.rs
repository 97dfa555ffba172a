//! Redis replication links.
//!
//! A replica's master is the node at its `master_host:master_port` (the
//! entry whose replication ID matches, if several name one server), else the
//! one last seen, else the config's `upstream`, else the only master with the
//! same replication ID. Lag is measured against the history of the
//! replication ID the replica follows, so a replica of a replica is measured
//! against the top master's stream (Redis proxies it unchanged).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::detail::{RedisDetails, RedisLinkDetail, RedisServerView};
use super::fleet::{stream, Fleet, RedisLink, SYSTEM};
use super::source::{ConnectedReplica, RedisObservation};
use crate::lag::{label, lag_of, silence_margin, DiscoveredLinks, PositionHistory, Upstream};
use crate::model::{normalize_host, LinkKind, SILENT, UNKNOWN_REGION};

/// Replicas ACK every second; a master that has had no ACK for longer than
/// this many seconds (its INFO `lag`, measured on its own clock) has a
/// silent link to that replica.
pub const ACK_SILENT_AFTER: u64 = 2;
/// A master pings its replicas every `repl-ping-replica-period` (10 s unless
/// configured; INFO does not say), so a replica that heard nothing from its
/// master for longer than that plus a margin has a silent link.
const PING_PERIOD: Duration = Duration::from_secs(10);

/// What the link rules remember between snapshots.
#[derive(Debug, Default)]
pub struct RedisMemory {
    upstreams: HashMap<usize, Upstream>,
    discovered: DiscoveredLinks,
    pub(super) groups: super::groups::GroupMemory,
}

/// The fleet as Redis' rules read it.
pub(super) struct RedisInputs<'a> {
    pub fleet: Fleet<'a>,
}

impl<'a> RedisInputs<'a> {
    fn nodes(&self) -> impl Iterator<Item = usize> + '_ {
        self.fleet.indices()
    }

    fn fresh(&self, i: usize) -> Option<(&'a RedisObservation, Instant)> {
        self.fleet.fresh(i)
    }

    fn last_ok(&self, i: usize) -> Option<(&'a RedisObservation, Instant)> {
        self.fleet.last_ok(i)
    }

    fn node_at(&self, host: &str, port: u16, replid: &str) -> Option<usize> {
        let host = normalize_host(host);
        let candidates: Vec<usize> = self.fleet.index.nodes_at(SYSTEM, &host, port).collect();
        candidates
            .iter()
            .copied()
            .find(|&i| self.fresh(i).is_some_and(|(o, _)| o.replid == replid))
            .or_else(|| candidates.first().copied())
    }

    fn history(&self, replid: &str) -> Option<&'a PositionHistory> {
        self.fleet.histories.get(&stream(replid))
    }
}

pub(super) fn derive(mem: &mut RedisMemory, inputs: &RedisInputs<'_>, now: Instant) -> (Vec<RedisLink>, RedisDetails) {
    learn_upstreams(mem, inputs);
    // The master's entry for each configured replica; the rest are discovered.
    let mut entries: HashMap<usize, (usize, &ConnectedReplica)> = HashMap::new();
    let mut unclaimed = Vec::new();
    for u in inputs.nodes() {
        let Some((obs, _)) = inputs.fresh(u) else { continue };
        for entry in &obs.replicas {
            let ip = normalize_host(&entry.ip);
            // By address; else (replag reaches the replica through a proxy,
            // VIP or NAT) the replica of this master listening on that port.
            let claimed = inputs.fleet.index.nodes_at(SYSTEM, &ip, entry.port).find(|&r| r != u).or_else(|| {
                inputs.nodes().find(|&r| {
                    r != u
                        && !entries.contains_key(&r)
                        && mem.upstreams.get(&r) == Some(&Upstream::Node(u))
                        && inputs.last_ok(r).is_some_and(|(o, _)| o.tcp_port == Some(entry.port))
                })
            });
            match claimed {
                Some(r) => {
                    // Seen unclaimed before its node joined (a Sentinel or
                    // Cluster member revealed later): not a lost replica.
                    if !mem.discovered.is_empty() {
                        mem.discovered.forget(u, &format!("{}:{}", entry.ip, entry.port));
                    }
                    entries.insert(r, (u, entry));
                }
                None => unclaimed.push((u, entry)),
            }
        }
    }
    let mut links: Vec<RedisLink> =
        inputs.nodes().filter_map(|r| configured_link(mem, inputs, r, entries.get(&r).copied(), now)).collect();
    links.extend(discovered_links(mem, inputs, &unclaimed, now));
    (links, details(inputs))
}

fn learn_upstreams(mem: &mut RedisMemory, inputs: &RedisInputs<'_>) {
    for i in inputs.nodes() {
        let Some((obs, _)) = inputs.fresh(i) else { continue };
        let Some(replica) = &obs.replica else { continue };
        // An address no config names (a proxy, a VIP, NAT) is weaker evidence
        // than the config's `upstream` or the one master of the same data.
        let actual = match inputs.node_at(&replica.master_host, replica.master_port, &obs.replid) {
            Some(u) if u != i => Upstream::Node(u),
            _ => {
                let declared = inputs.fleet.nodes[i].upstream.as_deref().and_then(|n| inputs.fleet.named(n));
                let same_data: Vec<usize> = inputs
                    .nodes()
                    .filter(|&u| u != i && inputs.fresh(u).is_some_and(|(m, _)| m.is_master && m.replid == obs.replid))
                    .collect();
                match (declared.filter(|&u| u != i), same_data.as_slice()) {
                    (Some(u), _) | (None, &[u]) => Upstream::Node(u),
                    _ => Upstream::Address(format!("{}:{}", replica.master_host, replica.master_port)),
                }
            }
        };
        mem.upstreams.insert(i, actual);
    }
}

fn entry_detail(entry: &ConnectedReplica) -> RedisLinkDetail {
    RedisLinkDetail { state: entry.state.clone(), ack_age_seconds: entry.ack_age }
}

/// A link that looks up but whose periodic messages stopped: the master has
/// had no ACK from the replica (replica → master cut), or the replica has
/// heard nothing from its master, pings included (master → replica cut).
/// Both ages are measured by one server on its own clock. Redis itself only
/// notices after `repl-timeout` (60 s).
fn judge_silence(link: &mut RedisLink, entry: Option<&ConnectedReplica>, replica_io_age: Option<i64>, poll: Duration) {
    let ack_age = entry.filter(|e| e.state == "online").and_then(|e| e.ack_age);
    link.last_message_age_seconds = ack_age.map(|a| a as f64).or(replica_io_age.map(|a| a.max(0) as f64));
    if !link.up {
        return;
    }
    let io_limit = (PING_PERIOD + silence_margin(poll)).as_secs() as i64;
    let reason = match (ack_age, replica_io_age) {
        (Some(ack), _) if ack > ACK_SILENT_AFTER => format!(
            "silent for {ack} s: {} has had no ACK from {} (replicas ACK every second)",
            link.id.source, link.id.replica
        ),
        (_, Some(io)) if io > io_limit => format!(
            "silent for {io} s: {} has heard nothing from {} (masters ping every {} s)",
            link.id.replica,
            link.id.source,
            PING_PERIOD.as_secs()
        ),
        _ => return,
    };
    link.up = false;
    link.state = SILENT.into();
    link.reason = Some(reason);
}

fn configured_link(
    mem: &mut RedisMemory,
    inputs: &RedisInputs<'_>,
    r: usize,
    entry: Option<(usize, &ConnectedReplica)>,
    now: Instant,
) -> Option<RedisLink> {
    let spec = &inputs.fleet.nodes[r];
    let configured = spec.upstream.as_deref().and_then(|n| inputs.fleet.named(n));
    let upstream = mem.upstreams.get(&r).cloned().or(configured.map(Upstream::Node))?;
    let mut link = RedisLink::new(
        SYSTEM,
        LinkKind::Replica,
        label(inputs.fleet.nodes, &upstream),
        (spec.name.clone(), spec.region.clone()),
    );
    link.detail = entry.map(|(_, e)| entry_detail(e));

    if let Some((obs, _)) = inputs.last_ok(r).filter(|(o, _)| o.is_master) {
        // Promoted (REPLICAOF NO ONE, failover) or misdeclared.
        let old_master_still_master = match upstream {
            Upstream::Node(u) => {
                inputs.fresh(u).is_some_and(|(m, _)| m.is_master && obs.replid2.as_deref() == Some(&*m.replid))
            }
            Upstream::Address(_) => false,
        };
        link.state = "promoted".into();
        if old_master_still_master {
            link.reason = Some(format!(
                "{} is a master now while {} is still a master of the same data",
                spec.name, link.id.source
            ));
        } else if configured.is_some() {
            link.reason = Some(format!("{} is a master, not a replica of its configured upstream", spec.name));
        } else {
            mem.upstreams.remove(&r);
            return None;
        }
        return Some(link);
    }

    if let Some((obs, at)) = inputs.fresh(r) {
        let Some(replica) = &obs.replica else { return Some(link) };
        // A server back from a crash (or in a full sync) reports the stream
        // and offset of the data it holds: its lag is that data's age.
        link.lag = lag_of(inputs.history(&obs.replid), Some(replica.offset), at);
        link.data_age_seconds = Some(now.saturating_duration_since(at).as_secs_f64());
        link.up = replica.link_up && !replica.sync_in_progress;
        link.state = if replica.sync_in_progress {
            "sync".into()
        } else if replica.link_up {
            "up".into()
        } else {
            "down".into()
        };
        if !replica.link_up {
            link.reason = Some(match replica.link_down_since_seconds {
                Some(s) if s >= 0 => format!("master link down for {s} s"),
                _ => "master link down".into(),
            });
        } else if replica.sync_in_progress {
            link.reason = Some("full resynchronisation in progress".into());
        }
        let entry = entry.filter(|(u, _)| inputs.fresh(*u).is_some()).map(|(_, e)| e);
        judge_silence(&mut link, entry, replica.last_io_seconds_ago, inputs.fleet.poll_interval);
        return Some(link);
    }

    let failure = inputs.fleet.failure_text(r);
    if let Some((u, e)) = entry {
        if let Some((master, at)) = inputs.fresh(u) {
            // The replica is unreachable for replag; its master still lists it.
            // Both its last ACK (once a second) and what replag last read
            // from the replica itself are positions it had reached: the
            // larger is the closer to the truth.
            let own = inputs
                .last_ok(r)
                .filter(|(o, _)| o.replid == master.replid)
                .and_then(|(o, _)| o.replica.as_ref().map(|x| x.offset));
            let position = own.map_or(e.offset, |o| o.max(e.offset));
            link.lag = lag_of(inputs.history(&master.replid), Some(position), at);
            link.data_age_seconds = Some(now.saturating_duration_since(at).as_secs_f64());
            link.up = e.state == "online";
            link.state = e.state.clone();
            link.reason = Some(format!(
                "replica unreachable ({failure}); figures from {}'s INFO (last ACK {} s ago)",
                link.id.source,
                e.ack_age.map_or("?".into(), |a| a.to_string())
            ));
            judge_silence(&mut link, Some(e), None, inputs.fleet.poll_interval);
            return Some(link);
        }
    }
    link.state = "down".into();
    link.reason = Some(format!("replica unreachable ({failure}) and not listed by {}", link.id.source));
    if let Some((obs, at)) = inputs.last_ok(r) {
        let offset = obs.replica.as_ref().map(|x| x.offset);
        link.lag = lag_of(inputs.history(&obs.replid), offset, now);
        link.data_age_seconds = Some(now.saturating_duration_since(at).as_secs_f64());
    }
    Some(link)
}

fn discovered_links(
    mem: &mut RedisMemory,
    inputs: &RedisInputs<'_>,
    entries: &[(usize, &ConnectedReplica)],
    now: Instant,
) -> Vec<RedisLink> {
    let mut links = Vec::new();
    let mut seen = HashSet::new();
    let entries = if inputs.fleet.discovery { entries } else { &[] };
    for (u, entry) in entries {
        let name = DiscoveredLinks::unique_name(&seen, *u, &format!("{}:{}", entry.ip, entry.port), None);
        seen.insert((*u, name.clone()));
        mem.discovered.saw(*u, &name, now);
        let Some((master, at)) = inputs.fresh(*u) else { continue };
        let mut link = RedisLink::new(
            SYSTEM,
            LinkKind::Replica,
            label(inputs.fleet.nodes, &Upstream::Node(*u)),
            (name, UNKNOWN_REGION.into()),
        );
        link.lag = lag_of(inputs.history(&master.replid), Some(entry.offset), at);
        link.data_age_seconds = Some(now.saturating_duration_since(at).as_secs_f64());
        link.up = entry.state == "online";
        link.state = entry.state.clone();
        link.reason = Some("replica not in the config; figures from the master's INFO".into());
        link.detail = Some(entry_detail(entry));
        judge_silence(&mut link, Some(entry), None, inputs.fleet.poll_interval);
        links.push(link);
    }
    links.extend(mem.discovered.vanished_links(
        &seen,
        now,
        inputs.fleet.nodes,
        (SYSTEM, LinkKind::Replica),
        |u, link| {
            let why = if inputs.fresh(u).is_some() { "no longer listed by" } else { "cannot read the replica list of" };
            format!("{why} {}", link.id.source)
        },
    ));
    links
}

fn details(inputs: &RedisInputs<'_>) -> RedisDetails {
    let mut out = RedisDetails::default();
    for i in inputs.nodes() {
        let Some((obs, _)) = inputs.fresh(i) else { continue };
        let replica = obs.replica.as_ref();
        out.servers.push(RedisServerView {
            node: inputs.fleet.nodes[i].name.clone(),
            region: inputs.fleet.nodes[i].region.clone(),
            offset: replica.map_or(obs.master_repl_offset, |r| r.offset),
            connected_replicas: obs.is_master.then_some(obs.replicas.len()),
            backlog_size: obs.backlog_size,
            backlog_histlen: obs.backlog_histlen,
            sync_full: obs.sync_full,
            sync_partial_ok: obs.sync_partial_ok,
            sync_partial_err: obs.sync_partial_err,
            master_link_up: replica.map(|r| r.link_up),
            master_last_io_seconds: replica.and_then(|r| r.last_io_seconds_ago),
            master_link_down_since_seconds: replica.and_then(|r| r.link_down_since_seconds).filter(|s| *s >= 0),
            master_sync_in_progress: replica.map(|r| r.sync_in_progress),
        });
    }
    out
}
