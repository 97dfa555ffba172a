//! `/api/v1/history`: each link's last 15 minutes in 10 s buckets (the
//! worst lag and whether it was down), from the gates' memory — the data
//! behind the status page's sparklines, for programs.

use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::gate::recent::BUCKET;
use crate::gate::Tracked;
use crate::model::{to_unix, LinkId};

#[derive(Serialize)]
pub struct History<'a> {
    pub bucket_seconds: u64,
    pub generated_at: f64,
    pub links: Vec<LinkHistory<'a>>,
}

#[derive(Serialize)]
pub struct LinkHistory<'a> {
    #[serde(flatten)]
    pub id: &'a LinkId,
    /// Oldest first; buckets in which no snapshot fell are absent.
    pub points: Vec<Point>,
}

#[derive(Serialize)]
pub struct Point {
    /// Unix time the bucket begins.
    pub at: f64,
    /// The worst lag (seconds, as gates judge it) in the bucket; null if unknown.
    pub max_lag_seconds: Option<f64>,
    /// The link was down at some moment of the bucket.
    pub down: bool,
}

pub fn build(tracked: &Tracked, now: Instant, wall: SystemTime) -> History<'_> {
    let unix_now = to_unix(wall);
    let links = tracked
        .snapshot
        .links
        .iter()
        .enumerate()
        .map(|(i, link)| LinkHistory {
            id: &link.id,
            points: tracked
                .tracks
                .of(i)
                .map(|t| {
                    t.recent
                        .window(now)
                        .map(|b| Point {
                            at: unix_now - now.saturating_duration_since(b.start).as_secs_f64(),
                            max_lag_seconds: b.max_lag_seconds,
                            down: b.down,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    History { bucket_seconds: BUCKET.as_secs(), generated_at: to_unix(tracked.snapshot.generated_at), links }
}
