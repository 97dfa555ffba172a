//! A link's last 15 minutes, for people: the status page's sparklines and
//! `/api/v1/history`. Fixed buckets (10 s) keep the worst lag and whether
//! the link was down at any moment in them, so memory is bounded (90
//! buckets a link) and a short spike or outage is never averaged away.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a bucket covers.
pub const BUCKET: Duration = Duration::from_secs(10);
/// How many buckets are kept: 15 minutes.
pub const BUCKETS: usize = 90;

/// One bucket: the worst of the snapshots that fell in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// When the bucket begins.
    pub start: Instant,
    /// The largest lag (seconds, as gates judge it) seen; None if none was known.
    pub max_lag_seconds: Option<f64>,
    /// The link was down in at least one snapshot.
    pub down: bool,
}

/// Cheap to clone, as the gates' memory does for every link on every
/// snapshot that a reader still holds the last one of: the closed buckets
/// are shared (copied once per bucket, every 10 s, not per snapshot), only
/// the open one is the link's own.
#[derive(Debug, Clone, Default)]
pub struct RecentLag {
    /// Closed buckets, oldest first; with `open`, at most `BUCKETS`.
    closed: Arc<VecDeque<Bucket>>,
    open: Option<Bucket>,
}

impl RecentLag {
    /// Record the link as a snapshot taken at `at` shows it. `origin` aligns
    /// every link's buckets (the memory's first snapshot).
    pub fn push(&mut self, origin: Instant, at: Instant, lag_seconds: Option<f64>, up: bool) {
        let index = at.saturating_duration_since(origin).as_secs() / BUCKET.as_secs();
        let start = origin + BUCKET * u32::try_from(index).unwrap_or(u32::MAX);
        let lag_seconds = lag_seconds.filter(|l| l.is_finite());
        match &mut self.open {
            Some(last) if last.start == start => {
                last.max_lag_seconds = match (last.max_lag_seconds, lag_seconds) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                last.down |= !up;
            }
            Some(last) if last.start > start => {} // out of order: ignore
            _ => {
                let opened = Bucket { start, max_lag_seconds: lag_seconds, down: !up };
                if let Some(closed) = self.open.replace(opened) {
                    let buckets = Arc::make_mut(&mut self.closed);
                    buckets.push_back(closed);
                    while buckets.len() >= BUCKETS {
                        buckets.pop_front();
                    }
                }
            }
        }
    }

    /// The buckets that cover the 15 minutes before `now`, oldest first
    /// (buckets without a snapshot are absent).
    pub fn window(&self, now: Instant) -> impl Iterator<Item = &Bucket> {
        let horizon = now.checked_sub(BUCKET * BUCKETS as u32);
        self.closed.iter().chain(&self.open).filter(move |b| horizon.is_none_or(|h| b.start >= h))
    }

    /// Since when the link has been healthy by `healthy` (a bucket's test),
    /// as far as the window knows: the start of the first healthy bucket
    /// after the last unhealthy one. None if the latest bucket is not healthy.
    pub fn healthy_since(&self, now: Instant, healthy: impl Fn(&Bucket) -> bool) -> Option<Instant> {
        let window: Vec<&Bucket> = self.window(now).collect();
        let last_bad = window.iter().rposition(|b| !healthy(b));
        match last_bad {
            Some(i) if i + 1 == window.len() => None,
            Some(i) => Some(window[i + 1].start),
            None => window.first().map(|b| b.start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_the_worst_and_the_window_is_bounded() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let mut r = RecentLag::default();
        r.push(t0, s(1), Some(0.5), true);
        r.push(t0, s(4), Some(3.0), true);
        r.push(t0, s(7), Some(1.0), false);
        r.push(t0, s(12), None, true);
        let w: Vec<Bucket> = r.window(s(12)).copied().collect();
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].max_lag_seconds, w[0].down), (Some(3.0), true), "a spike and an outage are kept");
        assert_eq!((w[1].max_lag_seconds, w[1].down), (None, false));
        for i in 0..200 {
            r.push(t0, s(20 + i * 10), Some(0.0), true);
        }
        assert_eq!(r.closed.len() + 1, BUCKETS, "bounded");
        assert_eq!(r.window(s(2010)).last().map(|b| b.start), Some(s(2010)), "the open bucket is in the window");
        assert!(r.window(s(2000)).count() <= BUCKETS);
    }

    #[test]
    fn a_copy_shares_the_closed_buckets_and_keeps_its_own_open_one() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let mut r = RecentLag::default();
        for at in [1, 11, 21, 25] {
            r.push(t0, s(at), Some(1.0), true);
        }
        let copy = r.clone();
        assert!(Arc::ptr_eq(&copy.closed, &r.closed), "no copy of the closed buckets per snapshot");
        r.push(t0, s(27), Some(9.0), false);
        let worst = |l: &RecentLag| l.window(s(28)).last().map(|b| (b.max_lag_seconds, b.down));
        assert_eq!(worst(&copy), Some((Some(1.0), false)), "a copy handed out does not change");
        assert_eq!(worst(&r), Some((Some(9.0), true)));
        assert_eq!(r.window(s(28)).count(), 3);
    }

    #[test]
    fn healthy_since_the_first_good_bucket_after_the_last_bad_one() {
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        let mut r = RecentLag::default();
        for (at, lag) in [(0, 0.0), (10, 50.0), (20, 0.1), (30, 0.0)] {
            r.push(t0, s(at), Some(lag), true);
        }
        let ok = |b: &Bucket| !b.down && b.max_lag_seconds.is_some_and(|l| l <= 30.0);
        assert_eq!(r.healthy_since(s(35), ok), Some(s(20)));
        r.push(t0, s(40), Some(99.0), true);
        assert_eq!(r.healthy_since(s(45), ok), None);
        let mut fresh = RecentLag::default();
        fresh.push(t0, s(3), Some(0.0), true);
        assert_eq!(fresh.healthy_since(s(5), ok), Some(s(0)), "healthy all the window knows");
    }
}
