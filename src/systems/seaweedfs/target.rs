//! How to reach a SeaweedFS master, filer or `weed filer.sync` process,
//! from its config entry.

use std::collections::HashMap;

use crate::model::config::{
    check_label_value, key_error, only_for, read_ca, refuse_redis_topology_keys, ConfigError, RawNode,
};
use crate::model::{normalize_host, Heartbeat};

/// Where replag's heartbeats live on a filer unless `heartbeat_path` says.
pub const DEFAULT_HEARTBEAT_PATH: &str = "/.replag/heartbeat";

/// What a SeaweedFS entry is, and what replag needs to know to poll it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeaweedRole {
    /// A master: volume copies across data centers.
    Master,
    /// A filer: one end of a `weed filer.sync`.
    Filer {
        heartbeat: Option<Heartbeat>,
        /// Absolute directory, no trailing slash; inside the synced path.
        heartbeat_path: String,
        /// `(host, port)` filer.sync knows the filer by, besides the url's.
        sync_address: Option<(String, u16)>,
    },
    /// A `weed filer.sync` process, polled on its `-metricsPort`: the filer
    /// node names of its `-a` and `-b`.
    FilerSync { a: String, b: String, active_passive: bool },
}

/// A SeaweedFS server's HTTP(S) address and role.
#[derive(Debug, Clone)]
pub struct SeaweedTarget {
    pub role: SeaweedRole,
    /// `scheme://host:port`, no path.
    pub base_url: String,
    pub host: String,
    pub port: u16,
    /// PEM CA certificate(s) for an https master, instead of the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// SeaweedFS data center → replag region (by default, the same name).
    pub datacenters: std::collections::BTreeMap<String, String>,
}

impl SeaweedTarget {
    pub fn region_of(&self, datacenter: &str) -> String {
        self.datacenters.get(datacenter).cloned().unwrap_or_else(|| datacenter.to_string())
    }
}

impl SeaweedTarget {
    /// The filer nodes a filer.sync entry names: they share its shard.
    pub fn peers(&self) -> Vec<&String> {
        match &self.role {
            SeaweedRole::FilerSync { a, b, .. } => vec![a, b],
            _ => Vec::new(),
        }
    }

    /// Turn heartbeats on (filers only); the error names what else it is.
    pub fn set_heartbeat(&mut self, heartbeat: Heartbeat) -> Result<(), &'static str> {
        match &mut self.role {
            SeaweedRole::Filer { heartbeat: h, .. } => {
                *h = Some(heartbeat);
                Ok(())
            }
            _ => Err("only applies to postgres and redis nodes and seaweedfs filers"),
        }
    }

    /// `(host, port)` the server answers on (and a filer's `sync_address`).
    pub fn addresses(&self) -> Vec<(String, u16)> {
        let mut addresses = vec![(normalize_host(&self.host), self.port)];
        if let SeaweedRole::Filer { sync_address: Some((host, port)), .. } = &self.role {
            addresses.push((normalize_host(host), *port));
        }
        addresses
    }
}

