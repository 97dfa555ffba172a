//! What replag watches: named nodes in named regions, per system.

use std::collections::HashMap;
use std::fmt;

use tokio_postgres::config::Host;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Postgres,
    Redis,
    Seaweedfs,
}

impl System {
    pub fn as_str(self) -> &'static str {
        match self {
            System::Postgres => "postgres",
            System::Redis => "redis",
            System::Seaweedfs => "seaweedfs",
        }
    }
}

/// One configured node.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub region: String,
    /// The node this one is expected to replicate from, if declared: its link
    /// exists (as down) even before the replica has ever been seen.
    pub upstream: Option<String>,
    /// PostgreSQL subscriber: the publisher node of each subscription, by
    /// subscription name, where discovery by slot name is not enough.
    pub publishers: std::collections::BTreeMap<String, String>,
    /// Replication group for sharding (see `shard`), if declared.
    pub group: Option<String>,
    pub target: Target,
}

/// How to reach a node, per system.
#[derive(Debug, Clone)]
pub enum Target {
    Postgres(PostgresTarget),
    Redis(RedisTarget),
    Seaweed(SeaweedTarget),
}

impl NodeSpec {
    pub fn system(&self) -> System {
        match self.target {
            Target::Postgres(_) => System::Postgres,
            Target::Redis(_) => System::Redis,
            Target::Seaweed(_) => System::Seaweedfs,
        }
    }

    /// `(host, port)` pairs the node answers on, to recognise it as another
    /// node's upstream or in a master's replica list.
    pub fn addresses(&self) -> Vec<(String, u16)> {
        match &self.target {
            Target::Postgres(t) => t.addresses(),
            Target::Redis(t) => t.addresses(),
            Target::Seaweed(t) => vec![(normalize_host(&t.host), t.port)],
        }
    }
}

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

/// Connection settings for a Redis node. Debug never shows the password.
#[derive(Clone)]
pub struct RedisTarget {
    pub info: redis::ConnectionInfo,
    /// PEM CA certificate(s) to verify a `rediss://` server against, instead
    /// of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
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

/// Connection settings for a PostgreSQL node. Debug never shows the password.
#[derive(Clone)]
pub struct PostgresTarget {
    config: tokio_postgres::Config,
    /// None: plaintext.
    pub tls: Option<PgTls>,
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
        Self { config, tls: None }
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

/// Configured nodes by address and by name. Built once per config: matching
/// a replica list, a WAL receiver's sender or an `upstream` against the
/// config is then a lookup, not a scan of every node (which made each
/// snapshot quadratic in the number of nodes).
#[derive(Debug, Default, Clone)]
pub struct NodeIndex {
    /// (system, port) → normalized host → nodes, in config order.
    nodes: HashMap<(System, u16), HashMap<String, Vec<usize>>>,
    names: HashMap<String, usize>,
}

impl NodeIndex {
    pub fn new(specs: &[NodeSpec]) -> Self {
        let mut nodes: HashMap<(System, u16), HashMap<String, Vec<usize>>> = HashMap::new();
        for (i, spec) in specs.iter().enumerate() {
            for (host, port) in spec.addresses() {
                let at = nodes.entry((spec.system(), port)).or_default().entry(host).or_default();
                // One node may list an address twice (two spellings of one host).
                if !at.contains(&i) {
                    at.push(i);
                }
            }
        }
        let names = specs.iter().enumerate().map(|(i, spec)| (spec.name.clone(), i)).collect();
        NodeIndex { nodes, names }
    }

    /// The node of `system` named `name` (names are unique across systems).
    pub fn named(&self, system: System, name: &str, specs: &[NodeSpec]) -> Option<usize> {
        self.names.get(name).copied().filter(|&i| specs.get(i).is_some_and(|s| s.system() == system))
    }

    /// Nodes of `system` at `host:port` (host as `normalize_host` gives it).
    pub fn nodes_at(&self, system: System, host: &str, port: u16) -> impl Iterator<Item = usize> + '_ {
        self.nodes.get(&(system, port)).and_then(|hosts| hosts.get(host)).into_iter().flatten().copied()
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
