//! How to reach a Patroni cluster, from its `role = "patroni"` entry: the
//! REST endpoints (basic auth, HTTPS), and how to reach the members it
//! names (the entry's `url` without a host, its password and TLS keys).
//! Debug never shows a password.

use std::collections::HashMap;
use std::fmt;

use crate::model::config::{key_error, only_for, refuse_sentinel_keys, ConfigError, NodeRegions, RawNode};
use crate::model::Heartbeat;
use crate::systems::postgres::target::{connection, PostgresTarget};

/// Patroni's lag beside replag's: farther apart than this is flagged.
/// Patroni's figure is its leader's position in the DCS minus the member's,
/// each up to `loop_wait` (10 s by default) old; under steady writes the
/// two differ by the WAL of that long.
pub const DEFAULT_LAG_TOLERANCE_BYTES: u64 = 16 << 20;

#[derive(Clone)]
pub struct PatroniTarget {
    /// REST API base URLs, without credentials or trailing slash.
    pub endpoints: Vec<String>,
    /// Basic auth for the REST API.
    pub auth: Option<(String, String)>,
    /// PEM CA for HTTPS endpoints; None: the public web roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The members' connection settings; hosts and ports come from Patroni.
    pub members: PostgresTarget,
    pub regions: NodeRegions,
    pub lag_tolerance_bytes: u64,
}

impl PatroniTarget {
    /// A member Patroni names at `host:port`, reached with the entry's settings.
    pub fn member(&self, host: &str, port: u16) -> PostgresTarget {
        self.members.at(host, port)
    }

    /// replag's heartbeat on the members (written on the leader, read on
    /// the others).
    pub fn set_heartbeat(&mut self, heartbeat: Heartbeat) {
        self.members.heartbeat = Some(heartbeat);
    }

    pub fn password(&self) -> Option<&str> {
        self.auth.as_ref().map(|(_, p)| p.as_str())
    }
}

impl fmt::Debug for PatroniTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatroniTarget").field("endpoints", &self.endpoints).finish_non_exhaustive()
    }
}

/// The target a `role = "patroni"` postgres entry describes.
pub fn from_config(key: &str, node: &RawNode, env: &HashMap<String, String>) -> Result<PatroniTarget, ConfigError> {
    let endpoints_key = format!("{key}.endpoints");
    if node.endpoints.is_empty() {
        return Err(key_error(
            &endpoints_key,
            "is required: the Patroni REST API URLs, like [\"http://10.0.0.1:8008\"]",
        ));
    }
    let mut endpoints = Vec::new();
    for (i, text) in node.endpoints.iter().enumerate() {
        let at = format!("{endpoints_key}[{i}]");
        let url = reqwest::Url::parse(text).map_err(|_| key_error(&at, "is not a URL like http://10.0.0.1:8008"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(key_error(&at, "must be an http:// or https:// URL with a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(key_error(
                &at,
                "must not hold credentials (value not shown): set patroni_username and patroni_password_env",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(key_error(&at, "must not have a query or fragment"));
        }
        let base = url.as_str().trim_end_matches('/').to_string();
        if !endpoints.contains(&base) {
            endpoints.push(base);
        }
    }
    let auth = match (&node.patroni_username, &node.patroni_password_env) {
        (Some(user), Some(var)) => {
            let password = env.get(var).ok_or_else(|| {
                key_error(format!("{key}.patroni_password_env"), format!("environment variable {var} is not set"))
            })?;
            Some((user.clone(), password.clone()))
        }
        (None, None) => None,
        (Some(_), None) => {
            return Err(key_error(format!("{key}.patroni_password_env"), "is required with patroni_username"))
        }
        (None, Some(_)) => {
            return Err(key_error(format!("{key}.patroni_username"), "is required with patroni_password_env"))
        }
    };
    let ca_pem = match &node.patroni_ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                key_error(format!("{key}.patroni_ca_file"), format!("cannot read {}: {e}", path.display()))
            })?;
            reqwest::Certificate::from_pem(&pem).map_err(|_| {
                key_error(format!("{key}.patroni_ca_file"), format!("{} holds no PEM certificate", path.display()))
            })?;
            Some(pem)
        }
        None => None,
    };
    let url_key = format!("{key}.url");
    if node.url.is_none() {
        return Err(key_error(
            &url_key,
            "is required: how to connect to the members, without a host (Patroni names them), \
             like \"postgres://replag@/postgres?sslmode=verify-full\"",
        ));
    }
    let members = connection(key, node, env, false)?;
    if !members.config().get_hosts().is_empty() {
        return Err(key_error(&url_key, "must not name a host: Patroni names the members (value not shown)"));
    }
    only_for(key, node.upstream.is_some(), "upstream", "postgres servers")?;
    only_for(key, !node.publishers.is_empty(), "publishers", "postgres servers")?;
    refuse_sentinel_keys(key, node)?;
    Ok(PatroniTarget {
        endpoints,
        auth,
        ca_pem,
        members,
        regions: NodeRegions::from_config(key, node)?,
        lag_tolerance_bytes: node.patroni_lag_tolerance_bytes.unwrap_or(DEFAULT_LAG_TOLERANCE_BYTES),
    })
}
