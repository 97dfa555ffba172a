//! A Sentinel's view: the masters it monitors, their replicas, and whether
//! it could fail over now (`SENTINEL CKQUORUM`). Read in one round trip:
//! `SENTINEL MASTERS` with every known master's replicas and quorum check
//! (see `topology`).

use std::collections::HashMap;

use serde::Serialize;

use crate::model::{FailureKind, PollFailure};

/// One master as one Sentinel sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentinelMaster {
    pub name: String,
    pub ip: String,
    pub port: u16,
    /// `flags`: `master`, plus `s_down`, `o_down`, `failover_in_progress`, …
    pub flags: Vec<String>,
    pub quorum: u32,
    pub other_sentinels: u32,
    /// Bumped at every failover: the highest epoch is the newest view.
    pub config_epoch: u64,
    pub replicas: Vec<SentinelReplica>,
    /// `SENTINEL CKQUORUM`: enough Sentinels reachable to authorize a failover.
    pub quorum_ok: bool,
    /// What CKQUORUM said (why not, when not).
    pub quorum_message: String,
}

impl SentinelMaster {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// One replica of a master, as the Sentinel lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentinelReplica {
    pub ip: String,
    pub port: u16,
    pub flags: Vec<String>,
    /// `master-link-status`: `ok` or `err`.
    pub link_ok: bool,
}

/// What one poll of a Sentinel learned.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct SentinelView {
    pub masters: Vec<SentinelMaster>,
}

fn malformed(what: impl Into<String>) -> PollFailure {
    PollFailure::new(FailureKind::Protocol, what.into())
}

fn field<'a>(fields: &'a HashMap<String, String>, key: &str, whose: &str) -> Result<&'a str, PollFailure> {
    fields.get(key).map(String::as_str).ok_or_else(|| malformed(format!("Sentinel {whose} entry without {key}")))
}

fn number<T: std::str::FromStr>(fields: &HashMap<String, String>, key: &str, whose: &str) -> Result<T, PollFailure> {
    let text = field(fields, key, whose)?;
    text.parse().map_err(|_| {
        malformed(format!(
            "Sentinel {whose} field {key} is not a number: {:?}",
            text.chars().take(40).collect::<String>()
        ))
    })
}

fn flags(text: &str) -> Vec<String> {
    text.split(',').filter(|f| !f.is_empty()).map(str::to_string).collect()
}

/// One `SENTINEL MASTERS` entry (its replicas and quorum come separately).
pub fn parse_master(fields: &HashMap<String, String>) -> Result<SentinelMaster, PollFailure> {
    Ok(SentinelMaster {
        name: field(fields, "name", "master")?.to_string(),
        ip: field(fields, "ip", "master")?.to_string(),
        port: number(fields, "port", "master")?,
        flags: flags(field(fields, "flags", "master")?),
        quorum: number(fields, "quorum", "master")?,
        other_sentinels: fields.get("num-other-sentinels").and_then(|n| n.parse().ok()).unwrap_or(0),
        config_epoch: fields.get("config-epoch").and_then(|n| n.parse().ok()).unwrap_or(0),
        replicas: Vec::new(),
        quorum_ok: false,
        quorum_message: String::new(),
    })
}

/// One `SENTINEL REPLICAS` entry.
pub fn parse_replica(fields: &HashMap<String, String>) -> Result<SentinelReplica, PollFailure> {
    Ok(SentinelReplica {
        ip: field(fields, "ip", "replica")?.to_string(),
        port: number(fields, "port", "replica")?,
        flags: flags(field(fields, "flags", "replica")?),
        link_ok: fields.get("master-link-status").map(String::as_str) == Some("ok"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_masters_and_replicas_and_refuses_garbage() {
        let m = parse_master(&map(&[
            ("name", "orders"),
            ("ip", "10.0.0.1"),
            ("port", "6379"),
            ("flags", "master,s_down,o_down"),
            ("quorum", "2"),
            ("num-other-sentinels", "2"),
            ("config-epoch", "7"),
        ]))
        .unwrap();
        assert_eq!((m.name.as_str(), m.port, m.quorum, m.config_epoch), ("orders", 6379, 2, 7));
        assert!(m.has_flag("o_down") && m.has_flag("s_down") && !m.has_flag("failover_in_progress"));
        let r = parse_replica(&map(&[
            ("ip", "10.0.0.2"),
            ("port", "6380"),
            ("flags", "slave"),
            ("master-link-status", "ok"),
        ]))
        .unwrap();
        assert!(r.link_ok && r.port == 6380);
        assert!(parse_master(&map(&[
            ("name", "x"),
            ("ip", "h"),
            ("port", "99999"),
            ("flags", "master"),
            ("quorum", "2")
        ]))
        .is_err());
        assert!(parse_replica(&map(&[("ip", "h"), ("flags", "slave")])).is_err());
    }
}
