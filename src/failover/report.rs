//! The drill report: a markdown record of the failovers in a window,
//! written by the tool that watched them (`replag drill-report`).

use std::fmt::Write;

use super::event::{Event, EventKind};
use crate::model::rfc3339;

/// Markdown for `events` (any order) between `since` and `until` (Unix s).
pub fn markdown(events: &[Event], since: f64, until: f64) -> String {
    let mut chosen: Vec<&Event> = events.iter().filter(|e| e.at >= since && e.at <= until).collect();
    chosen.sort_by(|a, b| a.at.total_cmp(&b.at).then(a.id.cmp(&b.id)));
    let mut out = String::new();
    let _ = writeln!(out, "# Failover drill report\n");
    let _ = writeln!(out, "Window: {} to {} (UTC), as recorded by replag.\n", time(since), time(until));
    let promotions = chosen.iter().filter(|e| matches!(e.kind, EventKind::Failover | EventKind::Switchover)).count();
    let splits = chosen.iter().filter(|e| e.kind == EventKind::SplitBrain).count();
    let _ = writeln!(out, "{promotions} promotion(s), {splits} split brain(s), {} event(s) in all.\n", chosen.len());
    if chosen.is_empty() {
        let _ = writeln!(out, "Nothing happened in this window.");
        return out;
    }
    let _ = writeln!(out, "| time (UTC) | event | system | group | from | to | summary |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for e in &chosen {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            time(e.at),
            e.kind.as_str(),
            e.system.as_str(),
            cell(&e.group),
            e.from.as_ref().map_or("–".into(), |n| format!("{} ({})", n.node, n.region)),
            e.to.as_ref().map_or("–".into(), |n| format!("{} ({})", n.node, n.region)),
            cell(&e.summary)
        );
    }
    for e in chosen.iter().filter(|e| matches!(e.kind, EventKind::Failover | EventKind::Switchover)) {
        let from = e.from.as_ref().map_or("?", |n| n.node.as_str());
        let to = e.to.as_ref().map_or("?", |n| n.node.as_str());
        let _ = writeln!(out, "\n## {} {}: {from} → {to} ({})\n", e.kind.as_str(), e.id, time(e.at));
        let _ = writeln!(out, "- Primary last seen: {}", opt_time(e.primary_last_seen_at));
        let _ = writeln!(out, "- Primary unreachable from: {}", opt_time(e.primary_lost_at));
        let _ = writeln!(out, "- Promotion seen: {}", time(e.at));
        if let Some(after) = e.promotion_after_seconds {
            let _ = writeln!(out, "- Time from loss to promotion seen: {after:.1} s");
        }
        let _ = writeln!(
            out,
            "- Switch point: {}{}",
            e.switch_text.as_deref().unwrap_or("unknown"),
            if e.switch_exact { " (from the server)" } else { " (estimated: the candidate's last received position)" }
        );
        let _ = writeln!(
            out,
            "- Old primary's last position seen: {}",
            e.old_primary_position_text.as_deref().unwrap_or("unknown")
        );
        let lost = match (e.lost_bytes, e.lost_bytes_exact) {
            (Some(b), true) => format!("{b} bytes (exact: the old primary was seen to its end)"),
            (Some(0), false) => {
                "none that replag saw (the old primary may have written more after it last saw it)".into()
            }
            (Some(b), false) => {
                format!("at least {b} bytes (the old primary may have written more after replag last saw it)")
            }
            (None, _) => "unknown".into(),
        };
        let _ = writeln!(out, "- Data lost: {lost}");
        if let Some(window) = e.lost_window_seconds {
            let _ = writeln!(out, "- Writes lost: about the last {window:.1} s before the loss (replag's heartbeats)");
        }
        let _ = writeln!(
            out,
            "- Write gap: {}",
            e.write_gap_seconds.map_or("no write seen on the new primary yet".into(), |g| format!("{g:.2} s"))
        );
    }
    out
}

fn cell(text: &str) -> String {
    if text.is_empty() {
        "–".into()
    } else {
        text.replace('|', "\\|").replace('\n', " ")
    }
}

fn time(unix: f64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(unix.max(0.0));
    rfc3339(t)
}

fn opt_time(unix: Option<f64>) -> String {
    unix.map_or("–".into(), time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failover::event::EventNode;
    use crate::model::System;

    #[test]
    fn a_failover_is_written_with_its_figures_and_only_the_window_counts() {
        let mut e = Event::new(7, EventKind::Failover, System::Postgres, "7300", 1_800_000_100.0);
        e.from = Some(EventNode { node: "pg-us-east".into(), region: "us-east".into() });
        e.to = Some(EventNode { node: "pg-eu-west".into(), region: "eu-west".into() });
        e.lost_bytes = Some(54_000);
        e.write_gap_seconds = Some(15.02);
        e.summary = "pg-eu-west took over | from pg-us-east".into();
        let old = Event::new(1, EventKind::PrimaryLost, System::Redis, "orders", 1_700_000_000.0);
        let text = markdown(&[e, old], 1_800_000_000.0, 1_800_000_200.0);
        assert!(text.contains("1 promotion(s), 0 split brain(s), 1 event(s) in all"), "{text}");
        assert!(text.contains("at least 54000 bytes"), "{text}");
        assert!(text.contains("Write gap: 15.02 s"), "{text}");
        assert!(text.contains("took over \\| from"), "a pipe in a cell is escaped: {text}");
        assert!(!text.contains("orders"), "outside the window: {text}");
    }
}
