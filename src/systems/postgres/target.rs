//! How to reach a PostgreSQL node, from its config entry: the connection
//! settings and TLS. Debug never shows the password.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use tokio_postgres::config::Host;

use crate::model::config::{
    configured_password, key_error, only_for, read_ca, refuse_patroni_keys, refuse_redis_topology_keys,
    refuse_seaweedfs_keys, ConfigError, RawNode,
};
use crate::model::{normalize_host, Heartbeat};

/// Connection settings for a PostgreSQL node. Debug never shows the password.
#[derive(Clone)]
pub struct PostgresTarget {
    config: tokio_postgres::Config,
    /// None: plaintext.
    pub tls: Option<PgTls>,
    /// replag's heartbeat (opt-in): `replag.heartbeat` rows.
    pub heartbeat: Option<Heartbeat>,
}

/// TLS to a PostgreSQL node. The server certificate is always verified.
#[derive(Debug, Clone)]
pub struct PgTls {
    pub mode: PgTlsMode,
    /// PEM roots; None: the public web roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM certificate chain and key for client-certificate authentication.
    pub client_cert: Option<(Vec<u8>, Vec<u8>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgTlsMode {
    /// Chain and host name (`sslmode=require`, `verify-full`, or a `ca_file`).
    VerifyFull,
    /// Chain only (`sslmode=verify-ca`).
    VerifyCa,
}

impl PostgresTarget {
    pub fn new(config: tokio_postgres::Config) -> Self {
        Self { config, tls: None, heartbeat: None }
    }

    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// With TLS configured, a server without TLS is an error, not plaintext.
    pub fn set_require_tls(&mut self) {
        self.config.ssl_mode(tokio_postgres::config::SslMode::Require);
    }

    /// The password, so error texts can be scrubbed of it.
    pub fn password(&self) -> Option<&[u8]> {
        self.config.get_password()
    }

    /// `(host, port)` pairs this node answers on, to recognise it as another
    /// node's upstream (`pg_stat_wal_receiver.sender_host/port`).
    pub fn addresses(&self) -> Vec<(String, u16)> {
        let ports = self.config.get_ports();
        self.config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                let host = match host {
                    Host::Tcp(h) => normalize_host(h),
                    Host::Unix(path) => path.display().to_string(),
                };
                (host, port)
            })
            .collect()
    }
}

impl PostgresTarget {
    /// The same connection settings (user, password, database, TLS, …) at
    /// another server: a member a Patroni cluster names.
    pub fn at(&self, host: &str, port: u16) -> PostgresTarget {
        let from = &self.config;
        let mut config = tokio_postgres::Config::new();
        config.host(host).port(port).ssl_mode(from.get_ssl_mode());
        if let Some(user) = from.get_user() {
            config.user(user);
        }
        if let Some(password) = from.get_password() {
            config.password(password);
        }
        if let Some(dbname) = from.get_dbname() {
            config.dbname(dbname);
        }
        if let Some(options) = from.get_options() {
            config.options(options);
        }
        if let Some(name) = from.get_application_name() {
            config.application_name(name);
        }
        if let Some(timeout) = from.get_connect_timeout() {
            config.connect_timeout(*timeout);
        }
        PostgresTarget { config, tls: self.tls.clone(), heartbeat: self.heartbeat.clone() }
    }
}

impl fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresTarget").field("addresses", &self.addresses()).finish_non_exhaustive()
    }
}

/// The target a `[[regions.R.postgres]]` entry describes (`key` is its config key).
pub fn from_config(key: &str, node: &RawNode, env: &HashMap<String, String>) -> Result<PostgresTarget, ConfigError> {
    let target = connection(key, node, env, true)?;
    only_for(key, node.role.is_some(), "role", "seaweedfs and redis, and postgres role = \"patroni\"")?;
    refuse_redis_topology_keys(key, node)?;
    refuse_patroni_keys(key, node)?;
    Ok(target)
}

/// How to connect, from an entry's `url`, password and TLS keys; with
/// `require_host` false, a template whose hosts come from elsewhere (Patroni).
pub fn connection(
    key: &str,
    node: &RawNode,
    env: &HashMap<String, String>,
    require_host: bool,
) -> Result<PostgresTarget, ConfigError> {
    let url_key = format!("{key}.url");
    let url = node.url.as_deref().ok_or_else(|| key_error(&url_key, "is required"))?;
    // libpq's verify modes are not tokio-postgres syntax: take them out here.
    let verify = if url.contains("sslmode=verify-full") {
        Some(PgTlsMode::VerifyFull)
    } else if url.contains("sslmode=verify-ca") {
        Some(PgTlsMode::VerifyCa)
    } else {
        None
    };
    let url = url.replace("sslmode=verify-full", "sslmode=require").replace("sslmode=verify-ca", "sslmode=require");
    let mut pg = tokio_postgres::Config::from_str(&url).map_err(|_| {
        key_error(
            &url_key,
            "is not a valid PostgreSQL URL or key=value connection string (value not shown: it may hold a password)",
        )
    })?;
    if require_host && pg.get_hosts().is_empty() {
        return Err(key_error(&url_key, "names no host"));
    }
    if let Some(password) = configured_password(key, node, env)? {
        pg.password(password);
    }
    let ca_pem = read_ca(key, node)?;
    let client_cert = match (&node.client_cert_file, &node.client_key_file) {
        (Some(cert), Some(key_file)) => {
            let read = |k: &str, p: &PathBuf| {
                std::fs::read(p)
                    .map_err(|e| key_error(format!("{key}.{k}"), format!("cannot read {}: {e}", p.display())))
            };
            Some((read("client_cert_file", cert)?, read("client_key_file", key_file)?))
        }
        (None, None) => None,
        (Some(_), None) => {
            return Err(key_error(format!("{key}.client_key_file"), "is required with client_cert_file"))
        }
        (None, Some(_)) => {
            return Err(key_error(format!("{key}.client_cert_file"), "is required with client_key_file"))
        }
    };
    // TLS when asked for by sslmode, or implied by a CA or client certificate;
    // then always verified, and never silently downgraded to plaintext.
    let wants_tls = ca_pem.is_some() || client_cert.is_some();
    let mode = match (verify, pg.get_ssl_mode()) {
        (Some(mode), _) => Some(mode),
        (None, tokio_postgres::config::SslMode::Require) => Some(PgTlsMode::VerifyFull),
        (None, tokio_postgres::config::SslMode::Disable) if wants_tls => {
            return Err(key_error(&url_key, "sets sslmode=disable but ca_file or a client certificate asks for TLS"));
        }
        (None, _) if wants_tls => Some(PgTlsMode::VerifyFull),
        (None, _) => None,
    };
    let mut target = PostgresTarget::new(pg);
    if let Some(mode) = mode {
        target.set_require_tls();
        target.tls = Some(PgTls { mode, ca_pem, client_cert });
    }
    only_for(key, !node.datacenters.is_empty(), "datacenters", "seaweedfs")?;
    refuse_seaweedfs_keys(key, node)?;
    Ok(target)
}
