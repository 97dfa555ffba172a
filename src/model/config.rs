//! A node's entry as written in the config, and errors that name their key.
//! Below the systems: each system reads the keys that concern it from a
//! [`RawNode`] and reports problems with [`key_error`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use serde::Deserialize;

use super::text::quoted;

/// A config that cannot be used: which key, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("config key `{key}`: {problem}")]
    Key { key: String, problem: String },
    #[error("{0}")]
    Other(String),
}

/// `config key `KEY`: PROBLEM`.
pub fn key_error(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Key { key: key.into(), problem: problem.into() }
}

/// A node as written, for any system.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub name: Option<String>,
    pub url: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// TLS: CA certificate(s) to verify the server with.
    pub ca_file: Option<PathBuf>,
    /// PostgreSQL: client certificate and key for TLS client authentication.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub upstream: Option<String>,
    /// Replication group, for sharding: nodes of one group share a shard.
    pub group: Option<String>,
    /// PostgreSQL: subscription name → publisher node name.
    #[serde(default)]
    pub publishers: BTreeMap<String, String>,
    /// SeaweedFS: data center → replag region.
    #[serde(default)]
    pub datacenters: BTreeMap<String, String>,
    /// Write replag's heartbeat on this node when it is a source, and read
    /// every source's heartbeat when it is a replica (needs write access).
    #[serde(default)]
    pub heartbeat: bool,
    /// SeaweedFS: what the entry is — `master` (default), `filer`, or
    /// `filer_sync` (a `weed filer.sync` process, by its `-metricsPort`).
    pub role: Option<String>,
    /// SeaweedFS filer: the directory replag's heartbeats live under.
    pub heartbeat_path: Option<String>,
    /// SeaweedFS filer: `host:port` filer.sync knows it by, when not the url's
    /// (filer.sync and replag reach it through different addresses).
    pub sync_address: Option<String>,
    /// SeaweedFS filer.sync: the filer nodes it syncs (its `-a` and `-b`).
    pub filer_a: Option<String>,
    pub filer_b: Option<String>,
    /// SeaweedFS filer.sync: one way only, a → b (`-isActivePassive`).
    #[serde(default)]
    pub active_passive: bool,
    /// Redis Sentinel: the master names to watch (default: every one it monitors).
    #[serde(default)]
    pub masters: Vec<String>,
    /// Redis Sentinel: the environment variable holding the Sentinel's own
    /// password (`password_env` is the discovered servers').
    pub sentinel_password_env: Option<String>,
    /// Redis Sentinel and Cluster, Patroni: the region of discovered
    /// servers, by `host:port`, host, or CIDR network (`10.1.0.0/16`).
    #[serde(default)]
    pub node_regions: BTreeMap<String, String>,
    /// PostgreSQL `role = "patroni"`: the cluster's Patroni REST API
    /// endpoints (`http(s)://host:8008`); any one answering is enough.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Patroni REST API basic auth: the user, and the environment variable
    /// holding its password.
    pub patroni_username: Option<String>,
    pub patroni_password_env: Option<String>,
    /// Patroni REST API over HTTPS: CA certificate(s) to verify it with.
    pub patroni_ca_file: Option<PathBuf>,
    /// Patroni: how far (bytes) Patroni's lag of a member may be from
    /// replag's before the two are flagged as disagreeing.
    pub patroni_lag_tolerance_bytes: Option<u64>,
}

impl std::fmt::Debug for RawNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawNode").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A label value from the config (region, node name, group): short and safe.
pub fn check_label_value(key: &str, value: &str) -> Result<(), ConfigError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(key_error(key, format!("{} must be 1-64 characters of letters, digits, '-', '_' or '.'", quoted(value))))
    }
}

/// The password from `password_env` or `password_file`, if either is set.
pub fn configured_password(
    key: &str,
    node: &RawNode,
    env: &HashMap<String, String>,
) -> Result<Option<String>, ConfigError> {
    match (&node.password_env, &node.password_file) {
        (Some(_), Some(_)) => {
            Err(key_error(format!("{key}.password_env"), "set password_env or password_file, not both"))
        }
        (Some(var), None) => {
            env.get(var).cloned().map(Some).ok_or_else(|| {
                key_error(format!("{key}.password_env"), format!("environment variable {var} is not set"))
            })
        }
        (None, Some(path)) => Ok(Some(
            std::fs::read_to_string(path)
                .map_err(|e| key_error(format!("{key}.password_file"), format!("cannot read {}: {e}", path.display())))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        )),
        (None, None) => Ok(None),
    }
}

/// PEM CA certificate(s) from `ca_file`, if set.
pub fn read_ca(key: &str, node: &RawNode) -> Result<Option<Vec<u8>>, ConfigError> {
    let Some(path) = &node.ca_file else { return Ok(None) };
    let pem = std::fs::read(path)
        .map_err(|e| key_error(format!("{key}.ca_file"), format!("cannot read {}: {e}", path.display())))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(key_error(format!("{key}.ca_file"), format!("{} holds no PEM certificate", path.display())));
    }
    Ok(Some(pem))
}

