//! Configuration: one TOML file (or the seeds' per-region environment), with
//! `REPLAG_*__*` environment overrides, validated into typed settings. Every
//! error names the key it is about; no error ever echoes a URL or a secret.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

pub mod shard;

use crate::gate::{GateParams, GateSpec};
use crate::model::config::{check_label_value, RawNode};
pub use crate::model::config::{key_error, ConfigError};
use crate::model::{quoted, Heartbeat, Node, System};
use crate::systems::seaweedfs::SeaweedRole;
use crate::systems::{NodeSpec, Target};
use shard::Shard;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8439";
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// A failed node is retried at least this often: a primary that comes back
/// (beside the one promoted in its place) is seen within seconds.
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a source's position is read between polls: the resolution of
/// lag in seconds (docs/architecture.md, "Resolution"; its cost in
/// docs/performance.md).
const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_millis(25);
const ENV_PREFIX: &str = "REPLAG_";
/// Overrides use `__` between key levels (`REPLAG_POLL__INTERVAL=2s`); a
/// `REPLAG_*` variable without it (say `REPLAG_PG_PASSWORD`) is never a key.
const ENV_SEPARATOR: &str = "__";

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub poll: PollSettings,
    pub nodes: Vec<NodeSpec>,
    /// Named gates, by name.
    pub gates: BTreeMap<String, GateSpec>,
    /// This instance's share of the nodes, when sharded; `nodes` holds only
    /// that share.
    pub shard: Option<ShardSettings>,
    /// Where failover events are kept across restarts (`events.journal`);
    /// None: in memory only.
    pub events_journal: Option<std::path::PathBuf>,
}

/// What `[shard]` selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSettings {
    pub shard: Shard,
    /// Nodes in the whole config, all shards together.
    pub nodes_total: usize,
    /// Replication groups this shard owns.
    pub groups: usize,
}

impl Config {
    /// Data older than this fails a gate unless it sets `max_data_age`: three
    /// missed polls, and never less than 10 s.
    pub fn default_max_data_age(&self) -> Duration {
        default_max_data_age(&self.poll)
    }
}

fn default_max_data_age(poll: &PollSettings) -> Duration {
    (poll.interval * 3 + poll.timeout).max(Duration::from_secs(10))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollSettings {
    pub interval: Duration,
    /// Bound on one poll over an established connection (one round trip).
    pub timeout: Duration,
    /// Bound on establishing a connection (TCP, TLS, authentication, set-up):
    /// several round trips, which across regions can exceed `timeout`.
    pub connect_timeout: Duration,
    pub max_backoff: Duration,
    /// How often a source (a primary) reads its own position between polls;
    /// zero: only at polls.
    pub sample_interval: Duration,
}

// ---- raw shape, as written in the file ------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    poll: RawPoll,
    #[serde(default)]
    regions: BTreeMap<String, RawRegion>,
    #[serde(default)]
    gates: BTreeMap<String, GateParams>,
    shard: Option<RawShard>,
    #[serde(default)]
    heartbeat: RawHeartbeat,
    #[serde(default)]
    events: RawEvents,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    /// A file failover events are appended to and read back from at start.
    journal: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeartbeat {
    /// Distinguishes replag instances writing heartbeats on the same sources
    /// (default: the host name).
    writer: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShard {
    index: Option<u32>,
    count: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoll {
    interval: Option<String>,
    timeout: Option<String>,
    connect_timeout: Option<String>,
    max_backoff: Option<String>,
    sample_interval: Option<String>,
}

/// A region's nodes, by system name (`postgres`, `redis`, ...).
type RawRegion = BTreeMap<String, Vec<RawNode>>;

// ---- loading ---------------------------------------------------------------

/// Where the configuration comes from.
pub enum Source<'a> {
    File(&'a Path),
    /// The seeds' per-region variables: `REGION`, `DATABASE_URL`, `REDIS_URL`.
    SeedEnvironment,
}

/// Load from a file, or from the seeds' environment when no file is given.
pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    match file {
        Some(path) => load_from(Source::File(path), &env),
        None => load_from(Source::SeedEnvironment, &env),
    }
}

/// Load with an explicit environment (tests pass their own).
pub fn load_from(source: Source<'_>, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    let mut builder = config::Config::builder();
    match source {
        Source::File(path) => {
            if !path.is_file() {
                return Err(ConfigError::Other(format!(
                    "config file {} does not exist or is not a file",
                    path.display()
                )));
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml).required(true));
        }
        Source::SeedEnvironment => {
            let region = env.get("REGION").cloned().unwrap_or_else(|| "default".into());
            check_label_value("REGION", &region)?;
            let mut any = false;
            let seeds = [
                ("DATABASE_URL", System::Postgres),
                ("REDIS_URL", System::Redis),
                ("SEAWEEDFS_MASTER", System::Seaweedfs),
            ];
            for (variable, system) in seeds {
                let Some(url) = env.get(variable).filter(|v| !v.is_empty()) else { continue };
                // The seeds give the master as host:port.
                let url = if system == System::Seaweedfs && !url.contains("://") {
                    format!("http://{url}")
                } else {
                    url.clone()
                };
                let node: HashMap<String, String> =
                    [("name".to_string(), format!("{region}-{}", system.as_str())), ("url".to_string(), url.clone())]
                        .into();
                builder = builder
                    .set_default(format!("regions.{region}.{}", system.as_str()), vec![node])
                    .map_err(|e| ConfigError::Other(e.to_string()))?;
                any = true;
            }
            if !any {
                return Err(ConfigError::Other(
                    "no configuration: pass --config FILE (or set REPLAG_CONFIG), or set DATABASE_URL, REDIS_URL and/or SEAWEEDFS_MASTER (and REGION)"
                        .into(),
                ));
            }
        }
    }
    let overrides: HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k[ENV_PREFIX.len()..].contains(ENV_SEPARATOR))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix(ENV_PREFIX.trim_end_matches('_'))
            .prefix_separator("_")
            .separator(ENV_SEPARATOR)
            .source(Some(overrides)),
    );
    let raw: RawConfig = builder
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| ConfigError::Other(format!("invalid configuration: {}", scrub_config_error(&e.to_string()))))?;
    validate(raw, env)
}

