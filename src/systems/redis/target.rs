//! How to reach a Redis node, from its config entry, and what the entry is:
//! a server, a Sentinel, or a Redis Cluster seed. Debug never shows the
//! password.

use std::collections::HashMap;
use std::fmt;

use crate::model::config::{
    configured_password, key_error, only_for, read_ca, refuse_seaweedfs_keys, ConfigError, NodeRegions, RawNode,
};
use crate::model::{normalize_host, Heartbeat};

/// What a Redis entry is.
#[derive(Debug, Clone, PartialEq)]
pub enum RedisRole {
    /// A master or replica, polled with INFO (the default).
    Server,
    /// A Sentinel: the masters it monitors (all, or `masters`) and their
    /// replicas are discovered and polled as servers.
    Sentinel { masters: Vec<String> },
    /// A Redis Cluster node: every node of its cluster is discovered from
    /// `CLUSTER NODES` and polled as a server.
    Cluster,
}

/// How discovered servers are reached and placed: the entry's credentials
/// and TLS settings, and its `node_regions`.
#[derive(Clone, Default)]
pub struct Discovery {
    /// `node_regions`: where discovered servers are.
    regions: NodeRegions,
    /// The discovered servers' password (`password_env`/`password_file`);
    /// for a Sentinel, not the Sentinel's own.
    password: Option<String>,
}

/// Connection settings for a Redis node. Debug never shows the password.
#[derive(Clone)]
pub struct RedisTarget {
    pub info: redis::ConnectionInfo,
    /// PEM CA certificate(s) to verify a `rediss://` server against, instead
    /// of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// replag's heartbeat (opt-in): a field of the `replag:heartbeat:<writer>` hash.
    pub heartbeat: Option<Heartbeat>,
    pub role: RedisRole,
    /// Sentinel and Cluster entries: how to reach what they reveal.
    pub discovery: Discovery,
}

impl RedisTarget {
    /// A plain server at `info`: no TLS CA, heartbeat or discovery.
    pub fn server(info: redis::ConnectionInfo) -> RedisTarget {
        RedisTarget { info, ca_pem: None, heartbeat: None, role: RedisRole::Server, discovery: Discovery::default() }
    }

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

    /// A server this Sentinel or Cluster entry revealed at `host:port`:
    /// reached with the entry's credentials and TLS settings.
    pub fn member(&self, host: &str, port: u16) -> RedisTarget {
        let mut info = self.info.clone();
        info.addr = match &info.addr {
            redis::ConnectionAddr::TcpTls { insecure, tls_params, .. } => redis::ConnectionAddr::TcpTls {
                host: host.to_string(),
                port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => redis::ConnectionAddr::Tcp(host.to_string(), port),
        };
        if self.role != RedisRole::Cluster {
            info.redis.password = self.discovery.password.clone();
        }
        RedisTarget {
            info,
            ca_pem: self.ca_pem.clone(),
            heartbeat: None,
            role: RedisRole::Server,
            discovery: Discovery::default(),
        }
    }

    /// The region of a discovered server, from `node_regions`.
    pub fn region_of(&self, host: &str, port: u16) -> Option<&str> {
        self.discovery.regions.region_of(host, port)
    }
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTarget")
            .field("addresses", &self.addresses())
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

fn role_of(key: &str, node: &RawNode) -> Result<RedisRole, ConfigError> {
    let role = match node.role.as_deref() {
        None | Some("server") => RedisRole::Server,
        Some("sentinel") => {
            for (i, name) in node.masters.iter().enumerate() {
                if name.is_empty() || name.len() > 128 || name.chars().any(char::is_whitespace) {
                    return Err(key_error(format!("{key}.masters[{i}]"), "is not a Sentinel master name"));
                }
            }
            RedisRole::Sentinel { masters: node.masters.clone() }
        }
        Some("cluster") => RedisRole::Cluster,
        Some(other) => {
            return Err(key_error(
                format!("{key}.role"),
                format!("{} is not a redis role (server, sentinel, cluster)", crate::model::quoted(other)),
            ))
        }
    };
    only_for(
        key,
        !node.masters.is_empty() && !matches!(role, RedisRole::Sentinel { .. }),
        "masters",
        "redis sentinel",
    )?;
    only_for(
        key,
        node.sentinel_password_env.is_some() && !matches!(role, RedisRole::Sentinel { .. }),
        "sentinel_password_env",
        "redis sentinel",
    )?;
    only_for(
        key,
        !node.node_regions.is_empty() && role == RedisRole::Server,
        "node_regions",
        "redis sentinel and cluster",
    )?;
    if role != RedisRole::Server {
        only_for(key, node.heartbeat, "heartbeat", "redis server")?;
        only_for(key, node.upstream.is_some(), "upstream", "redis server")?;
    }
    Ok(role)
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
    let role = role_of(key, node)?;
    let password = configured_password(key, node, env)?;
    let mut discovery = Discovery { regions: NodeRegions::from_config(key, node)?, password: None };
    match &role {
        RedisRole::Sentinel { .. } => {
            // The Sentinel's own password is not its servers'.
            discovery.password = password;
            if let Some(var) = &node.sentinel_password_env {
                let own = env.get(var).ok_or_else(|| {
                    key_error(format!("{key}.sentinel_password_env"), format!("environment variable {var} is not set"))
                })?;
                info.redis.password = Some(own.clone());
            }
        }
        _ => {
            if let Some(password) = password {
                info.redis.password = Some(password);
            }
        }
    }
    let ca_pem = read_ca(key, node)?;
    let target = RedisTarget { info, ca_pem, heartbeat: None, role, discovery };
    if target.ca_pem.is_some() && !target.is_tls() {
        return Err(key_error(format!("{key}.ca_file"), "only applies to rediss:// URLs"));
    }
    only_for(key, node.client_cert_file.is_some() || node.client_key_file.is_some(), "client_cert_file", "postgres")?;
    only_for(key, !node.datacenters.is_empty(), "datacenters", "seaweedfs")?;
    refuse_seaweedfs_keys(key, node)?;
    crate::model::config::refuse_patroni_keys(key, node)?;
    only_for(key, !node.publishers.is_empty(), "publishers", "postgres")?;
    Ok(target)
}
