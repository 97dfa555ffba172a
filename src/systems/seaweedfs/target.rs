//! How to reach a SeaweedFS master, from its config entry.

use std::collections::HashMap;

use crate::model::config::{check_label_value, key_error, only_for, read_ca, ConfigError, RawNode};
use crate::model::normalize_host;

/// A SeaweedFS master's HTTP(S) address.
#[derive(Debug, Clone)]
pub struct SeaweedTarget {
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
    /// `(host, port)` the master answers on.
    pub fn addresses(&self) -> Vec<(String, u16)> {
        vec![(normalize_host(&self.host), self.port)]
    }
}

/// The target a `[[regions.R.seaweedfs]]` entry describes (`key` is its config key).
pub fn from_config(key: &str, node: &RawNode, _env: &HashMap<String, String>) -> Result<SeaweedTarget, ConfigError> {
    let url_key = format!("{key}.url");
    let url = node.url.as_deref().ok_or_else(|| key_error(&url_key, "is required"))?.trim_end_matches('/');
    let (scheme, rest) = url.split_once("://").filter(|(s, _)| *s == "http" || *s == "https").ok_or_else(|| {
        key_error(&url_key, "must be the master's http:// or https:// address, like http://10.0.0.5:9333")
    })?;
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
    Ok(SeaweedTarget {
        base_url: format!("{scheme}://{rest}"),
        host: host.to_string(),
        port,
        ca_pem,
        datacenters: node.datacenters.clone(),
    })
}
