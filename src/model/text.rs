//! Small text and time helpers shared by every output.

use std::time::SystemTime;

/// Characters of user input an error message echoes at most.
pub const ECHO_LIMIT: usize = 64;

/// A value for an error message, quoted and at most [`ECHO_LIMIT`]
/// characters (then "…") — unless it looks like a URL or credentials (put
/// in the wrong key, say), which is never echoed.
pub fn quoted(value: &str) -> String {
    if value.contains("://") || value.contains('@') {
        "(a value that looks like a URL or credentials, not shown)".to_string()
    } else {
        match truncate(value, ECHO_LIMIT) {
            short if short.len() < value.len() => format!("{short:?}… ({} characters)", value.chars().count()),
            whole => format!("{whole:?}"),
        }
    }
}

/// At most `max` characters of `s` (for echoing user input back).
pub fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Rows as aligned columns, two spaces apart (a terminal table; the first
/// row is the header).
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Seconds since the Unix epoch (0 before it).
pub fn to_unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// RFC 3339 in UTC with milliseconds, as gates report times.
pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_input_is_bounded_and_never_a_url() {
        assert_eq!(quoted("banana"), "\"banana\"");
        let long = "x".repeat(10_000);
        let q = quoted(&long);
        assert!(q.len() < 100 && q.ends_with("… (10000 characters)"), "{q}");
        assert!(!quoted("postgresql://u:secret@h/db").contains("secret"));
    }
}
