//! The Prometheus-backed gate: the same question as `/gate`, answered from
//! what Prometheus has scraped of every replag (all shards, all regions)
//! instead of one replag's memory.
//!
//! Same semantics, on Prometheus' samples: a link fails when its lag has been
//! over a limit for `for` (judged from the raw samples, so the resolution is
//! the scrape interval), when it is down or either node is down, when its
//! lag is only a lower bound, when its newest sample is older than
//! `max_data_age`, when any replag instance Prometheus scraped in the last
//! hour is now down (its links are unknown), and when nothing is in scope.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::evaluate::{apply_limits, conclude, Breach, CannotEvaluate, LimitCheck, LinkVerdict, Subject, Verdict};
use super::spec::GateSpec;
use crate::model::{LinkId, LinkKind, System};

/// Default `max_data_age` here: samples are a scrape interval apart (often
/// 15-30 s), not a poll interval.
pub const DEFAULT_MAX_DATA_AGE: Duration = Duration::from_secs(60);

/// Series a link verdict reads, by metric name.
const LINK_METRICS: &[&str] = &[
    "replag_lag_seconds",
    "replag_lag_bytes",
    "replag_link_up",
    "replag_lag_lower_bound",
    "replag_lag_resolution_seconds",
    "replag_link_data_age_seconds",
    // A link's group and shard, for a gate scoped by them.
    "replag_link_group_info",
];
const LINK_LABEL_NAMES: [&str; 6] = LinkId::LABELS;

/// Where to ask.
#[derive(Debug, Clone)]
pub struct PrometheusSource {
    /// Base URL of the Prometheus HTTP API (may carry basic-auth credentials).
    pub url: String,
    /// Extra label matchers for every replag series, e.g. `job="replag"`.
    pub selector: Option<String>,
}

/// One series from the API: its labels and `(unix time, value)` samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub samples: Vec<(f64, f64)>,
}

impl Series {
    fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }

    fn last(&self) -> Option<(f64, f64)> {
        self.samples.last().copied()
    }
}

/// What the gate reads from Prometheus, already fetched.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// Raw samples over the window of the `LINK_METRICS` series in scope.
    pub link_series: Vec<Series>,
    /// `replag_node_up`, newest sample per node.
    pub node_up: Vec<Series>,
    /// `up` of every target that exposed `replag_build_info` in the last hour.
    pub instances: Vec<Series>,
}

// ---- the Prometheus HTTP API -------------------------------------------------

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    data: Option<ApiData>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<ApiSeries>,
}

#[derive(Deserialize)]
struct ApiSeries {
    metric: BTreeMap<String, String>,
    value: Option<(f64, String)>,
    values: Option<Vec<(f64, String)>>,
}

/// Decode an instant-query answer (vector or matrix) into series.
pub fn decode(body: &[u8]) -> Result<Vec<Series>, String> {
    let response: ApiResponse =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not a Prometheus API response: {e}"))?;
    if response.status != "success" {
        return Err(response.error.unwrap_or_else(|| format!("status {:?}", response.status)));
    }
    let data = response.data.ok_or("the answer has no data")?;
    if data.result_type != "vector" && data.result_type != "matrix" {
        return Err(format!("expected a vector or matrix, got {:?}", data.result_type));
    }
    Ok(data
        .result
        .into_iter()
        .map(|s| {
            let samples = s
                .values
                .unwrap_or_default()
                .into_iter()
                .chain(s.value)
                .filter_map(|(t, v)| v.parse::<f64>().ok().filter(|v| !v.is_nan()).map(|v| (t, v)))
                .collect();
            Series { labels: s.metric, samples }
        })
        .collect())
}

/// `a|b` for a label matcher, if every value is plain (a regex superset is
/// fine: the scope is applied exactly afterwards); None means "no filter".
fn alternatives(values: &[String]) -> Option<String> {
    let plain = |v: &String| !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    (!values.is_empty() && values.iter().all(plain)).then(|| values.join("|"))
}

