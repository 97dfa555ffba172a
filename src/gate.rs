//! Deploy gates: "is replication healthy enough to proceed?".
//!
//! A link fails a gate when its lag has been over a limit continuously for
//! longer than `for` (brief spikes pass; `for = 0` means "right now"). It
//! fails closed — down link, down node, no data, stale data, a scope that
//! matches nothing — each with its reason. Evaluation reads the snapshot and
//! the lag history the engine keeps; it never queries a database.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::config::quoted;
use crate::lag::breach::{BreachStart, RETENTION};
use crate::snapshot::{LinkView, NodeView, Snapshot};

const MAX_LAG_LIMIT: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_BYTES_LIMIT: u64 = 1 << 50;

/// A bad gate parameter: which, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{param}: {message}")]
pub struct GateError {
    pub param: String,
    pub message: String,
}

fn bad(param: &str, message: impl Into<String>) -> GateError {
    GateError { param: param.to_string(), message: message.into() }
}

/// Which links a gate considers; an empty list matches everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scope {
    pub systems: Vec<String>,
    pub kinds: Vec<String>,
    pub source_regions: Vec<String>,
    pub replica_regions: Vec<String>,
    /// `system/kind/source->replica`, `source->replica`, or a replica name.
    pub links: Vec<String>,
}

/// A link's identity: the labels its series carry on /metrics.
#[derive(Debug, Clone, Copy)]
pub struct LinkLabels<'a> {
    pub system: &'a str,
    pub kind: &'a str,
    pub source: &'a str,
    pub source_region: &'a str,
    pub replica: &'a str,
    pub replica_region: &'a str,
}

impl<'a> LinkLabels<'a> {
    pub fn of(link: &'a LinkView) -> Self {
        LinkLabels {
            system: link.system.as_str(),
            kind: link.kind.as_str(),
            source: &link.source,
            source_region: &link.source_region,
            replica: &link.replica,
            replica_region: &link.replica_region,
        }
    }
}

impl Scope {
    pub fn matches(&self, link: &LinkView) -> bool {
        self.matches_labels(&LinkLabels::of(link))
    }

    pub fn matches_labels(&self, link: &LinkLabels<'_>) -> bool {
        let any = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        let named = || {
            let pair = format!("{}->{}", link.source, link.replica);
            let id = format!("{}/{}/{pair}", link.system, link.kind);
            self.links.iter().any(|l| *l == id || *l == pair || l == link.replica)
        };
        any(&self.systems, link.system)
            && any(&self.kinds, link.kind)
            && any(&self.source_regions, link.source_region)
            && any(&self.replica_regions, link.replica_region)
            && (self.links.is_empty() || named())
    }
}

/// A gate: limits, how long a breach may last, and scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateSpec {
    pub name: Option<String>,
    #[serde(rename = "max_lag_seconds", serialize_with = "opt_seconds")]
    pub max_lag: Option<Duration>,
    pub max_lag_bytes: Option<u64>,
    #[serde(rename = "for_seconds", serialize_with = "seconds")]
    pub hold: Duration,
    #[serde(rename = "max_data_age_seconds", serialize_with = "seconds")]
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

const SYSTEMS: &[&str] = &["postgres", "redis", "seaweedfs"];
const KINDS: &[&str] = &["physical", "logical", "replica", "volume"];

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
            let repeatable = matches!(key, "system" | "kind" | "source_region" | "replica_region" | "link");
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
                "system" => spec.scope.systems.extend(listed(key, value, Some(SYSTEMS))?),
                "kind" => spec.scope.kinds.extend(listed(key, value, Some(KINDS))?),
                "source_region" => spec.scope.source_regions.extend(listed(key, value, None)?),
                "replica_region" => spec.scope.replica_regions.extend(listed(key, value, None)?),
                "link" => spec.scope.links.extend(listed(key, value, None)?),
                other => {
                    return Err(bad(
                        other,
                        "unknown parameter; use max_lag, max_lag_bytes, for, max_data_age, system, kind, source_region, replica_region, link",
                    ))
                }
            }
        }
        Ok(spec)
    }

    /// Parse a `/gate` query string.
    pub fn from_query(query: &str, default_data_age: Duration) -> Result<GateSpec, GateError> {
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        GateSpec::from_pairs(None, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), default_data_age)
    }
}

