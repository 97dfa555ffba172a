//! Gate semantics over replag's own snapshot: a link fails when its lag has
//! been over a limit continuously for longer than `for` (brief spikes
//! pass; `for = 0` means "right now"). It fails closed — down link, down
//! node, no data, stale data, a scope that matches nothing — each with its
//! reason. The last steps (`apply_limits`, `conclude`) are shared with the
//! Prometheus-backed gate.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::breach::{BreachHistory, BreachStart};
use super::memory::{LinkTrack, Tracks};
use super::spec::GateSpec;
use crate::model::{rfc3339, LinkId, NodeView};
use crate::snapshot::Snapshot;
use crate::systems::Link;

/// One link's verdict.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkVerdict {
    #[serde(flatten)]
    pub subject: Subject,
    pub up: bool,
    pub state: String,
    pub lag_seconds: Option<f64>,
    pub lag_bytes: Option<u64>,
    pub lag_is_lower_bound: bool,
    /// How finely the lag is known (`LagView::resolution_seconds`): a
    /// pipeline can ask for a margin where it is coarse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_resolution_seconds: Option<f64>,
    pub data_age_seconds: Option<f64>,
    /// When the current breach of a limit began (RFC 3339), if over a limit.
    pub breach_since: Option<String>,
    pub breach_seconds: Option<f64>,
    pub pass: bool,
    pub reason: Option<String>,
}

impl LinkVerdict {
    /// A failing verdict for the link, with nothing known yet beyond its labels.
    pub fn failing(subject: Subject) -> Self {
        LinkVerdict {
            subject,
            up: false,
            state: String::new(),
            lag_seconds: None,
            lag_bytes: None,
            lag_is_lower_bound: false,
            lag_resolution_seconds: None,
            data_age_seconds: None,
            breach_since: None,
            breach_seconds: None,
            pass: false,
            reason: None,
        }
    }
}

/// What a verdict is about: a link, or (Prometheus-backed gate) something
/// that stands for links it cannot see, such as replag instances that are
/// down. Serialized as the six link labels either way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Subject {
    Link(LinkId),
    Other {
        system: String,
        kind: String,
        source: String,
        source_region: String,
        replica: String,
        replica_region: String,
    },
}

impl Subject {
    /// The six labels, in `LinkId::LABELS` order.
    pub fn labels(&self) -> [&str; 6] {
        match self {
            Subject::Link(id) => id.label_values(),
            Subject::Other { system, kind, source, source_region, replica, replica_region } => {
                [system, kind, source, source_region, replica, replica_region]
            }
        }
    }
}

/// The answer to one gate question.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub gate: Option<String>,
    pub pass: bool,
    pub evaluated_at: String,
    /// Where the history came from when not this replag's memory (the
    /// Prometheus-backed gate names its Prometheus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_from: Option<String>,
    pub limits: GateSpec,
    /// Age of the snapshot the verdict was computed from.
    pub data_age_seconds: f64,
    pub summary: String,
    pub links: Vec<LinkVerdict>,
}

/// How long `value` has been over `limit` per `track`, as of `now`.
/// Returns (breach start, seconds, whether the breach predates the history).
fn breach(history: &BreachHistory, limit: f64, now: Instant) -> Option<(Instant, f64, bool)> {
    match history.above_since(limit)? {
        BreachStart::At(t) => Some((t, now.saturating_duration_since(t).as_secs_f64(), false)),
        BreachStart::BeforeHistory(t) => Some((t, now.saturating_duration_since(t).as_secs_f64(), true)),
    }
}