/// The target a `[[regions.R.seaweedfs]]` entry describes (`key` is its config key).
pub fn from_config(key: &str, node: &RawNode, _env: &HashMap<String, String>) -> Result<SeaweedTarget, ConfigError> {
    let role = role_of(key, node)?;
    let url_key = format!("{key}.url");
    let url = node.url.as_deref().ok_or_else(|| key_error(&url_key, "is required"))?.trim_end_matches('/');
    let example = match role {
        SeaweedRole::Master => "the master's http:// or https:// address, like http://10.0.0.5:9333",
        SeaweedRole::Filer { .. } => "the filer's http:// or https:// address, like http://10.0.0.5:8888",
        SeaweedRole::FilerSync { .. } => "filer.sync's -metricsPort address, like http://10.0.0.5:9327",
    };
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(s, _)| *s == "http" || *s == "https")
        .ok_or_else(|| key_error(&url_key, format!("must be {example}")))?;
    if rest.contains('/') || rest.contains('@') {
        return Err(key_error(&url_key, "must be scheme://host:port, without path or credentials"));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => (h, p.parse::<u16>().map_err(|_| key_error(&url_key, "has an invalid port"))?),
        _ if !rest.is_empty() => (rest, if scheme == "https" { 443 } else { 80 }),
        _ => return Err(key_error(&url_key, "names no host")),
    };
    if node.password_env.is_some() || node.password_file.is_some() {
        return Err(key_error(format!("{key}.password_env"), "SeaweedFS masters take no password"));
    }
    let ca_pem = read_ca(key, node)?;
    if ca_pem.is_some() && scheme != "https" {
        return Err(key_error(format!("{key}.ca_file"), "only applies to https:// URLs"));
    }
    for (datacenter, region) in &node.datacenters {
        check_label_value(&format!("{key}.datacenters.{datacenter}"), region)?;
    }
    only_for(key, node.client_cert_file.is_some() || node.client_key_file.is_some(), "client_cert_file", "postgres")?;
    only_for(key, !node.publishers.is_empty(), "publishers", "postgres")?;
    refuse_redis_topology_keys(key, node)?;
    crate::model::config::refuse_patroni_keys(key, node)?;
    if !matches!(role, SeaweedRole::Master) {
        only_for(key, !node.datacenters.is_empty(), "datacenters", "seaweedfs master")?;
    }
    Ok(SeaweedTarget {
        role,
        base_url: format!("{scheme}://{rest}"),
        host: host.to_string(),
        port,
        ca_pem,
        datacenters: node.datacenters.clone(),
    })
}

/// The entry's `role` and the keys that go with it.
fn role_of(key: &str, node: &RawNode) -> Result<SeaweedRole, ConfigError> {
    let role = node.role.as_deref().unwrap_or("master");
    let is_filer = role == "filer";
    let is_sync = role == "filer_sync";
    only_for(key, node.heartbeat_path.is_some() && !is_filer, "heartbeat_path", "seaweedfs filer")?;
    only_for(key, node.sync_address.is_some() && !is_filer, "sync_address", "seaweedfs filer")?;
    only_for(key, node.filer_a.is_some() && !is_sync, "filer_a", "seaweedfs filer_sync")?;
    only_for(key, node.filer_b.is_some() && !is_sync, "filer_b", "seaweedfs filer_sync")?;
    only_for(key, node.active_passive && !is_sync, "active_passive", "seaweedfs filer_sync")?;
    Ok(match role {
        "master" => SeaweedRole::Master,
        "filer" => {
            let path = node.heartbeat_path.as_deref().unwrap_or(DEFAULT_HEARTBEAT_PATH).trim_end_matches('/');
            let safe = path.starts_with('/')
                && path.len() > 1
                && path.len() <= 256
                && path.split('/').skip(1).all(|p| !p.is_empty() && p != "." && p != "..")
                && path.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
            if !safe {
                return Err(key_error(
                    format!("{key}.heartbeat_path"),
                    "must be an absolute directory of letters, digits, '-', '_', '.' and '/', like /.replag/heartbeat",
                ));
            }
            let sync_address = match &node.sync_address {
                None => None,
                Some(address) => {
                    let parsed = address
                        .rsplit_once(':')
                        .filter(|(host, _)| !host.is_empty() && !host.contains('/') && !host.contains('@'))
                        .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)));
                    Some(parsed.ok_or_else(|| {
                        key_error(format!("{key}.sync_address"), "must be host:port, as given to filer.sync's -a/-b")
                    })?)
                }
            };
            SeaweedRole::Filer { heartbeat: None, heartbeat_path: path.to_string(), sync_address }
        }
        "filer_sync" => {
            let filer = |field: &str, value: &Option<String>| {
                value.clone().ok_or_else(|| {
                    key_error(format!("{key}.{field}"), "is required: the filer node this filer.sync names with -a/-b")
                })
            };
            let a = filer("filer_a", &node.filer_a)?;
            let b = filer("filer_b", &node.filer_b)?;
            if a == b {
                return Err(key_error(format!("{key}.filer_b"), "must name another filer than filer_a"));
            }
            SeaweedRole::FilerSync { a, b, active_passive: node.active_passive }
        }
        _ => return Err(key_error(format!("{key}.role"), "must be \"master\", \"filer\" or \"filer_sync\"")),
    })
}