/// One link's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct LinkVerdict {
    pub system: String,
    pub kind: String,
    pub source: String,
    pub source_region: String,
    pub replica: String,
    pub replica_region: String,
    pub up: bool,
    pub state: String,
    pub lag_seconds: Option<f64>,
    pub lag_bytes: Option<u64>,
    pub lag_is_lower_bound: bool,
    pub data_age_seconds: Option<f64>,
    /// When the current breach of a limit began (RFC 3339), if over a limit.
    pub breach_since: Option<String>,
    pub breach_seconds: Option<f64>,
    pub pass: bool,
    pub reason: Option<String>,
}

impl LinkVerdict {
    /// A failing verdict for the link, with nothing known yet beyond its labels.
    pub fn failing(labels: &LinkLabels<'_>) -> Self {
        LinkVerdict {
            system: labels.system.into(),
            kind: labels.kind.into(),
            source: labels.source.into(),
            source_region: labels.source_region.into(),
            replica: labels.replica.into(),
            replica_region: labels.replica_region.into(),
            up: false,
            state: String::new(),
            lag_seconds: None,
            lag_bytes: None,
            lag_is_lower_bound: false,
            data_age_seconds: None,
            breach_since: None,
            breach_seconds: None,
            pass: false,
            reason: None,
        }
    }
}

/// The answer to one gate question.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub gate: Option<String>,
    pub pass: bool,
    pub evaluated_at: String,
    /// Where the history came from when not this replag's memory (the
    /// Prometheus-backed gate names its Prometheus).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluated_from: Option<String>,
    pub limits: GateSpec,
    /// Age of the snapshot the verdict was computed from.
    pub data_age_seconds: f64,
    pub summary: String,
    pub links: Vec<LinkVerdict>,
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// How long `value` has been over `limit` per `track`, as of `now`.
/// Returns (breach start, seconds, whether the breach predates the history).
fn breach(history: &crate::lag::breach::BreachHistory, limit: f64, now: Instant) -> Option<(Instant, f64, bool)> {
    match history.above_since(limit)? {
        BreachStart::At(t) => Some((t, now.saturating_duration_since(t).as_secs_f64(), false)),
        BreachStart::BeforeHistory(t) => Some((t, now.saturating_duration_since(t).as_secs_f64(), true)),
    }
}

fn judge(
    spec: &GateSpec,
    down_nodes: &HashMap<&str, &NodeView>,
    link: &LinkView,
    snapshot_age: f64,
    now: Instant,
    wall: SystemTime,
) -> LinkVerdict {
    let mut v = LinkVerdict {
        up: link.up,
        state: link.state.clone(),
        lag_seconds: link.lag.map(|l| l.seconds),
        lag_bytes: link.lag.map(|l| l.bytes),
        lag_is_lower_bound: link.lag.is_some_and(|l| l.lower_bound),
        data_age_seconds: link.data_age_seconds.map(|a| a + snapshot_age),
        ..LinkVerdict::failing(&LinkLabels::of(link))
    };
    let down_node = down_nodes.get(link.source.as_str()).or_else(|| down_nodes.get(link.replica.as_str()));
    if !link.up {
        let since = link.down_seconds.map_or(String::new(), |d| format!(" for {d:.0} s"));
        v.reason = Some(format!("link down{since}: {}", link.reason.as_deref().unwrap_or(&link.state)));
        return v;
    }
    if let Some(node) = down_node {
        let why = node.failure.as_ref().map_or("not polled yet".to_string(), |f| f.to_string());
        v.reason = Some(format!("node {} is down ({why})", node.name));
        return v;
    }
    let Some(lag) = link.lag else {
        v.reason = Some("no lag data yet".into());
        return v;
    };
    if let Some(age) = v.data_age_seconds {
        if age > spec.max_data_age.as_secs_f64() {
            v.reason = Some(format!(
                "data is {age:.1} s old, more than max_data_age {}",
                humantime::format_duration(spec.max_data_age)
            ));
            return v;
        }
    }
    if spec.max_lag.is_some() && lag.lower_bound {
        // Behind everything replag knows of the source: neither the lag nor
        // the start of a breach can be known (e.g. replag started recently).
        v.reason = Some(format!(
            "lag is only known to be at least {:.3} s: the replica is behind all the history replag has of its source, so it cannot be shown within max_lag",
            lag.seconds
        ));
        return v;
    }
    let track = link.track.as_deref();
    let limits = [
        spec.max_lag.map(|m| ("max_lag", lag.seconds, m.as_secs_f64(), track.map(|t| &t.seconds), "s")),
        spec.max_lag_bytes.map(|m| ("max_lag_bytes", lag.bytes as f64, m as f64, track.map(|t| &t.bytes), " bytes")),
    ];
    let checks = limits.into_iter().flatten().map(|(param, current, limit, history, unit)| LimitCheck {
        param,
        current,
        limit,
        unit,
        breach: Box::new(move || {
            // Over the limit now: for how long?
            let (start, seconds, before_history) =
                history.and_then(|h| breach(h, limit, now)).unwrap_or((now, 0.0, false));
            let since = wall.checked_sub(now.saturating_duration_since(start)).unwrap_or(wall);
            Breach { since, seconds, before_history }
        }),
    });
    apply_limits(&mut v, spec.hold, "replag's history", checks);
    v
}