/// Refuse a key that only another system takes (`set`: the entry sets it).
pub fn only_for(key: &str, set: bool, field: &str, system: &str) -> Result<(), ConfigError> {
    if set {
        return Err(key_error(format!("{key}.{field}"), format!("only applies to {system} nodes")));
    }
    Ok(())
}

/// Refuse the keys only Redis Sentinel and Cluster entries take
/// (`node_regions` too, unless `discovering`: a Patroni entry takes it).
pub fn refuse_redis_topology_keys(key: &str, node: &RawNode) -> Result<(), ConfigError> {
    refuse_sentinel_keys(key, node)?;
    if !node.node_regions.is_empty() {
        return Err(key_error(
            format!("{key}.node_regions"),
            "only applies to entries that discover servers: redis role = \"sentinel\" or \"cluster\", postgres role = \"patroni\"",
        ));
    }
    Ok(())
}

/// Refuse the keys only Redis Sentinel entries take.
pub fn refuse_sentinel_keys(key: &str, node: &RawNode) -> Result<(), ConfigError> {
    let set = [("masters", !node.masters.is_empty()), ("sentinel_password_env", node.sentinel_password_env.is_some())];
    match set.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(key_error(
            format!("{key}.{field}"),
            "only applies to redis entries with role = \"sentinel\" or \"cluster\"",
        )),
        None => Ok(()),
    }
}

/// Refuse the keys only PostgreSQL `role = "patroni"` entries take.
pub fn refuse_patroni_keys(key: &str, node: &RawNode) -> Result<(), ConfigError> {
    let set = [
        ("endpoints", !node.endpoints.is_empty()),
        ("patroni_username", node.patroni_username.is_some()),
        ("patroni_password_env", node.patroni_password_env.is_some()),
        ("patroni_ca_file", node.patroni_ca_file.is_some()),
        ("patroni_lag_tolerance_bytes", node.patroni_lag_tolerance_bytes.is_some()),
    ];
    match set.iter().find(|(_, set)| *set) {
        Some((field, _)) => {
            Err(key_error(format!("{key}.{field}"), "only applies to postgres entries with role = \"patroni\""))
        }
        None => Ok(()),
    }
}

/// Refuse the keys only SeaweedFS filers and filer.sync entries take
/// (`role` is refused by the caller where it means nothing).
pub fn refuse_seaweedfs_keys(key: &str, node: &RawNode) -> Result<(), ConfigError> {
    let set = [
        ("heartbeat_path", node.heartbeat_path.is_some()),
        ("sync_address", node.sync_address.is_some()),
        ("filer_a", node.filer_a.is_some()),
        ("filer_b", node.filer_b.is_some()),
        ("active_passive", node.active_passive),
    ];
    match set.iter().find(|(_, set)| *set) {
        Some((field, _)) => only_for(key, true, field, "seaweedfs"),
        None => Ok(()),
    }
}

/// `node_regions`: where servers an entry discovers (Sentinel, Cluster,
/// Patroni) are, by `host:port`, host, or CIDR network; most specific first.
#[derive(Clone, Debug, Default)]
pub struct NodeRegions(Vec<(RegionMatch, String)>);

#[derive(Clone, Debug, PartialEq)]
enum RegionMatch {
    Address(String, u16),
    Host(String),
    Network(ipnet::IpNet),
}

impl NodeRegions {
    /// The entry's `node_regions` (`key` is its config key).
    pub fn from_config(key: &str, node: &RawNode) -> Result<NodeRegions, ConfigError> {
        use super::node::normalize_host;
        let mut out = Vec::new();
        for (pattern, region) in &node.node_regions {
            let entry_key = format!("{key}.node_regions.{pattern:?}");
            check_label_value(&entry_key, region)?;
            let m = if let Ok(net) = pattern.parse::<ipnet::IpNet>() {
                RegionMatch::Network(net)
            } else if let Some((host, port)) =
                pattern.rsplit_once(':').filter(|(h, _)| !h.contains(':') || h.ends_with(']'))
            {
                let port = port.parse().map_err(|_| key_error(&entry_key, "port is not a number"))?;
                RegionMatch::Address(normalize_host(host), port)
            } else if !pattern.is_empty() && !pattern.contains('/') {
                RegionMatch::Host(normalize_host(pattern))
            } else {
                return Err(key_error(entry_key, "is not host:port, a host, or a network like 10.1.0.0/16"));
            };
            out.push((m, region.clone()));
        }
        out.sort_by_key(|(m, _)| match m {
            RegionMatch::Address(..) => 0,
            RegionMatch::Host(_) => 1,
            RegionMatch::Network(net) => 2 + u32::from(128 - net.prefix_len()),
        });
        Ok(NodeRegions(out))
    }

    /// The region of the server at `host:port`, if a pattern matches.
    pub fn region_of(&self, host: &str, port: u16) -> Option<&str> {
        let host = super::node::normalize_host(host);
        let ip = host.parse::<std::net::IpAddr>().ok();
        self.0
            .iter()
            .find(|(m, _)| match m {
                RegionMatch::Address(h, p) => *h == host && *p == port,
                RegionMatch::Host(h) => *h == host,
                RegionMatch::Network(net) => ip.is_some_and(|ip| net.contains(&ip)),
            })
            .map(|(_, region)| region.as_str())
    }
}
