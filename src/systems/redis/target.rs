//! How to reach a Redis node, from its config entry. Debug never shows the
//! password.

use std::collections::HashMap;
use std::fmt;

use crate::model::config::{
    configured_password, key_error, only_for, read_ca, refuse_seaweedfs_keys, ConfigError, RawNode,
};
use crate::model::{normalize_host, Heartbeat};

/// Connection settings for a Redis node. Debug never shows the password.
#[derive(Clone)]
pub struct RedisTarget {
    pub info: redis::ConnectionInfo,
    /// PEM CA certificate(s) to verify a `rediss://` server against, instead
    /// of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// replag's heartbeat (opt-in): a field of the `replag:heartbeat:<writer>` hash.
    pub heartbeat: Option<Heartbeat>,
}

impl RedisTarget {
    pub fn password(&self) -> Option<&[u8]> {
        self.info.redis.password.as_deref().map(str::as_bytes)
    }

    pub fn addresses(&self) -> Vec<(String, u16)> {
        match &self.info.addr {
            redis::ConnectionAddr::Tcp(host, port) => vec![(normalize_host(host), *port)],
            redis::ConnectionAddr::TcpTls { host, port, .. } => vec![(normalize_host(host), *port)],
            redis::ConnectionAddr::Unix(path) => vec![(path.display().to_string(), 0)],
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self.info.addr, redis::ConnectionAddr::TcpTls { .. })
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTarget").field("addresses", &self.addresses()).finish_non_exhaustive()
    }
}

/// The target a `[[regions.R.redis]]` entry describes (`key` is its config key).
pub fn from_config(key: &str, node: &RawNode, env: &HashMap<String, String>) -> Result<RedisTarget, ConfigError> {
    use redis::IntoConnectionInfo;
    let url_key = format!("{key}.url");
    let url = node.url.as_deref().ok_or_else(|| key_error(&url_key, "is required"))?;
    if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://")) {
        return Err(key_error(&url_key, "must start with redis://, rediss:// or unix://"));
    }
    let mut info = url.into_connection_info().map_err(|_| {
        key_error(&url_key, "is not a valid Redis URL like redis://[user[:password]@]host:port[/db] (value not shown: it may hold a password)")
    })?;
    if let Some(password) = configured_password(key, node, env)? {
        info.redis.password = Some(password);
    }
    let ca_pem = read_ca(key, node)?;
    let target = RedisTarget { info, ca_pem, heartbeat: None };
    if target.ca_pem.is_some() && !target.is_tls() {
        return Err(key_error(format!("{key}.ca_file"), "only applies to rediss:// URLs"));
    }
    only_for(key, node.client_cert_file.is_some() || node.client_key_file.is_some(), "client_cert_file", "postgres")?;
    only_for(key, !node.datacenters.is_empty(), "datacenters", "seaweedfs")?;
    refuse_seaweedfs_keys(key, node)?;
    only_for(key, !node.publishers.is_empty(), "publishers", "postgres")?;
    Ok(target)
}
