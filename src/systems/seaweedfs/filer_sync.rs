//! `weed filer.sync`'s own figures: its `-metricsPort` page
//! (`SeaweedFS_filerSync_*`, one series per direction, labelled with the
//! source and target filer addresses) read into one observation per poll.
//! What replag makes of them — a `kind="filer_sync"` link per direction —
//! is `sync_links`.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::model::{FailureKind, PollFailure, Sampled};
use crate::systems::http::fetch;

/// Directions read from one process at most (one per `-a`/`-b` way and path).
const MAX_DIRECTIONS: usize = 64;

/// One direction as a filer.sync process reports it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncDirection {
    /// `host:port` of the filers, as given to filer.sync's `-a`/`-b`.
    pub source_filer: String,
    pub target_filer: String,
    pub events_received: u64,
    /// Applied on the target, or given up on (counted as failed).
    pub events_done: u64,
    pub events_failed: u64,
    pub bytes_received: u64,
    pub bytes_done: u64,
    /// The checkpoint: a source-filer timestamp in ns (only ever compared
    /// with itself).
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncObservation {
    pub version: String,
    pub directions: Vec<SyncDirection>,
}

/// A sample line's labels, unescaped.
type Labels<'a> = Vec<(&'a str, String)>;

/// One sample line of the Prometheus text format: name, labels, value.
/// `None` for comments, blank and unreadable lines.
pub fn parse_sample(line: &str) -> Option<(&str, Labels<'_>, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let (name, mut rest) = line.split_at(name_end);
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        rest = body;
        loop {
            rest = rest.trim_start_matches([' ', ',']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = rest.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.trim(), value));
            rest = &after[end + 1..];
        }
    }
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some((name, labels, value))
}

/// filer.sync's `/metrics`: every direction it reports.
pub fn decode(body: &[u8]) -> Result<SyncObservation, PollFailure> {
    let text = std::str::from_utf8(body)
        .map_err(|_| PollFailure::new(FailureKind::Protocol, "/metrics: not UTF-8 text".to_string()))?;
    let mut observation = SyncObservation::default();
    let mut found = false;
    let mut by_direction: BTreeMap<(String, String), SyncDirection> = BTreeMap::new();
    for (name, labels, value) in text.lines().filter_map(parse_sample) {
        let label = |key: &str| labels.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
        if name == "SeaweedFS_build_info" {
            observation.version = label("version").unwrap_or_default().to_string();
            found = true;
            continue;
        }
        let Some(metric) = name.strip_prefix("SeaweedFS_filerSync_") else { continue };
        let (Some(source), Some(target)) = (label("sourceFiler"), label("targetFiler")) else { continue };
        let key = (source.to_string(), target.to_string());
        if !by_direction.contains_key(&key) && by_direction.len() >= MAX_DIRECTIONS {
            continue;
        }
        let d = by_direction.entry(key).or_insert_with(|| SyncDirection {
            source_filer: source.to_string(),
            target_filer: target.to_string(),
            ..SyncDirection::default()
        });
        // Counters are sums over a direction's paths; a checkpoint is the
        // oldest of them. Negative or absurd values read as 0.
        let count = if value.is_finite() && value > 0.0 { value as u64 } else { 0 };
        let add = |total: &mut u64| *total = total.saturating_add(count);
        match metric {
            "events_received_total" => add(&mut d.events_received),
            "events_processed_total" => add(&mut d.events_done),
            "events_failed_total" => {
                add(&mut d.events_done);
                add(&mut d.events_failed);
            }
            "received_bytes_total" => add(&mut d.bytes_received),
            "processed_bytes_total" | "failed_bytes_total" => add(&mut d.bytes_done),
            "sync_offset" => d.offset = if d.offset == 0 { count } else { d.offset.min(count) },
            _ => {}
        }
    }
    if !found && by_direction.is_empty() {
        return Err(PollFailure::new(
            FailureKind::Protocol,
            "/metrics: no SeaweedFS series (is this filer.sync's -metricsPort?)".to_string(),
        ));
    }
    observation.directions = by_direction.into_values().collect();
    Ok(observation)
}

