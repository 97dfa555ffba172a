//! A gate's parameters — limits, `for`, data age and scope — defined once
//! ([`GateParams`]) and parsed once ([`GateSpec::from_pairs`]) for the
//! config's `[gates.NAME]`, the CLI's options, `/gate`'s query string and the
//! Prometheus-backed gate alike.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::breach::RETENTION;
use crate::model::{quoted, truncate, LinkId, LinkKind, System};

const MAX_LAG_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_BYTES_LIMIT: u64 = 1 << 50;

/// A bad gate parameter: which, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{param}: {message}")]
pub struct GateError {
    pub param: String,
    pub message: String,
}

/// The parameter's name is user input too (an unknown one is echoed):
/// at most 64 characters of it.
fn bad(param: &str, message: impl Into<String>) -> GateError {
    let param = match truncate(param, 64) {
        short if short.len() < param.len() => format!("{short}…"),
        whole => whole.to_string(),
    };
    GateError { param, message: message.into() }
}

/// Which links a gate considers; an empty list matches everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    pub systems: Vec<String>,
    pub kinds: Vec<String>,
    pub source_regions: Vec<String>,
    pub replica_regions: Vec<String>,
    /// `system/kind/source->replica`, `source->replica`, or a replica name.
    pub links: Vec<String>,
    /// Replication groups: a Redis Sentinel master name or Cluster name.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Redis Cluster shards, by slot ranges (`0-5460`).
    #[serde(default)]
    pub shards: Vec<String>,
}

impl Scope {
    /// Does the link (with its group and shard, where a topology gives
    /// them) fall in the scope? A group or shard scope matches no link
    /// without one.
    pub fn matches(&self, link: &LinkId, group: Option<&str>, shard: Option<&str>) -> bool {
        let listed = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|l| l == v))
        };
        if !listed(&self.groups, group) || !listed(&self.shards, shard) {
            return false;
        }
        let any = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        let named = || {
            let pair = format!("{}->{}", link.source, link.replica);
            let id = format!("{}/{}/{pair}", link.system.as_str(), link.kind.as_str());
            self.links.iter().any(|l| *l == id || *l == pair || *l == link.replica)
        };
        any(&self.systems, link.system.as_str())
            && any(&self.kinds, link.kind.as_str())
            && any(&self.source_regions, &link.source_region)
            && any(&self.replica_regions, &link.replica_region)
            && (self.links.is_empty() || named())
    }
}

/// A gate: limits, how long a breach may last, and scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateSpec {
    pub name: Option<String>,
    #[serde(rename = "max_lag_seconds", serialize_with = "opt_seconds", deserialize_with = "de_opt_seconds")]
    pub max_lag: Option<Duration>,
    pub max_lag_bytes: Option<u64>,
    #[serde(rename = "for_seconds", serialize_with = "seconds", deserialize_with = "de_seconds")]
    pub hold: Duration,
    #[serde(rename = "max_data_age_seconds", serialize_with = "seconds", deserialize_with = "de_seconds")]
    pub max_data_age: Duration,
    pub scope: Scope,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_secs_f64()),
        None => s.serialize_none(),
    }
}

fn de_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = f64::deserialize(d)?;
    Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom)
}

fn de_opt_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<f64>::deserialize(d)?.map(|s| Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom)).transpose()
}

fn duration(param: &str, value: &str, max: Duration) -> Result<Duration, GateError> {
    let d = humantime::parse_duration(value.trim())
        .map_err(|e| bad(param, format!("{} is not a duration like 500ms, 30s or 5m ({e})", quoted(value))))?;
    if d > max {
        return Err(bad(
            param,
            format!("{} is more than the {} allowed", quoted(value), humantime::format_duration(max)),
        ));
    }
    Ok(d)
}

/// `1048576`, `64KiB`, `10MB`, `1GiB`.
fn bytes(param: &str, value: &str) -> Result<u64, GateError> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(bad(param, format!("{} is not a byte count like 1048576, 64KiB or 10MB", quoted(value)))),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| bad(param, format!("{} is not a byte count like 1048576, 64KiB or 10MB", quoted(value))))?;
    n.checked_mul(multiplier)
        .filter(|b| *b <= MAX_BYTES_LIMIT)
        .ok_or_else(|| bad(param, format!("{} is more than the 1 PiB allowed", quoted(value))))
}