/// The user's selector, if any, as a list of matchers.
fn selector_matchers(selector: Option<&str>) -> Vec<String> {
    selector.map(str::trim).filter(|s| !s.is_empty()).map(String::from).into_iter().collect()
}

/// The label matchers for the gate's scope, plus the user's selector.
pub fn scope_matchers(spec: &GateSpec, selector: Option<&str>) -> Vec<String> {
    let scope = &spec.scope;
    let mut matchers = selector_matchers(selector);
    let lists = [
        ("system", &scope.systems),
        ("kind", &scope.kinds),
        ("source_region", &scope.source_regions),
        ("replica_region", &scope.replica_regions),
    ];
    for (label, values) in lists {
        if let Some(alt) = alternatives(values) {
            matchers.push(format!("{label}=~\"{alt}\""));
        }
    }
    matchers
}

/// The window of raw samples a verdict needs: `for`, plus room for the
/// newest sample to be `max_data_age` old, plus one sample before the breach.
pub fn window(spec: &GateSpec) -> Duration {
    spec.hold + spec.max_data_age + Duration::from_secs(60)
}

/// The three PromQL queries the gate asks.
pub fn queries(spec: &GateSpec, selector: Option<&str>) -> [String; 3] {
    let mut link = scope_matchers(spec, selector);
    link.insert(0, format!("__name__=~\"{}\"", LINK_METRICS.join("|")));
    let plain = selector_matchers(selector).join(",");
    let window_seconds = window(spec).as_secs();
    [
        format!("{{{}}}[{window_seconds}s]", link.join(",")),
        format!("last_over_time(replag_node_up{{{plain}}}[{window_seconds}s])"),
        format!("up * on (job, instance) max by (job, instance) (last_over_time(replag_build_info{{{plain}}}[1h]))"),
    ]
}

/// `scheme://host:port/path` without credentials, for messages.
pub fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((authority, path)) => format!("{scheme}://{}/{path}", authority.rsplit('@').next().unwrap_or("")),
            None => format!("{scheme}://{}", rest.rsplit('@').next().unwrap_or("")),
        },
        None => url.rsplit('@').next().unwrap_or("").to_string(),
    }
}

impl PrometheusSource {
    async fn query(&self, client: &reqwest::Client, promql: &str, at: f64) -> Result<Vec<Series>, CannotEvaluate> {
        let endpoint = format!("{}/api/v1/query", self.url.trim_end_matches('/'));
        let shown = redacted(&endpoint);
        let response = client
            .post(&endpoint)
            .form(&[("query", promql), ("time", &format!("{at:.3}"))])
            .send()
            .await
            // The error's URL could carry the credentials: leave it out.
            .map_err(|e| {
                let why = crate::model::error_chain(&e.without_url());
                CannotEvaluate::Unreachable(format!("cannot reach {shown}: {why}"))
            })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| CannotEvaluate::Refused(format!("{shown}: cannot read the answer: {e}")))?;
        decode(&body).map_err(|e| CannotEvaluate::Refused(format!("{shown} answered {status} to {promql}: {e}")))
    }

    /// Fetch what a verdict needs: three queries, asked together.
    pub async fn fetch(&self, client: &reqwest::Client, spec: &GateSpec, at: f64) -> Result<Fetched, CannotEvaluate> {
        let [links, nodes, instances] = queries(spec, self.selector.as_deref());
        let (links, nodes, instances) = tokio::join!(
            self.query(client, &links, at),
            self.query(client, &nodes, at),
            self.query(client, &instances, at)
        );
        Ok(Fetched { link_series: links?, node_up: nodes?, instances: instances? })
    }

    /// Ask Prometheus and judge.
    pub async fn evaluate(&self, client: &reqwest::Client, spec: &GateSpec) -> Result<Verdict, CannotEvaluate> {
        let wall = SystemTime::now();
        let now = crate::model::to_unix(wall);
        let fetched = self.fetch(client, spec, now).await?;
        let mut verdict = evaluate(spec, &fetched, now, wall);
        verdict.evaluated_from = Some(format!("prometheus {}", redacted(&self.url)));
        Ok(verdict)
    }
}