/// Poll a filer.sync process's `-metricsPort`.
pub async fn poll(client: &reqwest::Client, base: &str) -> Result<Sampled<SyncObservation>, PollFailure> {
    let started = Instant::now();
    let body = fetch(client.get(format!("{base}/metrics")), "/metrics")
        .await?
        .ok_or_else(|| PollFailure::new(FailureKind::Query, "/metrics: HTTP 404".to_string()))?;
    let at = started + started.elapsed() / 2;
    Ok(Sampled { at, observation: decode(&body)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As filer.sync 4.48 `-isActivePassive -metricsPort` serves it (trimmed).
    const METRICS: &str = r#"# HELP SeaweedFS_build_info A metric with a constant '1' value
SeaweedFS_build_info{commit="pypi",goarch="amd64",goos="linux",sizelimit="8000GB",version="4.48"} 1
SeaweedFS_filerSync_events_failed_total{clientName="syncFrom_127.0.0.1:18888_To_127.0.0.1:18988",path="/",sourceFiler="127.0.0.1:18888",targetFiler="127.0.0.1:18988"} 1
SeaweedFS_filerSync_events_processed_total{clientName="syncFrom_127.0.0.1:18888_To_127.0.0.1:18988",path="/",sourceFiler="127.0.0.1:18888",targetFiler="127.0.0.1:18988"} 4
SeaweedFS_filerSync_events_received_total{clientName="syncFrom_127.0.0.1:18888_To_127.0.0.1:18988",path="/",sourceFiler="127.0.0.1:18888",targetFiler="127.0.0.1:18988"} 7
SeaweedFS_filerSync_processed_bytes_total{clientName="syncFrom_127.0.0.1:18888_To_127.0.0.1:18988",path="/",sourceFiler="127.0.0.1:18888",targetFiler="127.0.0.1:18988"} 9
SeaweedFS_filerSync_received_bytes_total{clientName="syncFrom_127.0.0.1:18888_To_127.0.0.1:18988",path="/",sourceFiler="127.0.0.1:18888",targetFiler="127.0.0.1:18988"} 30
SeaweedFS_filerSync_sync_offset{clientName="syncFrom_127.0.0.1:18888_To_127.0.0.1:18988",path="/",sourceFiler="127.0.0.1:18888",targetFiler="127.0.0.1:18988"} 1.795924754093066e+18
SeaweedFS_filerSync_lag_seconds{clientName="syncFrom_127.0.0.1:18888_To_127.0.0.1:18988",path="/",sourceFiler="127.0.0.1:18888",targetFiler="127.0.0.1:18988"} 0.917304706
go_goroutines 42
"#;

    #[test]
    fn reads_a_direction_from_real_metrics() {
        let o = decode(METRICS.as_bytes()).unwrap();
        assert_eq!(o.version, "4.48");
        assert_eq!(o.directions.len(), 1);
        let d = &o.directions[0];
        assert_eq!((d.source_filer.as_str(), d.target_filer.as_str()), ("127.0.0.1:18888", "127.0.0.1:18988"));
        assert_eq!((d.events_received, d.events_done, d.events_failed), (7, 5, 1));
        assert_eq!((d.bytes_received, d.bytes_done), (30, 9));
        assert_eq!(d.offset, 1.795924754093066e18 as u64, "as exact as the f64 it is sent as");
    }

    #[test]
    fn label_values_unescape_and_junk_is_skipped() {
        let (name, labels, value) = parse_sample(r#"m{a="x\"y\\z",b="p\nq",} 2.5 1700000000"#).unwrap();
        assert_eq!((name, value), ("m", 2.5));
        assert_eq!(labels, vec![("a", "x\"y\\z".to_string()), ("b", "p\nq".to_string())]);
        for junk in ["", "# TYPE m counter", "m{a=\"open", "m{a=\"x\"} notanumber", "{}", "m"] {
            assert!(parse_sample(junk).is_none(), "{junk:?}");
        }
        assert_eq!(parse_sample("m 3").map(|(n, l, v)| (n, l.len(), v)), Some(("m", 0, 3.0)));
    }

    #[test]
    fn huge_counters_saturate() {
        let huge = METRICS.replace("} 1\n", "} 1e300\n").replace("} 4\n", "} 1e300\n");
        let d = &decode(huge.as_bytes()).unwrap().directions[0];
        assert_eq!((d.events_done, d.events_failed), (u64::MAX, u64::MAX));
    }

    #[test]
    fn a_page_that_is_not_filer_sync_is_a_protocol_error() {
        assert_eq!(decode(b"go_goroutines 3\n").unwrap_err().kind, FailureKind::Protocol);
        assert_eq!(decode(&[0xff, 0xfe]).unwrap_err().kind, FailureKind::Protocol);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in ".{0,300}", cut in 0usize..2000) {
            let _ = decode(text.as_bytes());
            let cut = cut.min(METRICS.len());
            let _ = decode(&METRICS.as_bytes()[..cut]);
        }
    }
}