fn listed(param: &str, value: &str, known: Option<&[&str]>) -> Result<Vec<String>, GateError> {
    let items: Vec<String> = value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    if items.is_empty() {
        return Err(bad(param, "is empty"));
    }
    if let Some(known) = known {
        if let Some(unknown) = items.iter().find(|i| !known.contains(&i.as_str())) {
            return Err(bad(param, format!("{} is not one of {}", quoted(unknown), known.join(", "))));
        }
    }
    Ok(items)
}

impl GateSpec {
    /// Build from `(parameter, value)` pairs: the query string of `/gate`, or
    /// a `[gates.NAME]` table. Lists may repeat a parameter or use commas.
    /// `default_data_age` applies when `max_data_age` is not given.
    pub fn from_pairs<'a>(
        name: Option<String>,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        default_data_age: Duration,
    ) -> Result<GateSpec, GateError> {
        let mut spec = GateSpec {
            name,
            max_lag: None,
            max_lag_bytes: None,
            hold: Duration::ZERO,
            max_data_age: default_data_age,
            scope: Scope::default(),
        };
        let mut seen = BTreeMap::new();
        for (key, value) in pairs {
            let repeatable =
                matches!(key, "system" | "kind" | "source_region" | "replica_region" | "link" | "group" | "shard");
            if seen.insert(key, ()).is_some() && !repeatable {
                return Err(bad(key, "given twice"));
            }
            match key {
                "max_lag" => spec.max_lag = Some(duration(key, value, MAX_LAG_LIMIT)?),
                "max_lag_bytes" => spec.max_lag_bytes = Some(bytes(key, value)?),
                "for" => spec.hold = duration(key, value, RETENTION)?,
                "max_data_age" => {
                    spec.max_data_age = duration(key, value, RETENTION)?;
                    if spec.max_data_age.is_zero() {
                        return Err(bad(key, "must be greater than zero"));
                    }
                }
                "system" => spec.scope.systems.extend(listed(key, value, Some(&System::ALL.map(System::as_str)))?),
                "kind" => spec.scope.kinds.extend(listed(key, value, Some(&LinkKind::ALL.map(LinkKind::as_str)))?),
                "source_region" => spec.scope.source_regions.extend(listed(key, value, None)?),
                "replica_region" => spec.scope.replica_regions.extend(listed(key, value, None)?),
                "link" => spec.scope.links.extend(listed(key, value, None)?),
                "group" => spec.scope.groups.extend(listed(key, value, None)?),
                // Not comma-separated: a shard's name lists its slot ranges with commas.
                "shard" if value.trim().is_empty() => return Err(bad(key, "is empty")),
                "shard" => spec.scope.shards.push(value.trim().to_string()),
                other => {
                    return Err(bad(
                        other,
                        "unknown parameter; use max_lag, max_lag_bytes, for, max_data_age, system, kind, source_region, replica_region, link, group, shard",
                    ))
                }
            }
        }
        Ok(spec)
    }

    /// The spec written back as parameters, in a normal form (durations as
    /// humantime writes them, every list item on its own): `spec()` of the
    /// result is this spec again. Every field is named (no `..`), so a scope
    /// added to the spec does not compile until it is written out here.
    pub fn params(&self) -> GateParams {
        let GateSpec {
            name: _,
            max_lag,
            max_lag_bytes,
            hold,
            max_data_age,
            scope: Scope { systems, kinds, source_regions, replica_regions, links, groups, shards },
        } = self;
        let duration = |d: &Duration| humantime::format_duration(*d).to_string();
        GateParams {
            max_lag: max_lag.as_ref().map(duration),
            max_lag_bytes: max_lag_bytes.map(|b| b.to_string()),
            hold: Some(duration(hold)),
            max_data_age: Some(duration(max_data_age)),
            systems: systems.clone(),
            kinds: kinds.clone(),
            source_regions: source_regions.clone(),
            replica_regions: replica_regions.clone(),
            links: links.clone(),
            groups: groups.clone(),
            shards: shards.clone(),
        }
    }

    /// Parse a `/gate` query string.
    pub fn from_query(query: &str, default_data_age: Duration) -> Result<GateSpec, GateError> {
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        GateSpec::from_pairs(None, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), default_data_age)
    }
}

