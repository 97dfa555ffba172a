//! `/api/v1/events` and `/promote`: answered from the latest snapshot (its
//! role facts, links and events), never from a database.

use std::time::Instant;

use hyper::StatusCode;

use crate::failover::{verdict, PromoteError, PromoteQuery};
use crate::model::System;
use crate::snapshot::Snapshot;

/// A request that cannot be answered: its status, the parameter at fault, why.
pub type Refusal = (StatusCode, Option<&'static str>, String);

/// `{"events": [...]}`, newest first; `since` (Unix seconds, or a duration
/// back from now such as `24h`) keeps events at or after it, `kind` one kind.
pub fn events(snapshot: &Snapshot, query: &str, now_unix: f64) -> Result<Vec<u8>, Refusal> {
    let mut since = f64::NEG_INFINITY;
    let mut kind = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "since" => {
                since = parse_since(&value, now_unix)
                    .ok_or_else(|| bad("since", "is not Unix seconds or a duration such as 24h"))?
            }
            "kind" => {
                kind = Some(
                    crate::failover::EventKind::ALL
                        .into_iter()
                        .find(|k| k.as_str() == value)
                        .ok_or_else(|| bad("kind", "is not failover, switchover, split_brain or primary_lost"))?,
                )
            }
            other => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    None,
                    format!("unknown parameter {}", crate::model::quoted(other)),
                ))
            }
        }
    }
    let chosen: Vec<_> =
        snapshot.failover.events.iter().filter(|e| e.at >= since && kind.is_none_or(|k| e.kind == k)).collect();
    serde_json::to_vec(&serde_json::json!({ "events": chosen }))
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, None, format!("cannot encode events: {e}")))
}

/// Unix seconds, or a duration back from `now_unix`.
pub fn parse_since(value: &str, now_unix: f64) -> Option<f64> {
    if let Ok(unix) = value.parse::<f64>() {
        return unix.is_finite().then_some(unix);
    }
    humantime::parse_duration(value).ok().map(|d| now_unix - d.as_secs_f64())
}

fn bad(param: &'static str, why: &str) -> Refusal {
    (StatusCode::BAD_REQUEST, Some(param), format!("{param} {why}"))
}

/// `/promote?node=NAME` (or `group=`, `primary=`, and `system=`): 200 when the
/// candidate can be promoted without losing what replag saw, 503 when not.
pub fn promote(snapshot: &Snapshot, query: &str, now: Instant) -> Result<(StatusCode, Vec<u8>), Refusal> {
    let mut ask = PromoteQuery::default();
    let mut always_200 = false;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = value.into_owned();
        match key.as_ref() {
            "node" => ask.node = Some(value),
            "group" => ask.group = Some(value),
            "primary" => ask.primary = Some(value),
            "system" => {
                ask.system = Some(System::from_name(&value).ok_or_else(|| bad("system", "is not postgres or redis"))?)
            }
            "always_200" => always_200 = matches!(value.as_str(), "1" | "true"),
            other => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    None,
                    format!("unknown parameter {}", crate::model::quoted(other)),
                ))
            }
        }
    }
    let answer = verdict(&snapshot.roles, &snapshot.links, &ask, now).map_err(|e| match e {
        PromoteError::UnknownNode(_) => (StatusCode::NOT_FOUND, Some("node"), e.to_string()),
        PromoteError::UnknownGroup(_) => (StatusCode::NOT_FOUND, Some("group"), e.to_string()),
        PromoteError::Ambiguous(_) => (StatusCode::BAD_REQUEST, None, e.to_string()),
    })?;
    let status = if answer.pass || always_200 { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let json = serde_json::to_vec(&answer)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, None, format!("cannot encode verdict: {e}")))?;
    Ok((status, json))
}