/// `config` errors quote offending values; values may be URLs with passwords.
fn scrub_config_error(message: &str) -> String {
    if message.contains("://") {
        message
            .split_whitespace()
            .map(|w| if w.contains("://") { "<redacted>" } else { w })
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        message.to_string()
    }
}

fn parse_duration(key: &str, value: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    let parsed = parse_duration_or_zero(key, value, default)?;
    if parsed.is_zero() {
        return Err(key_error(key, "must be greater than zero"));
    }
    Ok(parsed)
}

fn parse_duration_or_zero(key: &str, value: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    let Some(text) = value else { return Ok(default) };
    humantime::parse_duration(text.trim()).map_err(|e| {
        key_error(key, format!("{} is not a duration ({e}); write e.g. \"1s\" or \"500ms\"", quoted(text)))
    })
}

fn validate(raw: RawConfig, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    let listen_text = raw.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen = SocketAddr::from_str(listen_text).map_err(|_| {
        key_error("server.listen", format!("{} is not an address like 0.0.0.0:8439", quoted(listen_text)))
    })?;

    let interval = parse_duration("poll.interval", raw.poll.interval.as_deref(), DEFAULT_INTERVAL)?;
    let timeout = parse_duration("poll.timeout", raw.poll.timeout.as_deref(), interval.mul_f64(0.8))?;
    if timeout > interval {
        return Err(key_error("poll.timeout", "must not be longer than poll.interval"));
    }
    let connect_timeout =
        parse_duration("poll.connect_timeout", raw.poll.connect_timeout.as_deref(), DEFAULT_CONNECT_TIMEOUT)?;
    let max_backoff =
        parse_duration("poll.max_backoff", raw.poll.max_backoff.as_deref(), DEFAULT_MAX_BACKOFF.max(interval))?;
    if max_backoff < interval {
        return Err(key_error("poll.max_backoff", "must not be shorter than poll.interval"));
    }

    let writer = match &raw.heartbeat.writer {
        Some(w) => w.clone(),
        None => {
            env.get("HOSTNAME").filter(|h| check_label_value("", h).is_ok()).cloned().unwrap_or_else(|| "replag".into())
        }
    };
    check_label_value("heartbeat.writer", &writer)?;
    let mut nodes = Vec::new();
    let mut names = HashSet::new();
    for (region, region_cfg) in &raw.regions {
        check_label_value(&format!("regions.{region}"), region)?;
        for (system_name, list) in region_cfg {
            let known = System::ALL.map(System::as_str).join(", ");
            let system = System::from_name(system_name).ok_or_else(|| {
                key_error(format!("regions.{region}.{system_name}"), format!("is not a system replag knows ({known})"))
            })?;
            for (i, node) in list.iter().enumerate() {
                let key = format!("regions.{region}.{}[{i}]", system.as_str());
                let name = node.name.as_deref().ok_or_else(|| key_error(format!("{key}.name"), "is required"))?;
                check_label_value(&format!("{key}.name"), name)?;
                if !names.insert(name.to_string()) {
                    return Err(key_error(format!("{key}.name"), format!("node name {name:?} is used twice")));
                }
                if let Some(group) = &node.group {
                    check_label_value(&format!("{key}.group"), group)?;
                }
                let mut target = Target::from_config(system, &key, node, env)?;
                if node.heartbeat {
                    let heartbeat = Heartbeat { writer: writer.clone(), source: name.to_string() };
                    target = target.with_heartbeat(&key, heartbeat)?;
                }
                let node = Node {
                    name: name.to_string(),
                    region: region.clone(),
                    system,
                    upstream: node.upstream.clone(),
                    publishers: node.publishers.clone(),
                    group: node.group.clone(),
                };
                nodes.push(NodeSpec { node, target });
            }
        }
    }
    if nodes.is_empty() {
        return Err(key_error(
            "regions",
            "no nodes configured: add e.g. [[regions.us-east.postgres]] or [[regions.us-east.redis]] with name and url",
        ));
    }
    for (i, node) in nodes.iter().enumerate() {
        if let Some(upstream) = &node.upstream {
            if !nodes.iter().any(|n| &n.name == upstream && n.system() == node.system()) {
                let system = node.system().as_str();
                let key = format!("regions.{}.{system}[{}].upstream", node.region, index_in_region(&nodes, i));
                return Err(key_error(key, format!("no {system} node is named {}", quoted(upstream))));
            }
        }
        if let Target::Seaweedfs(t) = &node.target {
            for (field, filer) in ["filer_a", "filer_b"].into_iter().zip(t.peers()) {
                let is_filer = |n: &NodeSpec| matches!(&n.target, Target::Seaweedfs(f) if matches!(f.role, SeaweedRole::Filer { .. }));
                if !nodes.iter().any(|n| &n.name == filer && is_filer(n)) {
                    let key = format!("regions.{}.seaweedfs[{}].{field}", node.region, index_in_region(&nodes, i));
                    return Err(key_error(key, format!("no seaweedfs filer node is named {}", quoted(filer))));
                }
            }
        }
        for (subscription, publisher) in &node.publishers {
            if !nodes.iter().any(|n| &n.name == publisher && n.system() == System::Postgres && n.name != node.name) {
                let key = format!(
                    "regions.{}.postgres[{}].publishers.{subscription}",
                    node.region,
                    index_in_region(&nodes, i)
                );
                return Err(key_error(key, format!("no other postgres node is named {}", quoted(publisher))));
            }
        }
    }
    let sample_interval =
        parse_duration_or_zero("poll.sample_interval", raw.poll.sample_interval.as_deref(), DEFAULT_SAMPLE_INTERVAL)?;
    if sample_interval >= interval {
        return Err(key_error("poll.sample_interval", "must be shorter than poll.interval (0s: sample only at polls)"));
    }
    let poll = PollSettings { interval, timeout, connect_timeout, max_backoff, sample_interval };
    let mut gates = BTreeMap::new();
    for (name, raw) in &raw.gates {
        check_label_value(&format!("gates.{name}"), name)?;
        gates.insert(name.clone(), gate_spec(name, raw, default_max_data_age(&poll))?);
    }
    let (nodes, shard) = match raw.shard {
        None => (nodes, None),
        Some(raw_shard) => {
            let shard = shard_of(&raw_shard)?;
            let nodes_total = nodes.len();
            let (owned, groups) = shard.select(nodes);
            (owned, Some(ShardSettings { shard, nodes_total, groups }))
        }
    };
    let events_journal = match raw.events.journal.as_deref() {
        None => None,
        Some("") => return Err(key_error("events.journal", "is empty; leave it out to keep events in memory only")),
        Some(path) => Some(std::path::PathBuf::from(path)),
    };
    Ok(Config { listen, poll, nodes, gates, shard, events_journal })
}