fn judge(
    spec: &GateSpec,
    down_nodes: &HashMap<&str, &NodeView>,
    link: &Link,
    track: Option<&LinkTrack>,
    snapshot_age: f64,
    now: Instant,
    wall: SystemTime,
) -> LinkVerdict {
    let mut v = LinkVerdict {
        up: link.up,
        state: link.state.clone(),
        lag_seconds: link.gate_lag().map(|l| l.seconds),
        lag_bytes: link.lag.map(|l| l.bytes),
        lag_is_lower_bound: link.gate_lag().is_some_and(|l| l.lower_bound),
        lag_resolution_seconds: link.lag.and_then(|l| l.resolution_seconds),
        data_age_seconds: link.data_age_seconds.map(|a| a + snapshot_age),
        ..LinkVerdict::failing(Subject::Link(link.id.clone()))
    };
    let down_node = down_nodes.get(link.id.source.as_str()).or_else(|| down_nodes.get(link.id.replica.as_str()));
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
    let Some(lag) = link.gate_lag() else {
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
pub struct Breach {
    pub since: SystemTime,
    pub seconds: f64,
    /// Over the limit for all the history there is: it may have begun earlier.
    pub before_history: bool,
}

/// One limit to check; `breach` is asked only when `current` is over `limit`.
pub struct LimitCheck<'a> {
    pub param: &'static str,
    pub current: f64,
    pub limit: f64,
    pub unit: &'static str,
    pub breach: Box<dyn FnOnce() -> Breach + 'a>,
}

/// The last step of every link verdict, wherever the history comes from:
/// a link fails when a breach has lasted `hold`, or when its history is too
/// short to show it was ever within the limit; otherwise it passes.
pub fn apply_limits<'a>(
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

/// Evaluate a gate against a snapshot and the gates' memory of its links.
pub fn evaluate(spec: &GateSpec, snap: &Snapshot, tracks: &Tracks, now: Instant, wall: SystemTime) -> Verdict {
    let snapshot_age = wall.duration_since(snap.generated_at).unwrap_or_default().as_secs_f64();
    // By name, once: a lookup per link, not a scan of every node.
    let down_nodes: HashMap<&str, &NodeView> =
        snap.nodes.iter().filter(|n| !n.up).map(|n| (n.name.as_str(), n)).collect();
    let links: Vec<LinkVerdict> = snap
        .links
        .iter()
        .enumerate()
        .filter(|(_, l)| spec.scope.matches(&l.id, l.group.as_deref(), l.shard.as_deref()))
        .map(|(i, l)| judge(spec, &down_nodes, l, tracks.of(i), snapshot_age, now, wall))
        .collect();
    let polled = snap.nodes.iter().any(|n| n.polls_total > 0);
    let no_links = if polled { "the scope matches no link" } else { "no data yet: no node has been polled" };
    conclude(spec, links, no_links, snapshot_age, wall)
}

/// The gate's answer from its links' verdicts: it fails if any link fails,
/// and fails closed when no link is in scope (`no_links` says why).
pub fn conclude(
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
        // Passing, but some are over a limit for less than `for`: say so, so
        // a PASS at 4 s of lag is not read as "no lag".
        let breaching = links.iter().filter(|l| l.breach_seconds.is_some()).count();
        let pending = match breaching {
            0 => String::new(),
            n => format!(" ({n} over a limit for less than for = {} s)", spec.hold.as_secs_f64()),
        };
        (true, format!("{} links within limits{pending}", links.len()))
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

/// Why a gate could not be evaluated (`replag gate` exits 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CannotEvaluate {
    /// Nothing answered: asking again (`--wait`) may help.
    #[error("{0}")]
    Unreachable(String),
    /// An answer that asking again will not change: a bad request, an
    /// unknown gate, a body that is not a verdict.
    #[error("{0}")]
    Refused(String),
}

#[cfg(test)]
mod tests {
    use super::super::memory::Memory;
    use super::super::spec::GateSpec;
    use super::*;
    use crate::model::{LagView, LinkKind, System};

    const AGE: Duration = Duration::from_secs(10);

    fn spec(query: &str) -> GateSpec {
        GateSpec::from_query(query, AGE).unwrap()
    }

    /// A snapshot with one link whose lag was `lag_series`, a second apart
    /// up to `now`, as the gates' memory saw it; and that memory.
    fn snapshot_with(lag_series: &[f64], up: bool, now: Instant) -> (Snapshot, Tracks) {
        let mut memory = Memory::default();
        let n = lag_series.len();
        let mut seen = None;
        for (i, v) in lag_series.iter().enumerate() {
            let mut snap = Snapshot::empty(SystemTime::now());
            snap.taken = now - Duration::from_secs((n - 1 - i) as u64);
            let mut link =
                Link::new(System::Postgres, LinkKind::Physical, ("p".into(), "us".into()), ("s".into(), "eu".into()));
            link.lag =
                Some(LagView { bytes: (v * 1000.0) as u64, seconds: *v, lower_bound: false, resolution_seconds: None });
            link.up = up;
            link.state = if up { "streaming".into() } else { "down".into() };
            link.data_age_seconds = Some(0.1);
            snap.links.push(link);
            let tracks = memory.observe(&snap);
            seen = Some((snap, tracks));
        }
        seen.unwrap()
    }

    #[test]
    fn a_spike_shorter_than_for_passes_a_longer_one_fails() {
        let now = Instant::now();
        let wall = SystemTime::now();
        // Over 0.5 s for the last 3 samples (3 s incl. now).
        let (snap, tracks) = snapshot_with(&[0.0, 0.0, 0.0, 2.0, 3.0, 4.0], true, now);
        let long = evaluate(&spec("max_lag=500ms&for=60s"), &snap, &tracks, now, wall);
        assert!(long.pass, "{long:?}");
        assert_eq!(long.summary, "1 links within limits (1 over a limit for less than for = 60 s)");
        assert!(long.links[0].reason.as_deref().unwrap().contains("less than for"));
        let short = evaluate(&spec("max_lag=500ms&for=2s"), &snap, &tracks, now, wall);
        assert!(!short.pass);
        assert_eq!(short.links[0].breach_seconds, Some(2.0));
        let right_now = evaluate(&spec("max_lag=500ms"), &snap, &tracks, now, wall);
        assert!(!right_now.pass, "for = 0 means right now");
        assert!(evaluate(&spec("max_lag=10s&for=0s"), &snap, &tracks, now, wall).pass);
        assert!(!evaluate(&spec("max_lag_bytes=1000"), &snap, &tracks, now, wall).pass);
    }

    #[test]
    fn over_the_limit_for_all_of_a_short_history_fails_closed() {
        let now = Instant::now();
        let (snap, tracks) = snapshot_with(&[9.0, 9.0, 9.0], true, now);
        let v = evaluate(&spec("max_lag=1s&for=60s"), &snap, &tracks, now, SystemTime::now());
        assert!(!v.pass);
        assert!(v.links[0].reason.as_deref().unwrap().contains("history"), "{v:?}");
    }

    #[test]
    fn a_lower_bound_cannot_pass_a_lag_limit() {
        let now = Instant::now();
        let (mut snap, tracks) = snapshot_with(&[0.0], true, now);
        snap.links[0].lag = Some(LagView { bytes: 5000, seconds: 0.002, lower_bound: true, resolution_seconds: None });
        let v = evaluate(&spec("max_lag=1s&for=60s"), &snap, &tracks, now, SystemTime::now());
        assert!(!v.pass);
        assert!(v.links[0].reason.as_deref().unwrap().contains("at least"), "{v:?}");
        // Bytes are exact even then.
        assert!(evaluate(&spec("max_lag_bytes=1MiB"), &snap, &tracks, now, SystemTime::now()).pass);
    }

    #[test]
    fn fails_closed_on_down_links_stale_data_and_empty_scopes() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let (down, down_tracks) = snapshot_with(&[0.0], false, now);
        let v = evaluate(&spec("max_lag=1s"), &down, &down_tracks, now, wall);
        assert!(!v.pass && v.links[0].reason.as_deref().unwrap().starts_with("link down"));
        let (mut stale, stale_tracks) = snapshot_with(&[0.0], true, now);
        stale.links[0].data_age_seconds = Some(60.0);
        assert!(!evaluate(&spec("max_lag=1s"), &stale, &stale_tracks, now, wall).pass);
        let (fine, tracks) = snapshot_with(&[0.0], true, now);
        assert!(evaluate(&spec("max_lag=1s"), &fine, &tracks, now, wall).pass);
        let none = evaluate(&spec("max_lag=1s&system=redis"), &fine, &tracks, now, wall);
        assert!(!none.pass);
        assert!(none.summary.contains("no data yet") || none.summary.contains("matches no link"));
    }
}