/// How long a link has been over a limit.
pub(crate) struct Breach {
    pub since: SystemTime,
    pub seconds: f64,
    /// Over the limit for all the history there is: it may have begun earlier.
    pub before_history: bool,
}

/// One limit to check; `breach` is asked only when `current` is over `limit`.
pub(crate) struct LimitCheck<'a> {
    pub param: &'static str,
    pub current: f64,
    pub limit: f64,
    pub unit: &'static str,
    pub breach: Box<dyn FnOnce() -> Breach + 'a>,
}

/// The last step of every link verdict, wherever the history comes from:
/// a link fails when a breach has lasted `hold`, or when its history is too
/// short to show it was ever within the limit; otherwise it passes.
pub(crate) fn apply_limits<'a>(
    v: &mut LinkVerdict,
    hold: Duration,
    history_name: &str,
    checks: impl IntoIterator<Item = LimitCheck<'a>>,
) {
    let hold = hold.as_secs_f64();
    let mut notes = Vec::new();
    for LimitCheck { param, current, limit, unit, breach } in checks {
        if current <= limit {
            continue;
        }
        let Breach { since, seconds, before_history } = breach();
        if v.breach_seconds.is_none_or(|b| seconds > b) {
            v.breach_since = Some(rfc3339(since));
            v.breach_seconds = Some(seconds);
        }
        let over = format!("{current:.3}{unit} over {param} {limit}{unit}");
        if seconds >= hold {
            v.reason = Some(format!("{over} for {seconds:.1} s (for = {hold} s)"));
            return;
        }
        if before_history {
            v.reason = Some(format!(
                "{over} for all {seconds:.1} s of {history_name}, less than for = {hold} s: cannot show it was ever within the limit"
            ));
            return;
        }
        notes.push(format!("{over} for {seconds:.1} s, less than for = {hold} s"));
    }
    v.pass = true;
    if !notes.is_empty() {
        v.reason = Some(notes.join("; "));
    }
}

/// Evaluate a gate against a snapshot.
pub fn evaluate(spec: &GateSpec, snap: &Snapshot, now: Instant, wall: SystemTime) -> Verdict {
    let snapshot_age = wall.duration_since(snap.generated_at).unwrap_or_default().as_secs_f64();
    // By name, once: a lookup per link, not a scan of every node.
    let down_nodes: HashMap<&str, &NodeView> =
        snap.nodes.iter().filter(|n| !n.up).map(|n| (n.name.as_str(), n)).collect();
    let links: Vec<LinkVerdict> = snap
        .links
        .iter()
        .filter(|l| spec.scope.matches(l))
        .map(|l| judge(spec, &down_nodes, l, snapshot_age, now, wall))
        .collect();
    let polled = snap.nodes.iter().any(|n| n.polls_total > 0);
    let no_links = if polled { "the scope matches no link" } else { "no data yet: no node has been polled" };
    conclude(spec, links, no_links, snapshot_age, wall)
}

