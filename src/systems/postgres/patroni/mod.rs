//! Patroni: a PostgreSQL cluster's members found and followed from its REST
//! API, the way Redis servers are from their Sentinels. A `role = "patroni"`
//! entry (`target`) is polled for `GET /cluster` and `GET /history`
//! (`source`, `view`); every member it names joins the fleet as a
//! PostgreSQL node and is measured like any other. Links follow switchovers
//! from the servers themselves; this part adds Patroni's view beside
//! replag's (`derive`, `detail`: its lag, member states, maintenance mode) and its
//! record of each switch (`annotate_switches`), and the `replag_patroni_*`
//! families (`metrics`).

pub(super) mod detail;
pub(super) mod metrics;
mod source;
pub(super) mod target;
mod view;

use std::collections::HashMap;

pub use detail::{PatroniClusterView, PatroniMemberView};
pub use metrics::render as render_metrics;
pub use source::PatroniSource;
pub use target::{from_config, PatroniTarget};
pub use view::{EndpointStatus, PatroniMember, PatroniSwitch, PatroniView};

use super::detail::PgServerView;
use crate::model::{normalize_host, HaRecord, Role, RoleFact, Switch};

/// The fleet as Patroni entries are read: their targets and views.
pub type PatroniFleet<'a> = crate::lag::Fleet<'a, PatroniTarget, PatroniView>;

/// The node polled for the member at `host:port`, by address.
fn node_of<'a>(fleet: &'a PatroniFleet<'_>, member: &PatroniMember) -> Option<&'a str> {
    let host = normalize_host(member.host.as_deref()?);
    let i = fleet.index.nodes_at(super::fleet::SYSTEM, &host, member.port?).next()?;
    Some(fleet.nodes[i].name.as_str())
}

/// Every Patroni cluster, with replag's figures from the servers' views.
pub fn derive(fleet: &PatroniFleet<'_>, servers: &[PgServerView]) -> Vec<PatroniClusterView> {
    let servers: HashMap<&str, &PgServerView> = servers.iter().map(|s| (s.node.as_str(), s)).collect();
    let mut out = Vec::new();
    for i in fleet.indices() {
        let (Some(member), node) = (fleet.member(i), &fleet.nodes[i]) else { continue };
        let Some((view, _)) = member.last_ok else { continue };
        let tolerance = member.target.lag_tolerance_bytes;
        let leader = view.leader();
        let leader_position =
            leader.and_then(|l| servers.get(node_of(fleet, l)?)).and_then(|s| s.current_lsn.or(s.receive_lsn));
        let members = view
            .members
            .iter()
            .map(|m| {
                let polled = node_of(fleet, m);
                let server = polled.and_then(|n| servers.get(n));
                let replag_lag_bytes = (!m.is_leader())
                    .then(|| {
                        let had = server.and_then(|s| s.receive_lsn.or(s.replay_lsn))?;
                        Some(leader_position?.saturating_sub(had))
                    })
                    .flatten();
                let lag_disagrees =
                    matches!((m.lag_bytes, replag_lag_bytes), (Some(p), Some(r)) if p.abs_diff(r) > tolerance);
                PatroniMemberView {
                    member: m.name.clone(),
                    node: polled.map(str::to_string),
                    role: m.role.clone(),
                    state: m.state.clone(),
                    timeline: m.timeline,
                    patroni_lag_bytes: m.lag_bytes,
                    replag_lag_bytes,
                    lag_disagrees,
                    note: note(m, server.copied()),
                }
            })
            .collect();
        out.push(PatroniClusterView {
            node: node.name.clone(),
            region: node.region.clone(),
            up: member.is_up(),
            answered_by: view.answered_by.clone(),
            leader: leader.map(|l| l.name.clone()),
            timeline: view.timeline(),
            paused: view.paused,
            disagreement: view.disagreement.clone(),
            endpoints: view.endpoints.clone(),
            members,
            history: view.history.clone(),
        });
    }
    out
}

/// Why a member is not simply running: Patroni's state, or a replica
/// Patroni calls running whose WAL receiver is not streaming.
fn note(m: &PatroniMember, server: Option<&PgServerView>) -> Option<String> {
    match m.state.as_str() {
        "running" | "streaming" => {}
        "stopped" => return Some("Patroni says PostgreSQL is stopped".into()),
        "starting" => return Some("Patroni says PostgreSQL is starting".into()),
        "" => return Some("Patroni gives no state".into()),
        other => return Some(format!("Patroni says PostgreSQL is {other}")),
    }
    if m.role == "leader" || m.role == "master" {
        return None;
    }
    let receiver = server?.wal_receiver_status.as_deref();
    (receiver != Some("streaming"))
        .then(|| format!("Patroni says {}, but its WAL receiver is {}", m.state, receiver.unwrap_or("not running")))
}

/// Patroni's record of each switch joins the promoted primary's facts: the
/// primary of timeline N took over where `/history` says timeline N−1
/// ended (also where the server's own history file cannot be read).
pub fn annotate_switches(fleet: &PatroniFleet<'_>, roles: &mut [RoleFact]) {
    let mut records: HashMap<&str, (&PatroniView, &str)> = HashMap::new();
    for i in fleet.indices() {
        let Some((view, _)) = fleet.last_ok(i) else { continue };
        for m in &view.members {
            if let Some(node) = node_of(fleet, m) {
                records.insert(node, (view, m.name.as_str()));
            }
        }
    }
    if records.is_empty() {
        return;
    }
    for fact in roles.iter_mut().filter(|f| f.system == super::fleet::SYSTEM) {
        let Some((view, _member)) = records.get(fact.node.as_str()) else { continue };
        let Role::Primary(p) = &mut fact.role else { continue };
        let Some(timeline) = p.generation.parse::<u32>().ok().filter(|t| *t > 1) else { continue };
        let Some(entry) = view.history.iter().find(|h| h.timeline == timeline - 1) else { continue };
        let record = Box::new(HaRecord {
            by: "patroni".into(),
            switch_position: entry.lsn,
            switch_text: entry.lsn_text(),
            at: entry.at,
            reason: entry.reason.clone(),
            new_leader: entry.new_leader.clone(),
        });
        match &mut p.switch {
            Some(switch) => switch.record = Some(record),
            None => {
                p.switch = Some(Switch {
                    from_generation: (timeline - 1).to_string(),
                    at: entry.lsn,
                    // Patroni copies it from the same history file.
                    exact: true,
                    record: Some(record),
                })
            }
        }
    }
}
