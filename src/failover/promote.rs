//! "Can I promote it?": step two of the failover playbook, answered from
//! what replag last saw of both sides. A candidate passes only when it has
//! replayed everything its primary was last seen to have written.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::model::{LinkKind, LinkView, RoleFact, System};
use crate::systems::position_text;

/// What was asked: a node, or a group (by name, or by its primary's name)
/// whose best candidate replag should name.
#[derive(Debug, Clone, Default)]
pub struct PromoteQuery {
    pub node: Option<String>,
    pub group: Option<String>,
    pub primary: Option<String>,
    pub system: Option<System>,
}

/// Why a question cannot be answered (HTTP 400/404, exit 2).
#[derive(Debug, Clone, PartialEq)]
pub enum PromoteError {
    UnknownNode(String),
    UnknownGroup(String),
    Ambiguous(String),
}

impl std::fmt::Display for PromoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PromoteError::UnknownNode(n) => write!(f, "no node named {n:?} has been seen"),
            PromoteError::UnknownGroup(g) => write!(f, "no replica of {g:?} has been seen"),
            PromoteError::Ambiguous(why) => write!(f, "{why}"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrimaryStanding {
    pub node: String,
    pub region: String,
    pub up: bool,
    pub position: u64,
    pub position_text: String,
    /// How old its last seen position is.
    pub position_age_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CandidateStanding {
    pub node: String,
    pub region: String,
    pub up: bool,
    pub received: Option<u64>,
    pub replayed: Option<u64>,
    pub replayed_text: Option<String>,
    /// The primary's last seen position minus what the candidate replayed.
    pub behind_bytes: Option<u64>,
    pub link_state: Option<String>,
}

/// The answer: 200 / exit 0 when `pass`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromoteVerdict {
    pub pass: bool,
    pub system: System,
    pub group: String,
    pub candidate: CandidateStanding,
    pub primary: Option<PrimaryStanding>,
    /// Why it fails, or what to know although it passes.
    pub reasons: Vec<String>,
    pub summary: String,
    /// Every replica of the group considered, best first (without `node`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<CandidateStanding>,
}

pub fn verdict<D>(
    roles: &[RoleFact],
    links: &[LinkView<D>],
    query: &PromoteQuery,
    now: Instant,
) -> Result<PromoteVerdict, PromoteError> {
    let in_system = |f: &&RoleFact| query.system.is_none_or(|s| f.system == s);
    if let Some(node) = &query.node {
        let candidate = roles
            .iter()
            .filter(in_system)
            .find(|f| &f.node == node)
            .ok_or_else(|| PromoteError::UnknownNode(node.clone()))?;
        return Ok(judge(roles, links, candidate, now));
    }
    let replicas: Vec<&RoleFact> = match (&query.group, &query.primary) {
        (Some(group), _) => {
            roles.iter().filter(in_system).filter(|f| &f.group == group && f.replica().is_some()).collect()
        }
        (None, Some(primary)) => {
            let group =
                roles.iter().filter(in_system).find(|f| &f.node == primary).map(|f| (f.system, f.group.clone()));
            let Some((system, group)) = group else { return Err(PromoteError::UnknownNode(primary.clone())) };
            roles
                .iter()
                .filter(|f| f.system == system && f.replica().is_some())
                .filter(|f| {
                    (!group.is_empty() && f.group == group)
                        || links
                            .iter()
                            .any(|l| l.id.system == system && &l.id.source == primary && l.id.replica == f.node)
                })
                .collect()
        }
        (None, None) => {
            let mut groups: Vec<(System, &str)> = roles
                .iter()
                .filter(in_system)
                .filter(|f| f.replica().is_some())
                .map(|f| (f.system, f.group.as_str()))
                .collect();
            groups.sort();
            groups.dedup();
            match groups.as_slice() {
                [(system, group)] => {
                    roles.iter().filter(|f| f.system == *system && f.group == *group && f.replica().is_some()).collect()
                }
                [] => return Err(PromoteError::Ambiguous("no replica has been seen".into())),
                _ => return Err(PromoteError::Ambiguous("several groups: name a node, a group or a primary".into())),
            }
        }
    };
    let mut judged: Vec<PromoteVerdict> = replicas.into_iter().map(|c| judge(roles, links, c, now)).collect();
    if judged.is_empty() {
        let name = query.group.clone().or(query.primary.clone()).unwrap_or_default();
        return Err(PromoteError::UnknownGroup(name));
    }
    // As Sentinel picks: reachable first, then the most advanced.
    judged.sort_by_key(|v| {
        (
            std::cmp::Reverse(v.candidate.up),
            std::cmp::Reverse(v.candidate.replayed.unwrap_or(0)),
            v.candidate.node.clone(),
        )
    });
    let mut best = judged.remove(0);
    best.others = judged.into_iter().map(|v| v.candidate).collect();
    Ok(best)
}

/// The verdict on one candidate.
fn judge<D>(roles: &[RoleFact], links: &[LinkView<D>], c: &RoleFact, now: Instant) -> PromoteVerdict {
    let system = c.system;
    let link = links.iter().find(|l| {
        l.id.system == system
            && l.id.replica == c.node
            && l.id.kind != LinkKind::Logical
            && l.id.kind != LinkKind::Volume
    });
    let mut reasons = Vec::new();
    let mut candidate = CandidateStanding {
        node: c.node.clone(),
        region: c.region.clone(),
        up: c.up,
        received: None,
        replayed: None,
        replayed_text: None,
        behind_bytes: None,
        link_state: link.map(|l| l.state.clone()),
    };
    let fail = |candidate, reasons: Vec<String>, primary, summary: String| PromoteVerdict {
        pass: false,
        system,
        group: c.group.clone(),
        candidate,
        primary,
        reasons,
        summary,
        others: Vec::new(),
    };
    let Some(replica) = c.replica() else {
        let why = format!("{} is a primary, not a replica", c.node);
        return fail(candidate, vec![why.clone()], None, why);
    };
    candidate.received = replica.received;
    candidate.replayed = replica.replayed;
    candidate.replayed_text = replica.replayed.map(|p| position_text(system, p));
    // Its primary: the group's, else the link's source.
    let mut primaries: Vec<&RoleFact> = if c.group.is_empty() {
        Vec::new()
    } else {
        roles.iter().filter(|f| f.system == system && f.group == c.group && f.primary().is_some()).collect()
    };
    if primaries.is_empty() {
        if let Some(l) = link {
            primaries
                .extend(roles.iter().filter(|f| f.system == system && f.node == l.id.source && f.primary().is_some()));
        }
    }
    let up_primaries: Vec<&&RoleFact> = primaries.iter().filter(|f| f.up).collect();
    if up_primaries.len() > 1 {
        let names: Vec<&str> = up_primaries.iter().map(|f| f.node.as_str()).collect();
        let why = format!("split brain: {} are all primaries", names.join(", "));
        return fail(candidate, vec![why.clone()], None, why);
    }
    // The one up, else the one seen last.
    let primary_fact =
        up_primaries.first().map(|f| **f).or_else(|| primaries.iter().max_by_key(|f| f.seen_at).copied());
    let Some(pf) = primary_fact else {
        let why = format!("no primary of {}'s group has been seen: nothing to compare it with", c.node);
        return fail(candidate, vec![why.clone()], None, why);
    };
    let Some(p) = pf.primary() else { unreachable!("filtered to primaries") };
    let age = now.saturating_duration_since(p.position_at).as_secs_f64();
    let primary = PrimaryStanding {
        node: pf.node.clone(),
        region: pf.region.clone(),
        up: pf.up,
        position: p.position,
        position_text: position_text(system, p.position),
        position_age_seconds: age,
    };
    if !c.up {
        reasons.push(format!("{} is unreachable: its figures are as of its last poll", c.node));
    }
    if let Some(l) = link.filter(|l| !l.up) {
        let since = l.down_seconds.map_or(String::new(), |d| format!(" for {d:.1} s"));
        reasons.push(format!(
            "its stream is {}{since}{}",
            l.state,
            l.reason.as_ref().map_or(String::new(), |r| format!(" ({r})"))
        ));
    }
    let Some(replayed) = replica.replayed else {
        reasons.insert(0, format!("{} does not say how far it has replayed", c.node));
        let summary = reasons[0].clone();
        return fail(candidate, reasons, Some(primary), summary);
    };
    // With the primary up, the link's lag compares both at one moment (the
    // primary's position when the replica was read); with it gone, its last
    // seen position is all there is to compare with.
    let link_lag = link.filter(|l| l.id.source == pf.node).and_then(|l| l.lag).map(|l| l.bytes);
    let behind = match link_lag.filter(|_| pf.up) {
        Some(bytes) => bytes,
        None => p.position.saturating_sub(replayed),
    };
    candidate.behind_bytes = Some(behind);
    let when = if pf.up {
        format!("as read {age:.1} s ago")
    } else {
        format!("last seen {age:.1} s ago, before it became unreachable")
    };
    if pf.up {
        // Caught up or not, promoting beside a primary that answers makes two.
        let caught_up = if behind == 0 { format!("; {} is caught up with it {when}", c.node) } else { String::new() };
        reasons.insert(
            0,
            format!(
                "{} is up and taking writes: stop it first (a switchover), or two primaries will take writes{caught_up}",
                pf.node
            ),
        );
    }
    if behind > 0 || !c.up || pf.up {
        let unreplayed = replica.received.filter(|r| *r > replayed).map_or(String::new(), |r| {
            format!("; {} bytes of it received but not replayed", r.saturating_sub(replayed).min(behind))
        });
        if behind > 0 {
            reasons.insert(
                0,
                format!(
                    "behind by {behind} bytes: replayed {} of the primary's {} ({when}){unreplayed}",
                    position_text(system, replayed),
                    primary.position_text
                ),
            );
        }
        let summary = reasons[0].clone();
        return fail(candidate, reasons, Some(primary), summary);
    }
    reasons.push(format!("{} may have written more after replag last saw it, {age:.1} s ago", pf.node));
    let summary = format!("{} is caught up to {}, the primary's position {when}", c.node, primary.position_text);
    PromoteVerdict {
        pass: true,
        system,
        group: c.group.clone(),
        candidate,
        primary: Some(primary),
        reasons,
        summary,
        others: Vec::new(),
    }
}
