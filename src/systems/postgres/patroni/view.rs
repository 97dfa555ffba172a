//! What Patroni's REST API says of its cluster: members from `GET /cluster`
//! (name, role, state, address, timeline, Patroni's own lag), maintenance
//! mode, and switches from `GET /history`. Parsed strictly: a reply that is
//! not Patroni's is a protocol failure naming what was wrong.

use serde::Serialize;
use serde_json::Value;

use crate::model::{FailureKind, PollFailure, Revealed};
use crate::systems::postgres::lsn::Lsn;

/// One member as Patroni lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatroniMember {
    pub name: String,
    /// `leader`, `standby_leader`, `replica`, `sync_standby`, …
    pub role: String,
    /// `running`, `streaming`, `stopped`, `starting`, `crashed`, …
    pub state: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub timeline: Option<u32>,
    /// Patroni's lag (bytes behind the leader's last position in the DCS);
    /// None where it says `unknown` or gives none (the leader).
    pub lag_bytes: Option<u64>,
}

impl PatroniMember {
    /// Leads its cluster: the primary, or a standby cluster's leader.
    pub fn is_leader(&self) -> bool {
        matches!(self.role.as_str(), "leader" | "master" | "standby_leader" | "standby-leader")
    }
}

/// One switch from `GET /history`: timeline `timeline` ended at `lsn`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatroniSwitch {
    pub timeline: u32,
    pub lsn: u64,
    pub reason: Option<String>,
    /// Unix seconds.
    pub at: Option<f64>,
    pub new_leader: Option<String>,
}

/// One endpoint's answer this poll.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointStatus {
    pub endpoint: String,
    pub up: bool,
    /// Why not, when not.
    pub error: Option<String>,
}

/// The cluster as the newest answering endpoint sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatroniView {
    pub members: Vec<PatroniMember>,
    /// Maintenance mode: Patroni neither fails over nor restarts anything.
    pub paused: bool,
    pub history: Vec<PatroniSwitch>,
    /// The endpoint whose view this is.
    pub answered_by: String,
    pub endpoints: Vec<EndpointStatus>,
    /// Endpoints that answered with another leader or timeline, and which won.
    pub disagreement: Option<String>,
}

impl PatroniView {
    pub fn leader(&self) -> Option<&PatroniMember> {
        self.members.iter().find(|m| m.is_leader())
    }

    /// The newest timeline any member is on: a newer view has a higher one.
    pub fn timeline(&self) -> u32 {
        self.members.iter().filter_map(|m| m.timeline).max().unwrap_or(0)
    }

