//! Small text and time helpers shared by every output.

use std::time::SystemTime;

/// A value for an error message, quoted — unless it looks like a URL or
/// credentials (put in the wrong key, say), which is never echoed.
pub fn quoted(value: &str) -> String {
    if value.contains("://") || value.contains('@') {
        "(a value that looks like a URL or credentials, not shown)".to_string()
    } else {
        format!("{value:?}")
    }
}

/// At most `max` characters of `s` (for echoing user input back).
pub fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Seconds since the Unix epoch (0 before it).
pub fn to_unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// RFC 3339 in UTC with milliseconds, as gates report times.
pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