// ---- judging -------------------------------------------------------------------

/// One link's series, gathered by its labels (and the replag that exports it).
#[derive(Default)]
struct LinkSeries<'a> {
    lag_seconds: Option<&'a Series>,
    lag_bytes: Option<&'a Series>,
    up: Option<&'a Series>,
    lower_bound: Option<&'a Series>,
    resolution: Option<&'a Series>,
    data_age: Option<&'a Series>,
    /// `replag_link_group_info`: the link's group and shard labels.
    group: Option<&'a Series>,
}

/// When the current breach of `limit` began, from samples oldest first
/// (called only when the newest is over the limit).
fn breach(samples: &[(f64, f64)], limit: f64, now: f64) -> Breach {
    let (start, before_history) = match samples.iter().rposition(|(_, v)| *v <= limit) {
        Some(i) => (samples.get(i + 1).map_or(now, |s| s.0), false),
        None => (samples.first().map_or(now, |s| s.0), true),
    };
    let seconds = (now - start).max(0.0);
    let since = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(start.max(0.0));
    Breach { since, seconds, before_history }
}

fn judge(
    spec: &GateSpec,
    link: &LinkId,
    series: &LinkSeries<'_>,
    down_nodes: &BTreeSet<&str>,
    now: f64,
) -> LinkVerdict {
    let last = |s: Option<&Series>| s.and_then(Series::last);
    let lag = last(series.lag_seconds);
    let up = last(series.up).is_some_and(|(_, v)| v == 1.0);
    let newest = [series.lag_seconds, series.up]
        .into_iter()
        .flatten()
        .filter_map(Series::last)
        .map(|(t, _)| t)
        .fold(f64::MIN, f64::max);
    let sample_age = (now - newest).max(0.0);
    let mut v = LinkVerdict {
        up,
        state: if up { "up" } else { "down" }.into(),
        lag_seconds: lag.map(|(_, v)| v),
        lag_bytes: last(series.lag_bytes).map(|(_, v)| v.max(0.0) as u64),
        lag_is_lower_bound: last(series.lower_bound).is_some_and(|(_, v)| v == 1.0),
        lag_resolution_seconds: last(series.resolution).map(|(_, v)| v),
        data_age_seconds: Some(last(series.data_age).map_or(0.0, |(_, a)| a) + sample_age),
        ..LinkVerdict::failing(Subject::Link(link.clone()))
    };
    let age = v.data_age_seconds.unwrap_or_default();
    if age > spec.max_data_age.as_secs_f64() {
        v.reason = Some(format!(
            "newest sample in Prometheus is {age:.1} s old, more than max_data_age {} (is its replag scraped?)",
            humantime::format_duration(spec.max_data_age)
        ));
        return v;
    }
    if !up {
        v.reason = Some("link down (replag_link_up is 0)".into());
        return v;
    }
    if let Some(node) = [link.source.as_str(), link.replica.as_str()].into_iter().find(|n| down_nodes.contains(n)) {
        v.reason = Some(format!("node {node} is down (replag_node_up is 0)"));
        return v;
    }
    let Some((_, lag)) = lag else {
        v.reason = Some("no lag data in Prometheus".into());
        return v;
    };
    if spec.max_lag.is_some() && v.lag_is_lower_bound {
        v.reason = Some(format!(
            "lag is only known to be at least {lag:.3} s (replag_lag_lower_bound is 1), so it cannot be shown within max_lag"
        ));
        return v;
    }
    let limits = [
        spec.max_lag.map(|m| ("max_lag", series.lag_seconds, m.as_secs_f64(), "s")),
        spec.max_lag_bytes.map(|m| ("max_lag_bytes", series.lag_bytes, m as f64, " bytes")),
    ];
    let checks = limits.into_iter().flatten().filter_map(|(param, series, limit, unit)| {
        let samples = &series?.samples;
        Some(LimitCheck {
            param,
            current: samples.last()?.1,
            limit,
            unit,
            breach: Box::new(move || breach(samples, limit, now)),
        })
    });
    apply_limits(&mut v, spec.hold, "the samples Prometheus has", checks);
    v
}