    /// Every member with an address, to be polled as a PostgreSQL node.
    pub fn revealed(&self) -> Vec<Revealed> {
        let mut out: Vec<Revealed> = self
            .members
            .iter()
            .filter_map(|m| {
                let name = crate::model::config::check_label_value("member", &m.name).ok().map(|()| m.name.clone());
                Some(Revealed { host: m.host.clone()?, port: m.port?, group: None, name })
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

fn malformed(what: String) -> PollFailure {
    PollFailure::new(FailureKind::Protocol, what)
}

/// Text from the network, short and printable, for an error message.
fn shown(v: &Value) -> String {
    crate::model::truncate(&v.to_string(), 60).to_string()
}

/// `GET /cluster`: members and pause. Anything else is refused.
pub fn parse_cluster(body: &[u8]) -> Result<(Vec<PatroniMember>, bool), PollFailure> {
    let reply: Value =
        serde_json::from_slice(body).map_err(|e| malformed(format!("not a Patroni /cluster reply (not JSON: {e})")))?;
    let Some(listed) = reply.get("members").and_then(Value::as_array) else {
        return Err(malformed("not a Patroni /cluster reply (no members list)".into()));
    };
    let mut members = Vec::with_capacity(listed.len());
    for m in listed {
        let text = |key: &str| m.get(key).and_then(Value::as_str).map(str::to_string);
        let Some(name) = text("name").filter(|n| !n.is_empty() && n.len() <= 256) else {
            return Err(malformed(format!("Patroni /cluster member without a name: {}", shown(m))));
        };
        let port = match m.get("port") {
            None | Some(Value::Null) => None,
            Some(p) => Some(p.as_u64().and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0).ok_or_else(|| {
                malformed(format!("Patroni /cluster member {name}: port is not a port: {}", shown(p)))
            })?),
        };
        let timeline = match m.get("timeline") {
            None | Some(Value::Null) => None,
            Some(t) => Some(t.as_u64().and_then(|t| u32::try_from(t).ok()).ok_or_else(|| {
                malformed(format!("Patroni /cluster member {name}: timeline is not a number: {}", shown(t)))
            })?),
        };
        // `lag` is a number of bytes, or "unknown".
        let lag_bytes = m.get("lag").and_then(Value::as_u64);
        members.push(PatroniMember {
            name: crate::model::truncate(&name, 128).to_string(),
            role: text("role").unwrap_or_default().chars().take(32).collect(),
            state: text("state").unwrap_or_default().chars().take(32).collect(),
            host: text("host").filter(|h| !h.is_empty() && h.len() <= 253),
            port,
            timeline,
            lag_bytes,
        });
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((members, reply.get("pause").and_then(Value::as_bool).unwrap_or(false)))
}

/// `GET /history`: `[[timeline, lsn, reason, timestamp, new_leader], …]`
/// (the last two from Patroni 2.x and 3.x on).
pub fn parse_history(body: &[u8]) -> Result<Vec<PatroniSwitch>, PollFailure> {
    let reply: Value =
        serde_json::from_slice(body).map_err(|e| malformed(format!("not a Patroni /history reply (not JSON: {e})")))?;
    let Some(entries) = reply.as_array() else {
        return Err(malformed(format!("not a Patroni /history reply: {}", shown(&reply))));
    };
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let fields = e.as_array().map(Vec::as_slice).unwrap_or_default();
        let (Some(timeline), Some(lsn)) = (
            fields.first().and_then(Value::as_u64).and_then(|t| u32::try_from(t).ok()),
            fields.get(1).and_then(Value::as_u64),
        ) else {
            return Err(malformed(format!("Patroni /history entry is not [timeline, lsn, …]: {}", shown(e))));
        };
        let text = |i: usize| fields.get(i).and_then(Value::as_str).map(|s| crate::model::truncate(s, 200).to_string());
        let at = text(3)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.timestamp_micros() as f64 / 1e6);
        out.push(PatroniSwitch { timeline, lsn, reason: text(2), at, new_leader: text(4) });
    }
    out.sort_by_key(|s| s.timeline);
    Ok(out)
}

impl PatroniSwitch {
    /// As people read the switch point.
    pub fn lsn_text(&self) -> String {
        Lsn(self.lsn).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = r#"{"members": [{"name": "m1", "role": "leader", "state": "running", "api_url": "http://127.0.0.1:28001/patroni", "host": "127.0.0.1", "port": 25431, "timeline": 2}, {"name": "m2", "role": "replica", "state": "running", "host": "127.0.0.1", "port": 25432, "timeline": 2, "lag": 280}, {"name": "m3", "role": "replica", "state": "stopped", "host": "127.0.0.1", "port": 25433, "lag": "unknown"}], "pause": true}"#;

    #[test]
    fn reads_a_cluster_and_its_history() {
        let (members, paused) = parse_cluster(CLUSTER.as_bytes()).unwrap();
        assert!(paused);
        assert_eq!(members.len(), 3);
        assert!(members[0].is_leader() && !members[1].is_leader());
        assert_eq!((members[1].lag_bytes, members[2].lag_bytes), (Some(280), None), "unknown lag is no figure");
        assert_eq!(members[2].timeline, None);
        let history = parse_history(
            br#"[[1, 67109256, "no recovery target specified", "2026-12-07T22:21:30.609221+00:00", "m2"], [2, 83886240, "no recovery target specified", "2026-12-07T22:25:00+00:00"]]"#,
        )
        .unwrap();
        assert_eq!(history[0].lsn_text(), "0/4000188");
        assert_eq!(history[0].new_leader.as_deref(), Some("m2"));
        assert!((history[0].at.unwrap() - 1_796_682_090.609_221).abs() < 1e-3);
        assert_eq!(history[1].new_leader, None, "older Patronis name no leader");
    }

    #[test]
    fn refuses_what_is_not_patroni() {
        for bad in [
            &b"<html>hello</html>"[..],
            br#"{"status": "ok"}"#,
            br#"{"members": [{"role": "leader"}]}"#,
            br#"{"members": [{"name": "m", "port": 99999}]}"#,
            br#"{"members": [{"name": "m", "timeline": "two"}]}"#,
        ] {
            let e = parse_cluster(bad).unwrap_err();
            assert_eq!(e.kind, FailureKind::Protocol, "{e:?}");
        }
        assert!(parse_history(br#"{"a": 1}"#).is_err());
        assert!(parse_history(br#"[["x", 1]]"#).is_err());
        assert!(parse_history(b"[]").unwrap().is_empty());
    }
}