/// A gate's parameters as people write them: the `[gates.NAME]` keys, the
/// `replag gate` options and (as [`GateParams::pairs`]) `/gate`'s query
/// parameters. Validation is [`GateSpec::from_pairs`]'s.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct GateParams {
    /// Fail a link whose lag stays above this (e.g. 500ms).
    #[arg(long)]
    pub max_lag: Option<String>,
    /// Fail a link whose lag stays above this many bytes (e.g. 16MiB).
    #[arg(long)]
    pub max_lag_bytes: Option<String>,
    /// How long a link may be over a limit before it fails (0: right now).
    #[arg(long = "for")]
    #[serde(rename = "for")]
    pub hold: Option<String>,
    /// Data older than this fails.
    #[arg(long)]
    pub max_data_age: Option<String>,
    /// Only these systems (repeatable, or comma-separated): postgres, redis, seaweedfs.
    #[arg(long = "system")]
    #[serde(default)]
    pub systems: Vec<String>,
    /// Only these link kinds (repeatable, or comma-separated): physical, logical, replica, volume, filer_sync.
    #[arg(long = "kind")]
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Only links from these regions (repeatable).
    #[arg(long = "source-region")]
    #[serde(default)]
    pub source_regions: Vec<String>,
    /// Only links to these regions (repeatable).
    #[arg(long = "replica-region")]
    #[serde(default)]
    pub replica_regions: Vec<String>,
    /// Only these links (repeatable): source->replica, or a replica name.
    #[arg(long = "link")]
    #[serde(default)]
    pub links: Vec<String>,
    /// Only links of these replication groups (repeatable): a Redis Sentinel master name or Cluster name.
    #[arg(long = "group")]
    #[serde(default)]
    pub groups: Vec<String>,
    /// Only links of these Redis Cluster shards (repeatable; not comma-separated), named by slot ranges: 0-5460.
    #[arg(long = "shard")]
    #[serde(default)]
    pub shards: Vec<String>,
}