/// The gate's answer from its links' verdicts: it fails if any link fails,
/// and fails closed when no link is in scope (`no_links` says why).
pub(crate) fn conclude(
    spec: &GateSpec,
    links: Vec<LinkVerdict>,
    no_links: &str,
    data_age_seconds: f64,
    wall: SystemTime,
) -> Verdict {
    let failing = links.iter().filter(|l| !l.pass).count();
    let (pass, summary) = if links.is_empty() {
        (false, no_links.to_string())
    } else if failing > 0 {
        (false, format!("{failing} of {} links failing", links.len()))
    } else {
        (true, format!("{} links within limits", links.len()))
    };
    Verdict {
        gate: spec.name.clone(),
        pass,
        evaluated_at: rfc3339(wall),
        evaluated_from: None,
        limits: spec.clone(),
        data_age_seconds,
        summary,
        links,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{LagView, LinkKind, LinkTrack};
    use crate::topology::System;
    use std::sync::Arc;

    const AGE: Duration = Duration::from_secs(10);

    fn spec(query: &str) -> GateSpec {
        GateSpec::from_query(query, AGE).unwrap()
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
        let template = include_str!("../deploy/ci/argo-analysistemplate.yaml");
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

    fn snapshot_with(lag_series: &[f64], up: bool, now: Instant) -> Snapshot {
        let mut snap = Snapshot::empty(SystemTime::now());
        let mut link =
            LinkView::new(System::Postgres, LinkKind::Physical, ("p".into(), "us".into()), ("s".into(), "eu".into()));
        let mut track = LinkTrack::default();
        let n = lag_series.len();
        for (i, v) in lag_series.iter().enumerate() {
            track.seconds.push(now - Duration::from_secs((n - 1 - i) as u64), *v);
            track.bytes.push(now - Duration::from_secs((n - 1 - i) as u64), v * 1000.0);
        }
        let last = *lag_series.last().unwrap();
        link.lag = Some(LagView { bytes: (last * 1000.0) as u64, seconds: last, lower_bound: false });
        link.up = up;
        link.state = if up { "streaming".into() } else { "down".into() };
        link.data_age_seconds = Some(0.1);
        link.track = Some(Arc::new(track));
        snap.links.push(link);
        snap
    }

    #[test]
    fn a_spike_shorter_than_for_passes_a_longer_one_fails() {
        let now = Instant::now();
        let wall = SystemTime::now();
        // Over 0.5 s for the last 3 samples (3 s incl. now).
        let snap = snapshot_with(&[0.0, 0.0, 0.0, 2.0, 3.0, 4.0], true, now);
        let long = evaluate(&spec("max_lag=500ms&for=60s"), &snap, now, wall);
        assert!(long.pass, "{long:?}");
        assert!(long.links[0].reason.as_deref().unwrap().contains("less than for"));
        let short = evaluate(&spec("max_lag=500ms&for=2s"), &snap, now, wall);
        assert!(!short.pass);
        assert_eq!(short.links[0].breach_seconds, Some(2.0));
        let right_now = evaluate(&spec("max_lag=500ms"), &snap, now, wall);
        assert!(!right_now.pass, "for = 0 means right now");
        assert!(evaluate(&spec("max_lag=10s&for=0s"), &snap, now, wall).pass);
        assert!(!evaluate(&spec("max_lag_bytes=1000"), &snap, now, wall).pass);
    }

    #[test]
    fn over_the_limit_for_all_of_a_short_history_fails_closed() {
        let now = Instant::now();
        let snap = snapshot_with(&[9.0, 9.0, 9.0], true, now);
        let v = evaluate(&spec("max_lag=1s&for=60s"), &snap, now, SystemTime::now());
        assert!(!v.pass);
        assert!(v.links[0].reason.as_deref().unwrap().contains("history"), "{v:?}");
    }

    #[test]
    fn a_lower_bound_cannot_pass_a_lag_limit() {
        let now = Instant::now();
        let mut snap = snapshot_with(&[0.0], true, now);
        snap.links[0].lag = Some(LagView { bytes: 5000, seconds: 0.002, lower_bound: true });
        let v = evaluate(&spec("max_lag=1s&for=60s"), &snap, now, SystemTime::now());
        assert!(!v.pass);
        assert!(v.links[0].reason.as_deref().unwrap().contains("at least"), "{v:?}");
        // Bytes are exact even then.
        assert!(evaluate(&spec("max_lag_bytes=1MiB"), &snap, now, SystemTime::now()).pass);
    }

    #[test]
    fn fails_closed_on_down_links_stale_data_and_empty_scopes() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let down = snapshot_with(&[0.0], false, now);
        let v = evaluate(&spec("max_lag=1s"), &down, now, wall);
        assert!(!v.pass && v.links[0].reason.as_deref().unwrap().starts_with("link down"));
        let mut stale = snapshot_with(&[0.0], true, now);
        stale.links[0].data_age_seconds = Some(60.0);
        assert!(!evaluate(&spec("max_lag=1s"), &stale, now, wall).pass);
        let fine = snapshot_with(&[0.0], true, now);
        assert!(evaluate(&spec("max_lag=1s"), &fine, now, wall).pass);
        let none = evaluate(&spec("max_lag=1s&system=redis"), &fine, now, wall);
        assert!(!none.pass);
        assert!(none.summary.contains("no data yet") || none.summary.contains("matches no link"));
    }
}