/// Judge every link in scope from fetched series, as of `now` (unix seconds).
pub fn evaluate(spec: &GateSpec, fetched: &Fetched, now: f64, wall: SystemTime) -> Verdict {
    // Gather each link's series; the same link from two replags stays two.
    let mut links: BTreeMap<Vec<&str>, LinkSeries<'_>> = BTreeMap::new();
    for s in &fetched.link_series {
        let mut key: Vec<&str> = LINK_LABEL_NAMES.iter().map(|l| s.label(l)).collect();
        key.extend([s.label("job"), s.label("instance")]);
        let entry = links.entry(key).or_default();
        let slot = match s.label("__name__") {
            "replag_lag_seconds" => &mut entry.lag_seconds,
            "replag_lag_bytes" => &mut entry.lag_bytes,
            "replag_link_up" => &mut entry.up,
            "replag_lag_lower_bound" => &mut entry.lower_bound,
            "replag_lag_resolution_seconds" => &mut entry.resolution,
            "replag_link_data_age_seconds" => &mut entry.data_age,
            "replag_link_group_info" => &mut entry.group,
            _ => continue,
        };
        *slot = Some(s);
    }
    let down_nodes: BTreeSet<&str> =
        fetched.node_up.iter().filter(|s| matches!(s.last(), Some((_, 0.0)))).map(|s| s.label("node")).collect();
    let mut verdicts: Vec<LinkVerdict> = links
        .iter()
        .filter_map(|(key, series)| {
            // Series of a system or kind this replag does not know (another
            // version's) are not links it can judge.
            let link = LinkId::new(
                System::from_name(key[0])?,
                LinkKind::from_name(key[1])?,
                (key[2].to_string(), key[3].to_string()),
                (key[4].to_string(), key[5].to_string()),
            );
            let label = |name| series.group.map(|g| g.label(name)).filter(|v| !v.is_empty());
            spec.scope
                .matches(&link, label("group"), label("shard"))
                .then(|| judge(spec, &link, series, &down_nodes, now))
        })
        .collect();
    // A replag that Prometheus can no longer scrape: its links are unknown.
    let down_instances: Vec<String> = fetched
        .instances
        .iter()
        .filter(|s| s.last().is_some_and(|(_, v)| v != 1.0))
        .map(|s| format!("{} (job {})", s.label("instance"), s.label("job")))
        .collect();
    let data_age = verdicts.iter().filter_map(|l| l.data_age_seconds).fold(0.0, f64::max);
    let no_links = if fetched.instances.is_empty() {
        "Prometheus has no replag targets (no replag_build_info in the last hour)"
    } else {
        "the scope matches no link in Prometheus"
    };
    if !down_instances.is_empty() && !verdicts.is_empty() {
        // Fail closed, visibly: one pseudo-link names the missing replags.
        let replicas = down_instances.join(", ");
        let reason = format!("replag instance(s) down in Prometheus (up is 0): {replicas}; their links are unknown");
        let instances = Subject::Other {
            system: "replag".into(),
            kind: "instance".into(),
            source: "prometheus".into(),
            source_region: "-".into(),
            replica: replicas,
            replica_region: "-".into(),
        };
        let mut missing = LinkVerdict { state: "down".into(), ..LinkVerdict::failing(instances) };
        missing.reason = Some(reason);
        verdicts.push(missing);
    }
    conclude(spec, verdicts, no_links, data_age, wall)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_800_000_000.0;

    fn spec(query: &str) -> GateSpec {
        GateSpec::from_query(query, DEFAULT_MAX_DATA_AGE).unwrap()
    }

    fn link_series(name: &str, replica: &str, samples: Vec<(f64, f64)>) -> Series {
        let mut labels: BTreeMap<String, String> = [
            ("__name__", name),
            ("system", "postgres"),
            ("kind", "physical"),
            ("source", "pg-us"),
            ("source_region", "us-east"),
            ("replica", replica),
            ("replica_region", "eu-west"),
            ("job", "replag"),
            ("instance", "shard-0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        labels.insert("__name__".into(), name.into());
        Series { labels, samples }
    }

    /// A healthy-looking link whose lag follows `lag` (one sample every 15 s
    /// ending now).
    fn fetched(lag: &[f64]) -> Fetched {
        let times = |n: usize| (0..n).map(move |i| NOW - 15.0 * (n - 1 - i) as f64);
        let lag_samples: Vec<(f64, f64)> = times(lag.len()).zip(lag.iter().copied()).collect();
        let ones: Vec<(f64, f64)> = times(lag.len()).map(|t| (t, 1.0)).collect();
        let zeros: Vec<(f64, f64)> = times(lag.len()).map(|t| (t, 0.0)).collect();
        Fetched {
            link_series: vec![
                link_series("replag_lag_seconds", "pg-eu", lag_samples),
                link_series("replag_link_up", "pg-eu", ones.clone()),
                link_series("replag_lag_lower_bound", "pg-eu", zeros.clone()),
                link_series("replag_link_data_age_seconds", "pg-eu", zeros),
            ],
            node_up: vec![],
            instances: vec![Series {
                labels: [("job".to_string(), "replag".to_string()), ("instance".into(), "shard-0".into())].into(),
                samples: vec![(NOW, 1.0)],
            }],
        }
    }

    #[test]
    fn decodes_vectors_matrices_and_errors() {
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"replag_lag_seconds","replica":"b"},"values":[[1.5,"0.25"],[16.5,"NaN"],[31.5,"2"]]}]}}"#;
        let s = decode(matrix).unwrap();
        assert_eq!(s[0].samples, vec![(1.5, 0.25), (31.5, 2.0)], "NaN (a stale marker) is dropped");
        assert_eq!(s[0].label("replica"), "b");
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[7,"1"]}]}}"#;
        assert_eq!(decode(vector).unwrap()[0].samples, vec![(7.0, 1.0)]);
        let error = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#;
        assert!(decode(error).unwrap_err().contains("parse error"));
        assert!(decode(b"<html>").is_err());
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[]}}"#;
        assert!(decode(scalar).is_err());
    }

    #[test]
    fn queries_carry_the_scope_and_selector() {
        let s = spec("max_lag=1s&for=2m&system=postgres&source_region=us-east&link=a->b&replica_region=we\"ird");
        let [links, nodes, instances] = queries(&s, Some("job=\"replag\""));
        assert!(links.starts_with("{__name__=~\"replag_lag_seconds|"), "{links}");
        assert!(links.contains("job=\"replag\"") && links.contains("system=~\"postgres\""), "{links}");
        assert!(links.contains("source_region=~\"us-east\""), "{links}");
        assert!(!links.contains("replica_region"), "a value that is not plain is filtered after the query: {links}");
        assert!(links.ends_with("[240s]"), "for + max_data_age + 60 s: {links}");
        assert!(nodes.contains("replag_node_up{job=\"replag\"}") && !nodes.contains("system"), "{nodes}");
        assert!(instances.contains("replag_build_info{job=\"replag\"}[1h]"), "{instances}");
    }

    #[test]
    fn a_breach_must_last_for_and_a_young_series_fails_closed() {
        // Over 1 s for the last 3 samples (30 s), within it before.
        let f = fetched(&[0.1, 0.2, 0.1, 3.0, 4.0, 5.0]);
        let short = evaluate(&spec("max_lag=1s&for=45s"), &f, NOW, SystemTime::now());
        assert!(short.pass, "{short:?}");
        assert!(short.links[0].reason.as_deref().unwrap().contains("less than for"));
        let long = evaluate(&spec("max_lag=1s&for=30s"), &f, NOW, SystemTime::now());
        assert!(!long.pass);
        assert_eq!(long.links[0].breach_seconds, Some(30.0));
        // Over the limit for all the samples there are, fewer than for.
        let young = evaluate(&spec("max_lag=1s&for=5m"), &fetched(&[2.0, 3.0]), NOW, SystemTime::now());
        assert!(!young.pass && young.links[0].reason.as_deref().unwrap().contains("cannot show"), "{young:?}");
        let fine = evaluate(&spec("max_lag=1s&for=0s"), &fetched(&[9.0, 0.5]), NOW, SystemTime::now());
        assert!(fine.pass, "{fine:?}");
    }

    #[test]
    fn fails_closed_on_down_links_nodes_instances_stale_data_and_empty_scopes() {
        let mut f = fetched(&[0.1, 0.1]);
        f.link_series[1].samples.last_mut().unwrap().1 = 0.0;
        let v = evaluate(&spec("max_lag=1s"), &f, NOW, SystemTime::now());
        assert!(!v.pass && v.links[0].reason.as_deref().unwrap().starts_with("link down"), "{v:?}");

        let mut f = fetched(&[0.1, 0.1]);
        f.node_up
            .push(Series { labels: [("node".to_string(), "pg-us".to_string())].into(), samples: vec![(NOW, 0.0)] });
        let v = evaluate(&spec("max_lag=1s"), &f, NOW, SystemTime::now());
        assert!(!v.pass && v.links[0].reason.as_deref().unwrap().contains("node pg-us is down"), "{v:?}");

        let mut f = fetched(&[0.1, 0.1]);
        f.instances[0].samples[0].1 = 0.0;
        let v = evaluate(&spec("max_lag=1s"), &f, NOW, SystemTime::now());
        assert!(!v.pass && v.summary == "1 of 2 links failing", "{v:?}");
        assert!(v.links[1].reason.as_deref().unwrap().contains("shard-0"), "{v:?}");

        let v = evaluate(&spec("max_lag=1s"), &fetched(&[0.1, 0.1]), NOW + 61.0, SystemTime::now());
        assert!(!v.pass && v.links[0].reason.as_deref().unwrap().contains("max_data_age"), "{v:?}");

        let mut f = fetched(&[0.1, 0.1]);
        f.link_series[2].samples.last_mut().unwrap().1 = 1.0;
        let v = evaluate(&spec("max_lag=1s"), &f, NOW, SystemTime::now());
        assert!(!v.pass && v.links[0].reason.as_deref().unwrap().contains("at least"), "{v:?}");

        let v = evaluate(&spec("max_lag=1s&system=redis"), &fetched(&[0.1]), NOW, SystemTime::now());
        assert!(!v.pass && v.summary.contains("matches no link"), "{v:?}");
        let v = evaluate(&spec("max_lag=1s"), &Fetched::default(), NOW, SystemTime::now());
        assert!(!v.pass && v.summary.contains("no replag targets"), "{v:?}");

        let v = evaluate(&spec("max_lag=1s&link=pg-us->pg-eu"), &fetched(&[0.1, 0.1]), NOW, SystemTime::now());
        assert!(v.pass && v.links.len() == 1, "{v:?}");
    }

    #[test]
    fn group_and_shard_scopes_read_replag_link_group_info() {
        let mut f = fetched(&[0.1, 0.1]);
        let mut info = link_series("replag_link_group_info", "pg-eu", vec![(NOW, 1.0)]);
        info.labels.insert("group".into(), "cache".into());
        info.labels.insert("shard".into(), "0-5460".into());
        f.link_series.push(info);
        let v = evaluate(&spec("max_lag=1s&group=cache&shard=0-5460"), &f, NOW, SystemTime::now());
        assert!(v.pass && v.links.len() == 1, "{v:?}");
        let v = evaluate(&spec("max_lag=1s&shard=5461-10922"), &f, NOW, SystemTime::now());
        assert!(!v.pass && v.summary.contains("matches no link"), "{v:?}");
        let v = evaluate(&spec("max_lag=1s&group=cache"), &fetched(&[0.1, 0.1]), NOW, SystemTime::now());
        assert!(!v.pass, "a link without group info is not in a group scope: {v:?}");
    }

    #[test]
    fn credentials_never_leave_the_url() {
        assert_eq!(redacted("https://u:secret@prom:9090/api/v1/query"), "https://prom:9090/api/v1/query");
        assert_eq!(redacted("http://prom:9090"), "http://prom:9090");
    }
}