impl GateParams {
    /// `(query parameter, value)` pairs, as `/gate` takes them. Every field
    /// is named here (no `..`): a parameter added to the struct does not
    /// compile until it is written out too.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        let GateParams {
            max_lag,
            max_lag_bytes,
            hold,
            max_data_age,
            systems,
            kinds,
            source_regions,
            replica_regions,
            links,
            groups,
            shards,
        } = self;
        let mut pairs = Vec::new();
        let scalars =
            [("max_lag", max_lag), ("max_lag_bytes", max_lag_bytes), ("for", hold), ("max_data_age", max_data_age)];
        for (key, value) in scalars {
            if let Some(value) = value {
                pairs.push((key, value.as_str()));
            }
        }
        let lists = [
            ("system", systems),
            ("kind", kinds),
            ("source_region", source_regions),
            ("replica_region", replica_regions),
            ("link", links),
            ("group", groups),
            ("shard", shards),
        ];
        for (key, values) in lists {
            pairs.extend(values.iter().map(|v| (key, v.as_str())));
        }
        pairs
    }

    /// The query string `replag gate` sends to `/gate` (empty without parameters).
    pub fn query(&self) -> String {
        form_urlencoded::Serializer::new(String::new()).extend_pairs(self.pairs()).finish()
    }

    /// The config key (under `[gates.NAME]`) of a query parameter.
    pub fn config_key(param: &str) -> String {
        match param {
            "system" | "kind" | "source_region" | "replica_region" | "link" | "group" | "shard" => format!("{param}s"),
            other => other.to_string(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pairs().is_empty()
    }

    pub fn spec(&self, name: Option<String>, default_data_age: Duration) -> Result<GateSpec, GateError> {
        GateSpec::from_pairs(name, self.pairs(), default_data_age)
    }
}

#[cfg(test)]
mod params_tests {
    use super::*;
    use clap::CommandFactory;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        params: GateParams,
    }

    /// The option help names every system and link kind there is.
    #[test]
    fn help_lists_every_system_and_kind() {
        let mut command = Cli::command();
        let help = command.render_help().to_string();
        for system in System::ALL {
            assert!(help.contains(system.as_str()), "--system help misses {}: {help}", system.as_str());
        }
        for kind in LinkKind::ALL {
            assert!(help.contains(kind.as_str()), "--kind help misses {}: {help}", kind.as_str());
        }
    }

    #[test]
    fn params_are_the_query_parameters() {
        let params = GateParams {
            max_lag: Some("1s".into()),
            hold: Some("5s".into()),
            systems: vec!["postgres,redis".into()],
            links: vec!["a->b".into()],
            ..Default::default()
        };
        let spec = params.spec(None, Duration::from_secs(10)).unwrap();
        assert_eq!(
            spec,
            GateSpec::from_query("max_lag=1s&for=5s&system=postgres,redis&link=a-%3Eb", Duration::from_secs(10))
                .unwrap()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGE: Duration = Duration::from_secs(10);

    fn spec(query: &str) -> GateSpec {
        GateSpec::from_query(query, AGE).unwrap()
    }

    #[test]
    fn group_and_shard_scopes_match_only_links_that_have_them() {
        let s = spec("max_lag=1s&group=orders&shard=0-5460,16000");
        assert_eq!(s.scope.shards, ["0-5460,16000"], "a shard's name keeps its commas");
        let id = LinkId::new(System::Redis, LinkKind::Replica, ("a".into(), "r".into()), ("b".into(), "r".into()));
        assert!(s.scope.matches(&id, Some("orders"), Some("0-5460,16000")));
        assert!(!s.scope.matches(&id, Some("orders"), Some("5461-10922")));
        assert!(!s.scope.matches(&id, Some("cache"), Some("0-5460,16000")));
        assert!(!s.scope.matches(&id, None, None), "no group: not in a group scope");
        assert!(Scope::default().matches(&id, None, None));
        assert!(GateSpec::from_query("shard=", Duration::from_secs(10)).is_err());
    }

    #[test]
    fn parses_queries() {
        let s =
            spec("max_lag=500ms&max_lag_bytes=1MiB&for=60s&system=postgres,redis&replica_region=eu-west&link=a-%3Eb");
        assert_eq!(s.max_lag, Some(Duration::from_millis(500)));
        assert_eq!(s.max_lag_bytes, Some(1 << 20));
        assert_eq!(s.hold, Duration::from_secs(60));
        assert_eq!(s.scope.systems, ["postgres", "redis"]);
        assert_eq!(s.scope.links, ["a->b"]);
        assert_eq!(s.max_data_age, AGE);
    }

    proptest::proptest! {
        /// Arbitrary query strings (what any HTTP client can send) are a spec
        /// or an error naming a parameter: never a panic.
        #[test]
        fn any_query_string_is_a_spec_or_an_error(query in "(?s).{0,200}",
            key in "(max_lag|max_lag_bytes|for|max_data_age|system|kind|link|[a-z_]{1,12})",
            value in "(?s).{0,40}") {
            let _ = GateSpec::from_query(&query, AGE);
            let pair: String = form_urlencoded::Serializer::new(String::new()).append_pair(&key, &value).finish();
            match GateSpec::from_query(&pair, AGE) {
                Ok(spec) => proptest::prop_assert!(spec.hold <= RETENTION),
                Err(e) => proptest::prop_assert!(!e.param.is_empty() && !e.message.is_empty()),
            }
        }
    }

    #[test]
    fn the_argo_example_query_is_valid() {
        let template = include_str!("../../deploy/ci/argo-analysistemplate.yaml");
        let url = template.lines().find_map(|l| l.trim().strip_prefix("url: ")).unwrap().trim_matches('"');
        let query =
            url.split_once('?').unwrap().1.replace("{{args.region}}", "eu-west").replace("&always_200=true", "");
        let s = spec(&query);
        assert_eq!((s.max_lag, s.hold), (Some(Duration::from_millis(500)), Duration::from_secs(60)));
        assert_eq!(s.scope.replica_regions, ["eu-west"]);
    }

    #[test]
    fn bad_parameters_name_themselves() {
        for (query, param) in [
            ("max_lag=banana", "max_lag"),
            ("max_lag=-5s", "max_lag"),
            ("max_lag=99999999999999999999s", "max_lag"),
            ("max_lag=1000d", "max_lag"),
            ("for=2h", "for"),
            ("max_lag_bytes=lots", "max_lag_bytes"),
            ("max_lag_bytes=-1", "max_lag_bytes"),
            ("max_lag_bytes=99999999PiB", "max_lag_bytes"),
            ("max_lag_bytes=2000000000000000000", "max_lag_bytes"),
            ("system=mysql", "system"),
            ("kind=", "kind"),
            ("max_data_age=0s", "max_data_age"),
            ("max_lag=1s&max_lag=2s", "max_lag"),
            ("colour=blue", "colour"),
        ] {
            let err = GateSpec::from_query(query, AGE).unwrap_err();
            assert_eq!(err.param, param, "{query}: {err}");
        }
    }
}
