//! A link's last 15 minutes as a small inline SVG: the worst lag of each
//! 10 s bucket as a line, the threshold as a dashed line, buckets in which
//! the link was down as marks along the bottom. Its title says the same in
//! words for screen readers and tooltips.

use std::time::Instant;

use maud::{html, Markup};

use super::view::{duration_text, LinkRow};
use crate::gate::recent::{BUCKET, BUCKETS};

const WIDTH: f64 = 180.0;
const HEIGHT: f64 = 32.0;

pub fn render(row: &LinkRow<'_>, now: Instant) -> Markup {
    let window = BUCKET.as_secs_f64() * BUCKETS as f64;
    // x of a bucket: its start's place in the last 15 minutes.
    let x = |start: Instant| {
        let age = now.saturating_duration_since(start).as_secs_f64();
        (WIDTH * (1.0 - age / window)).clamp(0.0, WIDTH)
    };
    let worst = row.buckets.iter().filter_map(|b| b.max_lag_seconds).fold(0.0, f64::max);
    let top = worst.max(row.threshold * 1.25).max(1e-9);
    let y = |seconds: f64| HEIGHT - 3.0 - (HEIGHT - 6.0) * (seconds / top).min(1.0);
    let points: Vec<String> =
        row.buckets.iter().filter_map(|b| Some(format!("{:.1},{:.1}", x(b.start), y(b.max_lag_seconds?)))).collect();
    let downs = row.buckets.iter().filter(|b| b.down).count();
    let words = format!(
        "Lag over the last 15 minutes: worst {}{}; threshold {} ({})",
        duration_text(worst),
        if downs > 0 { format!(", down in {downs} of {} ten-second spans", row.buckets.len()) } else { String::new() },
        duration_text(row.threshold),
        row.threshold_from
    );
    html! {
        svg.spark viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width=(WIDTH) height=(HEIGHT) role="img" aria-label=(words) {
            title { (words) }
            line.threshold x1="0" x2=(WIDTH) y1=(format!("{:.1}", y(row.threshold))) y2=(format!("{:.1}", y(row.threshold))) {}
            @for b in row.buckets.iter().filter(|b| b.down) {
                rect.down-mark x=(format!("{:.1}", x(b.start))) y=(HEIGHT - 3.0) width="2" height="3" {}
            }
            @if !points.is_empty() {
                polyline.lag points=(points.join(" ")) {}
            }
            @if let Some(last) = points.last() {
                @let (cx, cy) = last.split_once(',').unwrap_or(("0", "0"));
                circle.now cx=(cx) cy=(cy) r="2.5" {}
            }
        }
    }
}