fn shard_of(raw: &RawShard) -> Result<Shard, ConfigError> {
    let count = raw.count.ok_or_else(|| key_error("shard.count", "is required with [shard]"))?;
    let index = raw.index.ok_or_else(|| key_error("shard.index", "is required with [shard]"))?;
    if count == 0 || count > 4096 {
        return Err(key_error("shard.count", format!("{count} is not between 1 and 4096")));
    }
    if index >= count {
        return Err(key_error(
            "shard.index",
            format!("{index} must be less than shard.count ({count}); shards count from 0"),
        ));
    }
    Ok(Shard { index, count })
}

/// A `[gates.NAME]` table, through the same validation as `/gate?…`.
fn gate_spec(name: &str, raw: &GateParams, default_data_age: Duration) -> Result<GateSpec, ConfigError> {
    raw.spec(Some(name.to_string()), default_data_age)
        .map_err(|e| key_error(format!("gates.{name}.{}", GateParams::config_key(&e.param)), e.message))
}

fn index_in_region(nodes: &[NodeSpec], i: usize) -> usize {
    nodes[..i].iter().filter(|n| n.region == nodes[i].region && n.system() == nodes[i].system()).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systems::postgres::PgTlsMode;
    use std::io::Write;

    fn load_toml(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        load_from(Source::File(file.path()), &env)
    }

    const GOOD: &str = r#"
        [poll]
        interval = "2s"
        [[regions.us-east.postgres]]
        name = "pg-a"
        url = "postgresql://mon:hunter2@127.0.0.1:5432/postgres"
        [[regions.eu-west.postgres]]
        name = "pg-b"
        url = "host=127.0.0.1 port=5433 user=mon dbname=postgres"
        password_env = "PGB_PASSWORD"
        upstream = "pg-a"
    "#;

    #[test]
    fn the_events_journal_comes_from_the_file_or_the_environment_and_is_never_empty() {
        let base = "[[regions.us-east.postgres]]\nname = \"a\"\nurl = \"postgresql://u@h/db\"\n";
        let cfg = load_toml(&format!("[events]\njournal = \"/var/lib/replag/events.jsonl\"\n{base}"), &[]).unwrap();
        assert_eq!(cfg.events_journal.as_deref(), Some(Path::new("/var/lib/replag/events.jsonl")));
        let cfg = load_toml(base, &[("REPLAG_EVENTS__JOURNAL", "/tmp/e.jsonl")]).unwrap();
        assert_eq!(cfg.events_journal.as_deref(), Some(Path::new("/tmp/e.jsonl")));
        assert_eq!(load_toml(base, &[]).unwrap().events_journal, None, "in memory by default");
        let e = error_of(&format!("[events]\njournal = \"\"\n{base}"), &[]);
        assert!(e.contains("events.journal"), "{e}");
        let e = error_of(&format!("[events]\njournl = \"x\"\n{base}"), &[]);
        assert!(e.contains("journl"), "{e}");
    }

    #[test]
    fn loads_a_good_file_with_defaults() {
        let cfg = load_toml(GOOD, &[("PGB_PASSWORD", "s3cret")]).unwrap();
        assert_eq!(cfg.poll.interval, Duration::from_secs(2));
        assert_eq!(cfg.poll.timeout, Duration::from_millis(1600));
        assert_eq!(cfg.poll.sample_interval, DEFAULT_SAMPLE_INTERVAL);
        assert_eq!(cfg.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(cfg.nodes.len(), 2);
        let b = cfg.nodes.iter().find(|n| n.name == "pg-b").unwrap();
        assert_eq!(b.region, "eu-west");
        assert_eq!(b.upstream.as_deref(), Some("pg-a"));
        let Target::Postgres(pg) = &b.target else { panic!("postgres node") };
        assert_eq!(pg.config().get_password(), Some(&b"s3cret"[..]));
    }

    #[test]
    fn environment_overrides_keys() {
        let cfg = load_toml(
            GOOD,
            &[("PGB_PASSWORD", "x"), ("REPLAG_POLL__INTERVAL", "5s"), ("REPLAG_PG_PASSWORD", "ignored")],
        )
        .unwrap();
        assert_eq!(cfg.poll.interval, Duration::from_secs(5));
    }

    #[test]
    fn shards_split_the_nodes_and_keep_groups_whole() {
        let mut text = String::new();
        for i in 0..20 {
            text += &format!(
                "[[regions.us.redis]]\nname = \"m{i}\"\nurl = \"redis://127.0.0.1:{}\"\ngroup = \"g{i}\"\n",
                7000 + i
            );
            text += &format!(
                "[[regions.eu.redis]]\nname = \"r{i}\"\nurl = \"redis://127.0.0.1:{}\"\ngroup = \"g{i}\"\n",
                8000 + i
            );
        }
        let mut owned = Vec::new();
        for index in 0..3 {
            // The shard comes from the file or, as here, the environment.
            let shard = [("REPLAG_SHARD__INDEX", index.to_string()), ("REPLAG_SHARD__COUNT", "3".to_string())];
            let env: Vec<(&str, &str)> = shard.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let cfg = load_toml(&text, &env).unwrap();
            let s = cfg.shard.unwrap();
            assert_eq!((s.shard.index, s.shard.count, s.nodes_total), (index, 3, 40));
            assert_eq!(s.groups * 2, cfg.nodes.len(), "whole groups only");
            owned.extend(cfg.nodes.into_iter().map(|n| n.node.name));
        }
        owned.sort();
        owned.dedup();
        assert_eq!(owned.len(), 40, "every node in exactly one shard");
        assert!(load_toml(&text, &[]).unwrap().shard.is_none());
    }

    #[test]
    fn a_url_in_the_wrong_key_is_not_echoed() {
        let base = "[[regions.r1.redis]]\nname = \"a\"\nurl = \"redis://h:1\"\n";
        for bad in [
            format!("[poll]\ninterval = \"postgres://u:Secr3t@h/db\"\n{base}"),
            format!("[server]\nlisten = \"u:Secr3t@h\"\n{base}"),
            format!("{base}upstream = \"redis://u:Secr3t@h\"\n"),
            format!("{base}[gates.g]\nmax_lag = \"redis://u:Secr3t@h\"\n"),
        ] {
            let e = error_of(&bad, &[]);
            assert!(!e.contains("Secr3t") && e.contains("not shown"), "{e}");
        }
    }

    #[test]
    fn bad_shards_name_the_key() {
        let base = "[[regions.r1.redis]]\nname = \"a\"\nurl = \"redis://h:1\"\n";
        assert!(error_of(&format!("[shard]\nindex = 2\ncount = 2\n{base}"), &[]).contains("shard.index"));
        assert!(error_of(&format!("[shard]\nindex = 0\ncount = 0\n{base}"), &[]).contains("shard.count"));
        assert!(error_of(&format!("[shard]\nindex = 0\n{base}"), &[]).contains("shard.count"));
        assert!(error_of(&format!("{base}group = \"has space\"\n"), &[]).contains("group"));
        let e = error_of(base, &[("REPLAG_SHARD__INDEX", "x"), ("REPLAG_SHARD__COUNT", "2")]);
        assert!(e.contains("shard") || e.contains("index"), "{e}");
    }

    #[test]
    fn a_filer_sync_shares_its_filers_shard() {
        let mut text = String::new();
        for pair in 0..6 {
            for side in ["a", "b"] {
                text += &format!("[[regions.r.seaweedfs]]\nname = \"f{pair}{side}\"\nurl = \"http://h{pair}{side}:8888\"\nrole = \"filer\"\n");
            }
            text += &format!("[[regions.r.seaweedfs]]\nname = \"s{pair}\"\nurl = \"http://s{pair}:9327\"\nrole = \"filer_sync\"\nfiler_a = \"f{pair}a\"\nfiler_b = \"f{pair}b\"\n");
        }
        let mut owned = 0;
        for index in 0..2 {
            let cfg = load_toml(&format!("[shard]\nindex = {index}\ncount = 2\n{text}"), &[]).unwrap();
            let names: HashSet<&str> = cfg.nodes.iter().map(|n| n.name.as_str()).collect();
            for pair in 0..6 {
                let present =
                    [format!("s{pair}"), format!("f{pair}a"), format!("f{pair}b")].map(|n| names.contains(n.as_str()));
                assert!(present.iter().all(|p| *p == present[0]), "pair {pair} split across shards: {present:?}");
            }
            owned += cfg.nodes.len();
        }
        assert_eq!(owned, 18, "every node in exactly one shard");
    }

    fn error_of(text: &str, env: &[(&str, &str)]) -> String {
        load_toml(text, env).unwrap_err().to_string()
    }

    #[test]
    fn redis_sentinel_and_cluster_keys() {
        use crate::systems::redis::RedisRole;
        let entry = |extra: &str| {
            format!(
                "[[regions.r.redis]]\nname = \"s\"\nurl = \"redis://127.0.0.1:26379\"\nrole = \"sentinel\"\n{extra}"
            )
        };
        let env = [("PW", "server-secret"), ("SPW", "sentinel-secret")];
        let text = entry(
            "masters = [\"orders\"]\npassword_env = \"PW\"\nsentinel_password_env = \"SPW\"\n\
             node_regions = { \"10.1.0.0/16\" = \"us\", \"10.1.2.3\" = \"eu\", \"10.1.2.3:7000\" = \"ap\" }\n",
        );
        let cfg = load_toml(&text, &env).unwrap();
        let Target::Redis(t) = &cfg.nodes[0].target else { panic!("a redis target") };
        assert_eq!(t.role, RedisRole::Sentinel { masters: vec!["orders".into()] });
        assert_eq!(t.password(), Some("sentinel-secret".as_bytes()), "the Sentinel's own password");
        let member = t.member("10.1.2.3", 6379);
        assert_eq!(member.password(), Some("server-secret".as_bytes()), "the servers' password");
        assert_eq!(member.role, RedisRole::Server);
        assert_eq!(t.region_of("10.1.2.3", 7000), Some("ap"), "host:port first");
        assert_eq!(t.region_of("10.1.2.3", 6379), Some("eu"), "then host");
        assert_eq!(t.region_of("10.1.9.9", 6379), Some("us"), "then network");
        assert_eq!(t.region_of("192.168.0.1", 6379), None);
        assert!(!format!("{t:?}").contains("secret"));

        assert!(error_of(&entry("role = \"x\"\n").replace("role = \"sentinel\"\n", ""), &[]).contains("role"));
        assert!(error_of(&entry("").replace("sentinel\"", "banana\""), &[]).contains("redis[0].role"));
        assert!(error_of(&entry("node_regions = { \"10.0.0.0/99\" = \"us\" }\n"), &[]).contains("node_regions"));
        assert!(error_of(&entry("node_regions = { \"h\" = \"bad region\" }\n"), &[]).contains("node_regions"));
        assert!(error_of(&entry("heartbeat = true\n"), &[]).contains("redis[0].heartbeat"));
        assert!(error_of(&entry("sentinel_password_env = \"NOPE\"\n"), &[]).contains("sentinel_password_env"));
        let cluster = entry("masters = [\"x\"]\n").replace("\"sentinel\"", "\"cluster\"");
        assert!(error_of(&cluster, &[]).contains("redis[0].masters"));
        let server = "[[regions.r.redis]]\nname = \"s\"\nurl = \"redis://h:6379\"\nnode_regions = { h = \"r\" }\n";
        assert!(error_of(server, &[]).contains("redis[0].node_regions"));
        let pg = "[[regions.r.postgres]]\nname = \"p\"\nurl = \"postgresql://h/db\"\n";
        assert!(error_of(&format!("{pg}role = \"sentinel\"\n"), &[]).contains("postgres[0].role"));
        assert!(error_of(&format!("{pg}masters = [\"x\"]\n"), &[]).contains("postgres[0].masters"));
    }

    #[test]
    fn patroni_entries() {
        let entry = |extra: &str| {
            format!(
                "[[regions.eu.postgres]]\nname = \"ha\"\nrole = \"patroni\"\n\
                 endpoints = [\"http://10.0.0.1:8008/\", \"https://10.0.0.2:8008\"]\n{extra}"
            )
        };
        let env = [("PG", "member-secret"), ("REST", "rest-secret")];
        let text = entry(
            "url = \"postgresql://replag@/postgres?sslmode=disable\"\npassword_env = \"PG\"\n\
             patroni_username = \"patroni\"\npatroni_password_env = \"REST\"\nheartbeat = true\n\
             node_regions = { \"10.2.0.0/16\" = \"us\" }\n",
        );
        let cfg = load_toml(&text, &env).unwrap();
        let Target::Patroni(t) = &cfg.nodes[0].target else { panic!("a patroni target") };
        assert_eq!(t.endpoints, ["http://10.0.0.1:8008", "https://10.0.0.2:8008"]);
        assert_eq!(t.auth, Some(("patroni".into(), "rest-secret".into())));
        let member = t.member("10.2.0.5", 5433);
        assert_eq!(member.addresses(), [("10.2.0.5".to_string(), 5433)]);
        assert_eq!(member.password(), Some("member-secret".as_bytes()));
        assert_eq!(member.config().get_dbname(), Some("postgres"));
        assert!(member.heartbeat.is_some(), "heartbeats on the members");
        assert_eq!(t.regions.region_of("10.2.0.5", 5433), Some("us"));
        assert!(!format!("{t:?}").contains("secret"));
        assert!(cfg.nodes[0].target.addresses().is_empty(), "no server itself");

        let url = "url = \"postgresql://replag@/postgres\"\n";
        assert!(error_of(&entry(""), &[]).contains("postgres[0].url"));
        assert!(error_of(&entry("url = \"postgresql://replag@h/postgres\"\n"), &[]).contains("must not name a host"));
        let no_endpoints =
            entry(url).replace("endpoints = [\"http://10.0.0.1:8008/\", \"https://10.0.0.2:8008\"]\n", "");
        assert!(error_of(&no_endpoints, &[]).contains("postgres[0].endpoints"));
        let with_secret = entry(url).replace("http://10.0.0.1", "http://u:hunter2@10.0.0.1");
        let e = error_of(&with_secret, &[]);
        assert!(e.contains("endpoints[0]") && !e.contains("hunter2"), "{e}");
        assert!(error_of(&entry(url).replace("https://", "ftp://"), &[]).contains("endpoints[1]"));
        assert!(error_of(&entry(&format!("{url}patroni_username = \"p\"\n")), &[]).contains("patroni_password_env"));
        assert!(error_of(&entry(&format!("{url}masters = [\"x\"]\n")), &[]).contains("masters"));
        let server = "[[regions.r.postgres]]\nname = \"p\"\nurl = \"postgresql://h/db\"\n";
        assert!(error_of(&format!("{server}endpoints = [\"http://h:8008\"]\n"), &[]).contains("postgres[0].endpoints"));
        let redis = "[[regions.r.redis]]\nname = \"s\"\nurl = \"redis://h:6379\"\n";
        assert!(error_of(&format!("{redis}patroni_ca_file = \"x\"\n"), &[]).contains("redis[0].patroni_ca_file"));
    }

    #[test]
    fn errors_name_the_key() {
        let base = "[[regions.r1.postgres]]\nname = \"a\"\nurl = \"postgresql://u:pw@h/db\"\n";
        assert!(error_of(&format!("[poll]\ninterval = \"banana\"\n{base}"), &[]).contains("poll.interval"));
        assert!(error_of(&format!("[poll]\ninterval = \"1s\"\ntimeout = \"2s\"\n{base}"), &[]).contains("poll.timeout"));
        let sampled_as_slowly_as_polled = format!("[poll]\ninterval = \"1s\"\nsample_interval = \"1s\"\n{base}");
        assert!(error_of(&sampled_as_slowly_as_polled, &[]).contains("poll.sample_interval"));
        let off = load_toml(&format!("[poll]\nsample_interval = \"0s\"\n{base}"), &[]).unwrap();
        assert_eq!(off.poll.sample_interval, Duration::ZERO);
        assert!(error_of(&format!("[server]\nlisten = \"nope\"\n{base}"), &[]).contains("server.listen"));
        assert!(error_of("[[regions.r1.postgres]]\nname = \"a\"\n", &[]).contains("regions.r1.postgres[0].url"));
        assert!(error_of("[[regions.r1.postgres]]\nurl = \"postgresql://h/db\"\n", &[])
            .contains("regions.r1.postgres[0].name"));
        assert!(error_of(&format!("{base}password_env = \"NOPE\"\n"), &[]).contains("password_env"));
        assert!(error_of(&format!("{base}upstream = \"ghost\"\n"), &[]).contains("regions.r1.postgres[0].upstream"));
        assert!(error_of("", &[]).contains("regions"));
        let redis = "[[regions.r1.redis]]\nname = \"r\"\n";
        assert!(error_of(&format!("{redis}url = \"http://x\"\n"), &[]).contains("regions.r1.redis[0].url"));
        assert!(error_of(&format!("{redis}url = \"redis://h:1\"\nca_file = \"/nonexistent\"\n"), &[])
            .contains("regions.r1.redis[0].ca_file"));
        assert!(error_of(&format!("{base}ca_file = \"/x\"\n"), &[]).contains("regions.r1.postgres[0].ca_file"));
        assert!(error_of(&format!("{base}client_cert_file = \"/x\"\n"), &[]).contains("client_key_file"));
        let weed = "[[regions.r1.seaweedfs]]\nname = \"w\"\n";
        assert!(error_of(&format!("{weed}url = \"10.0.0.1:9333\"\n"), &[]).contains("regions.r1.seaweedfs[0].url"));
        assert!(error_of(&format!("{weed}url = \"http://h:x\"\n"), &[]).contains("regions.r1.seaweedfs[0].url"));
        assert!(error_of(&format!("{weed}url = \"http://h:9333\"\ndatacenters = {{ dc1 = \"bad region\" }}\n"), &[])
            .contains("regions.r1.seaweedfs[0].datacenters.dc1"));
        assert!(error_of(&format!("{base}publishers = {{ s = \"ghost\" }}\n"), &[])
            .contains("regions.r1.postgres[0].publishers.s"));
        let filer = |name: &str| {
            format!("[[regions.r1.seaweedfs]]\nname = \"{name}\"\nurl = \"http://h:8888\"\nrole = \"filer\"\n")
        };
        let sync = "[[regions.r1.seaweedfs]]\nname = \"s\"\nurl = \"http://h:9327\"\nrole = \"filer_sync\"\n";
        let pair = format!("{}{}", filer("fa"), filer("fb"));
        assert!(
            error_of(&format!("{weed}url = \"http://h:1\"\nrole = \"volume\"\n"), &[]).contains("seaweedfs[0].role")
        );
        assert!(error_of(&format!("{pair}{sync}filer_b = \"fb\"\n"), &[]).contains("seaweedfs[2].filer_a"));
        assert!(error_of(&format!("{pair}{sync}filer_a = \"fa\"\nfiler_b = \"ghost\"\n"), &[])
            .contains("seaweedfs[2].filer_b"));
        assert!(error_of(&format!("{pair}{sync}filer_a = \"fa\"\nfiler_b = \"fa\"\n"), &[])
            .contains("seaweedfs[2].filer_b"));
        assert!(
            error_of(&format!("{pair}{weed}url = \"http://h:9333\"\n{sync}filer_a = \"fa\"\nfiler_b = \"w\"\n"), &[])
                .contains("seaweedfs[3].filer_b"),
            "filer_b must be a filer, not a master"
        );
        assert!(error_of(&format!("{}heartbeat_path = \"relative\"\n", filer("fa")), &[]).contains("heartbeat_path"));
        assert!(error_of(&format!("{}heartbeat_path = \"/a/../b\"\n", filer("fa")), &[]).contains("heartbeat_path"));
        assert!(
            error_of(&format!("{weed}url = \"http://h:9333\"\nheartbeat = true\n"), &[])
                .contains("seaweedfs[0].heartbeat"),
            "a master writes no heartbeat"
        );
        assert!(error_of(&format!("{base}role = \"filer\"\n"), &[]).contains("postgres[0].role"));
        assert!(error_of(&format!("{redis}url = \"redis://h:1\"\nactive_passive = true\n"), &[])
            .contains("redis[0].active_passive"));
        assert!(error_of(&format!("{}active_passive = true\n", filer("fa")), &[]).contains("active_passive"));
        assert!(error_of(&format!("{}sync_address = \"nope\"\n", filer("fa")), &[]).contains("sync_address"));
        assert!(error_of(&format!("{base}sync_address = \"h:1\"\n"), &[]).contains("postgres[0].sync_address"));
        let fine = format!("{pair}{sync}filer_a = \"fa\"\nfiler_b = \"fb\"\nactive_passive = true\n");
        assert!(load_toml(&fine, &[]).is_ok());
        let dup = format!("{base}[[regions.r2.postgres]]\nname = \"a\"\nurl = \"postgresql://h/db\"\n");
        assert!(error_of(&dup, &[]).contains("regions.r2.postgres[0].name"));
        let typo = error_of(&format!("[poll]\nintervall = \"1s\"\n{base}"), &[]);
        assert!(typo.contains("intervall"), "{typo}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Arbitrary files and TOML-shaped garbage: a config or an error, never a panic.
        #[test]
        fn any_file_is_a_config_or_an_error(text in "(?s).{0,300}",
            key in "[a-z_.\\[\\]0-9]{1,30}", value in "[ -~]{0,30}") {
            let _ = load_toml(&text, &[]);
            let _ = load_toml(&format!("{key} = \"{value}\"\n[[regions.r.postgres]]\nname = \"n\"\nurl = \"postgresql://h/d\"\n"), &[]);
            let _ = load_toml(&format!("[[regions.r.redis]]\nname = \"n\"\nurl = \"{value}\"\n"), &[]);
            let _ = load_toml(&format!("[[regions.r.seaweedfs]]\nname = \"n\"\nurl = \"{value}\"\n"), &[]);
            let _ = load_toml(&format!("[[regions.r.postgres]]\nname = \"n\"\nurl = \"{value}\"\n"), &[]);
        }
    }

    #[test]
    fn postgres_tls_modes() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
        let node = |url: &str, extra: &str| {
            let cfg =
                load_toml(&format!("[[regions.r.postgres]]\nname = \"n\"\nurl = \"{url}\"\n{extra}"), &[]).unwrap();
            let Target::Postgres(t) = &cfg.nodes[0].target else { panic!("postgres") };
            t.tls.as_ref().map(|tls| (tls.mode, tls.ca_pem.is_some()))
        };
        let ca_line = format!("ca_file = \"{}\"\n", ca.display());
        assert_eq!(node("postgresql://h/db", ""), None, "default (prefer) stays plaintext");
        assert_eq!(node("postgresql://h/db?sslmode=require", ""), Some((PgTlsMode::VerifyFull, false)));
        assert_eq!(node("postgresql://h/db?sslmode=verify-full", &ca_line), Some((PgTlsMode::VerifyFull, true)));
        assert_eq!(node("postgresql://h/db?sslmode=verify-ca", &ca_line), Some((PgTlsMode::VerifyCa, true)));
        assert_eq!(node("host=h dbname=db sslmode=verify-ca", ""), Some((PgTlsMode::VerifyCa, false)));
        assert_eq!(node("postgresql://h/db", &ca_line), Some((PgTlsMode::VerifyFull, true)), "a CA implies TLS");
        let err = error_of(
            &format!("[[regions.r.postgres]]\nname = \"n\"\nurl = \"postgresql://h/db?sslmode=disable\"\n{ca_line}"),
            &[],
        );
        assert!(err.contains("regions.r.postgres[0].url") && err.contains("sslmode=disable"), "{err}");
    }

    #[test]
    fn gates_are_validated_naming_the_key() {
        let base = "[[regions.r1.postgres]]\nname = \"a\"\nurl = \"postgresql://h/db\"\n";
        let cfg = load_toml(
            &format!("{base}[gates.deploy]\nmax_lag = \"500ms\"\nfor = \"60s\"\nsystems = [\"postgres\"]\nmax_lag_bytes = 1048576\n"),
            &[],
        )
        .unwrap();
        let gate = &cfg.gates["deploy"];
        assert_eq!(gate.max_lag, Some(Duration::from_millis(500)));
        assert_eq!(gate.max_lag_bytes, Some(1_048_576));
        assert_eq!(gate.scope.systems, ["postgres"]);
        assert_eq!(gate.max_data_age, Duration::from_secs(10));
        assert!(error_of(&format!("{base}[gates.deploy]\nmax_lag = \"soon\"\n"), &[]).contains("gates.deploy.max_lag"));
        assert!(
            error_of(&format!("{base}[gates.deploy]\nsystems = [\"oracle\"]\n"), &[]).contains("gates.deploy.systems")
        );
        assert!(error_of(&format!("{base}[gates.deploy]\nfour = \"1s\"\n"), &[]).contains("four"));
    }

    #[test]
    fn errors_never_echo_the_url_or_password() {
        let msg =
            error_of("[[regions.r1.postgres]]\nname = \"a\"\nurl = \"postgresql://u:hunter2@h:notaport/db\"\n", &[]);
        assert!(msg.contains("regions.r1.postgres[0].url"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        let msg =
            error_of("[[regions.r1.postgres]]\nname = \"a\"\nurl = 5\nbogus = \"postgresql://u:hunter2@h/db\"\n", &[]);
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn the_documented_example_loads() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("pw");
        std::fs::write(&secret, "from-file\n").unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
        let text = include_str!("../../docs/replag.example.toml")
            .replace("/run/secrets/replag-pg-password", secret.to_str().unwrap())
            .replace("/etc/replag/redis-ca.pem", ca.to_str().unwrap())
            .replace("/etc/replag/pg-ca.pem", ca.to_str().unwrap());
        let env = [("REPLAG_PG_PASSWORD", "from-env"), ("REPLAG_REDIS_PASSWORD", "r")];
        let cfg = load_toml(&text, &env).unwrap();
        assert_eq!(cfg.nodes.len(), 10);
        let sync = cfg.nodes.iter().find(|n| n.name == "filer-sync").unwrap();
        let Target::Seaweedfs(t) = &sync.target else { panic!("seaweedfs node") };
        assert!(
            matches!(&t.role, SeaweedRole::FilerSync { a, b, active_passive: false } if a == "filer-us-east" && b == "filer-eu-west")
        );
        let weed = cfg.nodes.iter().find(|n| n.name == "weed-us-east").unwrap();
        let Target::Seaweedfs(t) = &weed.target else { panic!("seaweedfs node") };
        assert_eq!(t.region_of("dc-dublin"), "eu-west");
        assert_eq!(t.region_of("elsewhere"), "elsewhere");
        let subscriber = cfg.nodes.iter().find(|n| n.name == "pg-ap-south-sub").unwrap();
        assert_eq!(subscriber.publishers.get("ap_south_sub").map(String::as_str), Some("pg-us-east-1"));
        let first = cfg.nodes.iter().find(|n| n.name == "pg-us-east-1").unwrap();
        let Target::Postgres(pg) = &first.target else { panic!("postgres node") };
        assert_eq!(pg.password(), Some(&b"from-file"[..]), "trailing newline stripped");
        assert_eq!(cfg.poll.timeout, Duration::from_millis(800));
    }

    #[test]
    fn seed_environment_makes_a_one_region_config() {
        let env: HashMap<String, String> =
            [("REGION", "us-east"), ("DATABASE_URL", "postgresql://u:p@127.0.0.1:5432/app")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let cfg = load_from(Source::SeedEnvironment, &env).unwrap();
        assert_eq!(cfg.nodes.len(), 1);
        assert_eq!(cfg.nodes[0].name, "us-east-postgres");
        assert_eq!(cfg.nodes[0].region, "us-east");
        let mut both = env.clone();
        both.insert("REDIS_URL".into(), "redis://:p@127.0.0.1:6379".into());
        let cfg = load_from(Source::SeedEnvironment, &both).unwrap();
        let names: Vec<&str> = cfg.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["us-east-postgres", "us-east-redis"]);
        both.insert("SEAWEEDFS_MASTER".into(), "10.0.0.9:9333".into());
        let cfg = load_from(Source::SeedEnvironment, &both).unwrap();
        let weed = cfg.nodes.iter().find(|n| n.name == "us-east-seaweedfs").unwrap();
        let Target::Seaweedfs(t) = &weed.target else { panic!("seaweedfs node") };
        assert_eq!((t.base_url.as_str(), t.port), ("http://10.0.0.9:9333", 9333));
        assert!(load_from(Source::SeedEnvironment, &HashMap::new()).unwrap_err().to_string().contains("DATABASE_URL"));
    }
}
