//! What replag watches: named nodes in named regions, per system.

use std::fmt;

use tokio_postgres::config::Host;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Postgres,
}

impl System {
    pub fn as_str(self) -> &'static str {
        match self {
            System::Postgres => "postgres",
        }
    }
}

/// One configured node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub region: String,
    pub system: System,
    /// The node this one is expected to replicate from, if declared: its link
    /// exists (as down) even before the replica has ever been seen.
    pub upstream: Option<String>,
    pub postgres: PostgresTarget,
}

/// Connection settings for a PostgreSQL node. Debug never shows the password.
#[derive(Clone)]
pub struct PostgresTarget {
    config: tokio_postgres::Config,
}

impl PostgresTarget {
    pub fn new(config: tokio_postgres::Config) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
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

/// Loopback spellings compare equal, and host names compare case-insensitively.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    match host.as_str() {
        "localhost" | "127.0.0.1" | "::1" => "127.0.0.1".to_string(),
        _ => host,
    }
}

impl fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresTarget").field("addresses", &self.addresses()).finish_non_exhaustive()
    }
}
