//! Bounded history of one source's position stream, and the conversion of a
//! replica position into lag in bytes and seconds (docs/architecture.md, "Lag").
//!
//! Times come from one monotonic clock (the exporter's), so clock skew between
//! regions cannot distort the result.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::model::SourcePosition;

/// Samples kept per source. Plateaus (an idle source) cost two samples; when
/// the history is full its older half is thinned (every other sample
/// dropped), so the newest samples keep their full resolution (a source
/// sampled every 25 ms: the last ~50 s) and the spacing grows with age: an
/// hour of continuous writes is still covered, at a few seconds' resolution
/// that far back.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Samples kept over every history of the process (32 bytes each: 16 MiB):
/// with more than 128 streams each keeps fewer, so memory stays bounded
/// however large the fleet (docs/performance.md), at the cost of coarser
/// resolution far back.
pub const FLEET_SAMPLES: usize = 1 << 19;

/// Fewest samples a history keeps, whatever the fleet: a minute of a busy
/// source at full resolution, and an hour still reached.
pub const MIN_CAPACITY: usize = 128;

/// The capacity of each of `streams` histories: their share of
/// `FLEET_SAMPLES`, a power of two (a full history then fills its buffer
/// exactly) between `MIN_CAPACITY` and `DEFAULT_CAPACITY`.
pub fn capacity_for(streams: usize) -> usize {
    let share = (FLEET_SAMPLES / streams.max(1)).clamp(MIN_CAPACITY, DEFAULT_CAPACITY);
    1 << share.ilog2()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub at: Instant,
    pub position: u64,
    /// Moves when the source wrote data, not only housekeeping
    /// (`SourcePosition::mark`).
    pub mark: u64,
}

/// A position lower than the latest sample's, stamped less than this after
/// it, is a reply that overtook another, not a reset: a poll and the
/// position reads beside it share one connection, and each is stamped with
/// the middle of its own round trip, so under load a poll answered first can
/// carry the later stamp.
pub const REORDER_WINDOW: Duration = Duration::from_secs(1);

/// How far into a history `first_write` looks.
const FIRST_WRITE_WITHIN: usize = 256;

/// What a push did to the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Appended,
    /// The position went backwards: not progress (restore, reset). History restarted.
    Reset,
    /// The sample was not newer than the latest one, or went backwards
    /// within `REORDER_WINDOW` of it, and was dropped.
    OutOfOrder,
}

/// How far a replica trails its source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lag {
    pub bytes: u64,
    pub seconds: f64,
    /// The replica is older than the oldest sample: `seconds` is a lower bound.
    pub lower_bound: bool,
    /// How finely the history placed the reading, in seconds
    /// (`PositionHistory::lag`): the replica may trail by up to this much
    /// more (or, when behind, less) than `seconds` says.
    pub resolution: f64,
}

impl From<Lag> for crate::model::LagView {
    fn from(lag: Lag) -> Self {
        crate::model::LagView {
            bytes: lag.bytes,
            seconds: lag.seconds,
            lower_bound: lag.lower_bound,
            resolution_seconds: Some(lag.resolution),
        }
    }
}

impl Lag {
    /// Caught up, as far as samples `resolution` seconds apart can tell.
    pub fn caught_up(resolution: f64) -> Lag {
        Lag { bytes: 0, seconds: 0.0, lower_bound: false, resolution }
    }

    pub fn is_zero(&self) -> bool {
        self.bytes == 0 && self.seconds == 0.0 && !self.lower_bound
    }
}

#[derive(Debug, Clone)]
pub struct PositionHistory {
    samples: VecDeque<Sample>,
    capacity: usize,
    /// The source's mark may trail its position (`SourcePosition::mark_trails`).
    mark_trails: bool,
}

impl Default for PositionHistory {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl PositionHistory {
    pub fn with_capacity(capacity: usize) -> Self {
        Self { samples: VecDeque::new(), capacity: capacity.max(2), mark_trails: false }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Keep at most `capacity` samples from the next push on (a smaller
    /// one thins the history then).
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(2);
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn latest(&self) -> Option<Sample> {
        self.samples.back().copied()
    }

    pub fn oldest(&self) -> Option<Sample> {
        self.samples.front().copied()
    }

    /// Append a sample of a source whose every advance is data.
    pub fn push(&mut self, at: Instant, position: u64) -> Pushed {
        self.push_marked(at, SourcePosition::all_data(position))
    }

    pub fn push_marked(&mut self, at: Instant, source: SourcePosition) -> Pushed {
        let SourcePosition { position, mark, mark_trails } = source;
        self.mark_trails = mark_trails;
        let mut outcome = Pushed::Appended;
        if let Some(last) = self.samples.back() {
            if at <= last.at {
                return Pushed::OutOfOrder;
            }
            if position < last.position {
                if at.saturating_duration_since(last.at) < REORDER_WINDOW {
                    return Pushed::OutOfOrder;
                }
                self.samples.clear();
                outcome = Pushed::Reset;
            }
        }
        // Keep only both ends of a plateau: the end moves forward, the middle
        // carries no information.
        let n = self.samples.len();
        let same = |s: &Sample| s.position == position && s.mark == mark;
        if n >= 2 && same(&self.samples[n - 1]) && same(&self.samples[n - 2]) {
            self.samples[n - 1].at = at;
            return outcome;
        }
        // Thinned before the push, not after: the buffer never grows past
        // the capacity (a power of two) into the next doubling.
        while self.samples.len() >= self.capacity {
            self.thin_older_half();
        }
        self.samples.push_back(Sample { at, position, mark });
        outcome
    }

    /// Did the source write data between sample `i - 1` and sample `i`?
    /// Its position moved and its mark moved there — or, where the mark
    /// trails (PostgreSQL: a commit is in the WAL position a moment before
    /// its transaction counts as completed, so a sample can catch it in
    /// between), at the next sample, and the newest sample, with no next one
    /// yet, counts as data. Redis' marks are exact: a ping seen in the newest
    /// sample is housekeeping at once (else a replica polled in the 25 ms
    /// before the next sample read that long behind at idle; seen in CI).
    fn data_into(&self, i: usize) -> bool {
        let s = &self.samples;
        if i == 0 {
            return true;
        }
        s[i].position > s[i - 1].position
            && (s[i].mark != s[i - 1].mark
                || (self.mark_trails && s.get(i + 1).is_none_or(|next| next.mark != s[i].mark)))
    }

    /// Did the source surely write data into sample `i`: its position and
    /// its mark moved there (or, where the mark trails, at the next
    /// sample)? Unlike `data_into`, the newest sample is not given the
    /// benefit of the doubt: a dead source's last sample stays as it was.
    fn surely_data_into(&self, i: usize) -> bool {
        let s = &self.samples;
        i > 0
            && s[i].position > s[i - 1].position
            && (s[i].mark != s[i - 1].mark || (self.mark_trails && s.get(i + 1).is_some_and(|n| n.mark != s[i].mark)))
    }

    /// The last interval the source wrote data in: its last write happened
    /// between the two samples' moments.
    pub fn last_write(&self) -> Option<(Instant, Instant)> {
        (1..self.samples.len())
            .rev()
            .find(|&i| self.surely_data_into(i))
            .map(|i| (self.samples[i - 1].at, self.samples[i].at))
    }

    /// The first interval the source wrote data in, among its first
    /// `FIRST_WRITE_WITHIN` samples (a promoted node's first writes come
    /// soon after its history begins; asked every snapshot, it must not
    /// walk a full history that holds no data).
    pub fn first_write(&self) -> Option<(Instant, Instant)> {
        (1..self.samples.len().min(FIRST_WRITE_WITHIN))
            .find(|&i| self.surely_data_into(i))
            .map(|i| (self.samples[i - 1].at, self.samples[i].at))
    }

    /// Drop every other sample of the older half, keeping the oldest: how far
    /// back the history reaches keeps growing, only at a coarser resolution.
    fn thin_older_half(&mut self) {
        let half = (self.samples.len() / 2).max(2);
        let mut index = 0;
        self.samples.retain(|_| {
            index += 1;
            index > half || index % 2 == 1
        });
    }

    /// The source's position as known at `at`: that of the last sample taken
    /// at or before `at` (the first sample if `at` precedes the history).
    ///
    /// Not interpolated on purpose: a replica polled just before a burst that
    /// the source's next sample shows must not be charged for it.
    pub fn position_at(&self, at: Instant) -> Option<u64> {
        let first = self.samples.front()?;
        let idx = self.samples.partition_point(|s| s.at <= at);
        Some(if idx == 0 { first.position } else { self.samples[idx - 1].position })
    }

    /// How long before `at` the source's position was last known: 0 inside
    /// a plateau (samples either side at the same position), else `at` − the
    /// last sample at or before it (the first sample's distance when `at`
    /// precedes the history). A replica read at `at` that looks caught up may
    /// have missed what the source wrote in that gap.
    fn unknown_before(&self, at: Instant) -> f64 {
        let idx = self.samples.partition_point(|s| s.at <= at);
        let Some(before) = idx.checked_sub(1).map(|i| self.samples[i]) else {
            return self.samples.front().map_or(0.0, |first| first.at.duration_since(at).as_secs_f64());
        };
        match self.samples.get(idx) {
            Some(after) if after.position == before.position => 0.0,
            _ => at.duration_since(before.at).as_secs_f64(),
        }
    }

    /// Lag of a replica that was at `position` at time `at`.
    ///
    /// Caught up (position at or past the source's known position at `at`) is 0.
    /// Otherwise the lag is `at` minus the moment the source wrote the first
    /// data past `position`: interpolated between the two samples around
    /// `position` (the middle of the interval when writing resumed there
    /// after a plateau), else the middle of the first interval that carried
    /// data. Missing only housekeeping is 0 s (the bytes still count). A position older than the whole history
    /// yields a lower bound. `None` without samples.
    ///
    /// The resolution says how well the samples pin this down: for a replica
    /// behind, the span of the interval the source passed `position` in; for
    /// one that looks caught up, how long before `at` the source's position
    /// was last known (`unknown_before`). 25 ms while a source is sampled
    /// between polls; up to a poll interval when it is not (the first poll
    /// after a start, sampling off at large fleets or failing).
    pub fn lag(&self, position: u64, at: Instant) -> Option<Lag> {
        let source_now = self.position_at(at)?;
        if position >= source_now {
            return Some(Lag::caught_up(self.unknown_before(at)));
        }
        let bytes = source_now - position;
        // Index of the first sample beyond `position`; it exists because
        // `position < source_now <= last.position`.
        let idx = self.samples.partition_point(|s| s.position <= position);
        if idx == 0 {
            let oldest = self.samples[0].at;
            let seconds = at.saturating_duration_since(oldest).as_secs_f64();
            return Some(Lag { bytes, seconds, lower_bound: true, resolution: self.unknown_before(at) });
        }
        // The sample `source_now` came from.
        let known = self.samples.partition_point(|s| s.at <= at).max(idx + 1);
        let Some(first_data) = (idx..known).find(|&i| self.data_into(i)) else {
            return Some(Lag { bytes, seconds: 0.0, lower_bound: false, resolution: self.unknown_before(at) });
        };
        let (a, b) = (self.samples[first_data - 1], self.samples[first_data]);
        let passed_at = if first_data == idx {
            let fraction = (position - a.position) as f64 / (b.position - a.position) as f64;
            let span = (b.at - a.at).as_secs_f64();
            // Writing that resumed after a plateau (an idle source) began
            // somewhere between the two samples: its middle is never off by
            // more than half the interval. Positions past it follow on, in
            // order, within the second half.
            let resumed = idx >= 2 && self.samples[idx - 2].position == a.position;
            let offset = if resumed { span * (0.5 + fraction / 2.0) } else { span * fraction };
            a.at + Duration::from_secs_f64(offset)
        } else {
            // Data came after housekeeping, somewhere in this interval.
            a.at + (b.at - a.at) / 2
        };
        let seconds = at.saturating_duration_since(passed_at).as_secs_f64();
        Some(Lag { bytes, seconds, lower_bound: false, resolution: (b.at - a.at).as_secs_f64() })
    }
}

impl PositionHistory {
    /// Lag of a replica at `position` at time `at`, for a source that moves
    /// in steps (replag's heartbeats: each sample is a write): the source
    /// left `position` when it wrote the next step, so the lag counts from
    /// the first sample beyond it, not from an interpolation. A replica that
    /// has every write up to the last one replag made is caught up: 0.
    pub fn lag_in_steps(&self, position: u64, at: Instant) -> Option<Lag> {
        let source_now = self.position_at(at)?;
        // The resolution assumes steps seen by polls (filer.sync events): the
        // first missed one was made in the interval before the sample that
        // showed it. Heartbeats' samples are the writes; they use `seconds`.
        if position >= source_now {
            return Some(Lag::caught_up(self.unknown_before(at)));
        }
        let idx = self.samples.partition_point(|s| s.position <= position);
        let first_missed = self.samples[idx];
        let seconds = at.saturating_duration_since(first_missed.at).as_secs_f64();
        let resolution = idx.checked_sub(1).map_or(0.0, |i| (first_missed.at - self.samples[i].at).as_secs_f64());
        Some(Lag { bytes: source_now - position, seconds, lower_bound: idx == 0, resolution })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> Instant {
        Instant::now()
    }

    fn secs(base: Instant, s: f64) -> Instant {
        base + Duration::from_secs_f64(s)
    }

    #[test]
    fn first_and_last_writes_are_the_intervals_the_mark_moved_in() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut h = PositionHistory::default();
        let mark = |position, mark| SourcePosition { position, mark, mark_trails: false };
        h.push_marked(at(0), mark(100, 1));
        h.push_marked(at(25), mark(150, 1)); // housekeeping
        h.push_marked(at(50), mark(300, 2)); // data
        h.push_marked(at(75), mark(400, 3)); // data
        h.push_marked(at(100), mark(450, 3)); // housekeeping
        assert_eq!(h.first_write(), Some((at(25), at(50))));
        assert_eq!(h.last_write(), Some((at(50), at(75))));
        let mut idle = PositionHistory::default();
        idle.push_marked(at(0), mark(100, 1));
        idle.push_marked(at(25), mark(150, 1));
        assert_eq!((idle.first_write(), idle.last_write()), (None, None), "housekeeping is no write");
    }

    #[test]
    fn empty_history_knows_nothing() {
        let h = PositionHistory::default();
        assert_eq!(h.lag(10, t0()), None);
        assert_eq!(h.position_at(t0()), None);
    }

    #[test]
    fn caught_up_is_zero_even_after_long_idle() {
        let base = t0();
        let mut h = PositionHistory::default();
        for i in 0..3600 {
            h.push(secs(base, i as f64), 1000);
        }
        assert_eq!(h.len(), 2, "a plateau keeps only its two ends");
        let lag = h.lag(1000, secs(base, 3600.0)).unwrap();
        // Read a second after the source's last sample.
        assert!(lag.is_zero() && lag.resolution == 1.0, "{lag:?}");
    }

    #[test]
    fn interpolates_between_samples() {
        let base = t0();
        let mut h = PositionHistory::default();
        // 100 bytes per second from t=0.
        for i in 0..=10 {
            h.push(secs(base, i as f64), 100 * i);
        }
        let lag = h.lag(250, secs(base, 10.0)).unwrap();
        assert_eq!(lag.bytes, 750);
        assert!((lag.seconds - 7.5).abs() < 1e-6, "{lag:?}");
        assert!(!lag.lower_bound);
    }

    #[test]
    fn burst_after_idle_counts_from_the_end_of_the_plateau() {
        let base = t0();
        let mut h = PositionHistory::default();
        for i in 0..=100 {
            h.push(secs(base, i as f64), 500);
        }
        h.push(secs(base, 101.0), 600);
        // Replica still at 500: it has missed only what was written after
        // t=100, somewhere before t=101: the middle of that.
        let lag = h.lag(500, secs(base, 101.0)).unwrap();
        assert!((lag.seconds - 0.5).abs() < 1e-6, "{lag:?}");
        assert_eq!(lag.bytes, 100);
    }

    #[test]
    fn steps_count_from_the_first_missed_write() {
        let base = t0();
        let mut h = PositionHistory::default();
        for i in 0..10u64 {
            h.push(secs(base, i as f64), 1_000 + i);
        }
        // The last write (at 9 s) is not there yet at 9.1 s: 0.1 s behind, not a whole interval.
        assert!((h.lag_in_steps(1_008, secs(base, 9.1)).unwrap().seconds - 0.1).abs() < 1e-6);
        // Stuck at the write of 5 s: behind since the write of 6 s.
        assert!((h.lag_in_steps(1_005, secs(base, 9.0)).unwrap().seconds - 3.0).abs() < 1e-6);
        assert!(h.lag_in_steps(1_009, secs(base, 9.5)).unwrap().is_zero());
        // Observed before the last write was made: caught up.
        assert!(h.lag_in_steps(1_008, secs(base, 8.5)).unwrap().is_zero());
        assert!(h.lag_in_steps(0, secs(base, 9.0)).unwrap().lower_bound);
    }

    #[test]
    fn older_than_history_is_a_lower_bound() {
        let base = t0();
        let mut h = PositionHistory::default();
        for i in 0..10 {
            h.push(secs(base, 6.0 + i as f64), 160 + 10 * i);
        }
        let lag = h.lag(50, secs(base, 15.0)).unwrap();
        assert!(lag.lower_bound);
        assert!((lag.seconds - 9.0).abs() < 1e-6, "oldest sample is t=6: {lag:?}");
        assert_eq!(lag.bytes, 250 - 50);
    }

    #[test]
    fn many_streams_share_the_fleet_samples_and_a_smaller_share_thins() {
        assert_eq!(capacity_for(1), DEFAULT_CAPACITY);
        assert_eq!(capacity_for(128), DEFAULT_CAPACITY);
        assert_eq!(capacity_for(1000), 512, "2^19 / 1000 = 524, down to a power of two");
        assert_eq!(capacity_for(1_000_000), MIN_CAPACITY);
        let base = t0();
        let mut h = PositionHistory::with_capacity(DEFAULT_CAPACITY);
        for i in 0..3000u64 {
            h.push(base + Duration::from_millis(25 * i), 1_000 * i);
        }
        assert_eq!(h.len(), 3000);
        h.set_capacity(512);
        h.push(base + Duration::from_millis(25 * 3000), 1_000 * 3000);
        assert!(h.len() <= 512, "{}", h.len());
        assert_eq!(h.oldest().unwrap().at, base, "still reaching back");
        assert!(h.samples.capacity() <= 4096, "the buffer never doubles past the capacity");
    }

    #[test]
    fn a_full_history_thins_its_past_and_keeps_the_recent_resolution() {
        let base = t0();
        let mut h = PositionHistory::with_capacity(64);
        // 25 ms samples of continuous writes for 100 s: 4000 samples into 64.
        for i in 0..4000u64 {
            h.push(base + Duration::from_millis(25 * i), 1_000 * i);
        }
        assert!(h.len() <= 64);
        assert_eq!(h.oldest().unwrap().at, base, "the oldest sample is kept: the history still reaches back");
        let recent: Vec<Sample> = h.samples.iter().rev().take(16).copied().collect();
        assert!(recent.windows(2).all(|w| w[0].at - w[1].at == Duration::from_millis(25)), "{recent:?}");
        // Steady writes: interpolation stays exact however thinned the past.
        let now = base + Duration::from_millis(25 * 3999);
        for back in [0.1, 1.0, 10.0, 60.0, 99.0] {
            let position = 1_000 * (3999 - (back * 40.0) as u64);
            let lag = h.lag(position, now).unwrap();
            assert!(!lag.lower_bound);
            assert!((lag.seconds - back).abs() < 1e-3, "{back}: {lag:?}");
        }
    }

    #[test]
    fn position_going_backwards_resets() {
        let base = t0();
        let mut h = PositionHistory::default();
        h.push(secs(base, 0.0), 1_000_000);
        h.push(secs(base, 1.0), 2_000_000);
        // A reply that overtook another (stamped later, read earlier): dropped.
        assert_eq!(h.push(secs(base, 1.2), 1_999_000), Pushed::OutOfOrder);
        assert_eq!(h.len(), 2);
        assert_eq!(h.push(secs(base, 2.0), 10), Pushed::Reset);
        assert_eq!(h.len(), 1);
        assert_eq!(h.lag(10, secs(base, 3.0)), Some(Lag::caught_up(1.0)));
    }

    #[test]
    fn a_write_between_the_replica_poll_and_the_next_source_sample_is_not_lag() {
        let base = t0();
        let mut h = PositionHistory::default();
        h.push(secs(base, 0.0), 100);
        h.push(secs(base, 1.0), 100);
        // A background record lands at t=1.9995; the replica is polled at
        // t=1.999 (before it), the source at t=2.0 (after it).
        h.push(secs(base, 2.0), 180);
        assert!(h.lag(100, secs(base, 1.999)).unwrap().is_zero());
        // The next replica poll, if it had not replayed it, would be lag.
        let lag = h.lag(100, secs(base, 3.0)).unwrap();
        assert_eq!(lag.bytes, 80);
        assert!((lag.seconds - 1.5).abs() < 1e-6, "written between 1 s and 2 s: {lag:?}");
    }

    fn marked(position: u64, mark: u64) -> SourcePosition {
        SourcePosition { position, mark, mark_trails: true }
    }

    #[test]
    fn an_exact_mark_makes_the_newest_housekeeping_known_at_once() {
        let base = t0();
        let exact = |position, mark| SourcePosition { position, mark, mark_trails: false };
        let mut h = PositionHistory::default();
        h.push_marked(secs(base, 0.0), exact(100, 100));
        h.push_marked(secs(base, 1.0), exact(100, 100));
        // A ping: the newest sample, its mark unchanged.
        h.push_marked(secs(base, 1.025), exact(114, 100));
        let lag = h.lag(100, secs(base, 1.04)).unwrap();
        assert_eq!((lag.bytes, lag.seconds), (14, 0.0), "behind by a ping: in bytes, not in time");
        // Where the mark trails, the same newest advance is data until the next sample.
        let mut t = PositionHistory::default();
        t.push_marked(secs(base, 0.0), marked(100, 100));
        t.push_marked(secs(base, 1.0), marked(100, 100));
        t.push_marked(secs(base, 1.025), marked(114, 100));
        assert!(t.lag(100, secs(base, 1.04)).unwrap().seconds > 0.0);
    }

    #[test]
    fn missing_only_housekeeping_is_behind_in_bytes_not_in_time() {
        let base = t0();
        let mut h = PositionHistory::default();
        h.push_marked(secs(base, 0.0), marked(100, 7));
        h.push_marked(secs(base, 1.0), marked(100, 7));
        // A checkpoint record: the position moves, the commit mark does not.
        h.push_marked(secs(base, 1.5), marked(180, 7));
        h.push_marked(secs(base, 1.6), marked(180, 7));
        let lag = h.lag(100, secs(base, 1.7)).unwrap();
        assert_eq!((lag.bytes, lag.seconds, lag.lower_bound), (80, 0.0, false));
        // Then a commit: lag counts from the last sample without it.
        h.push_marked(secs(base, 2.0), marked(300, 8));
        h.push_marked(secs(base, 2.1), marked(300, 8));
        let lag = h.lag(100, secs(base, 2.5)).unwrap();
        assert_eq!(lag.bytes, 200);
        assert!((lag.seconds - 0.7).abs() < 1e-6, "written between 1.6 s and 2.0 s: {lag:?}");
        // A replica past the housekeeping, halfway through the commit's bytes.
        let lag = h.lag(240, secs(base, 2.5)).unwrap();
        assert!((lag.seconds - 0.6).abs() < 1e-6, "{lag:?}");
    }

    #[test]
    fn a_commit_whose_mark_shows_one_sample_late_is_still_data() {
        let base = t0();
        let mut h = PositionHistory::default();
        h.push_marked(secs(base, 0.0), marked(100, 7));
        // The commit's WAL is in this sample; its transaction completes just after.
        h.push_marked(secs(base, 1.0), marked(150, 7));
        h.push_marked(secs(base, 1.1), marked(150, 8));
        let lag = h.lag(100, secs(base, 1.2)).unwrap();
        assert!((lag.seconds - 1.2).abs() < 1e-6, "{lag:?}");
        // The newest sample, before its successor is known, counts as data too.
        h.push_marked(secs(base, 2.0), marked(170, 8));
        assert!(h.lag(150, secs(base, 2.0)).unwrap().seconds > 0.0);
        h.push_marked(secs(base, 2.1), marked(170, 8));
        assert_eq!(h.lag(150, secs(base, 2.1)).unwrap().seconds, 0.0, "housekeeping after all");
    }

    #[test]
    fn out_of_order_samples_are_dropped() {
        let base = t0();
        let mut h = PositionHistory::default();
        h.push(secs(base, 5.0), 10);
        assert_eq!(h.push(secs(base, 4.0), 20), Pushed::OutOfOrder);
        assert_eq!(h.latest().unwrap().position, 10);
    }

    #[test]
    fn replica_observed_before_a_newer_source_sample_is_not_charged_for_it() {
        let base = t0();
        let mut h = PositionHistory::default();
        h.push(secs(base, 0.0), 100);
        h.push(secs(base, 10.0), 100);
        h.push(secs(base, 11.0), 200);
        // Observed at t=10.5 at position 150: the source was at 150 then.
        let lag = h.lag(150, secs(base, 10.5)).unwrap();
        assert!(lag.is_zero(), "{lag:?}");
        // It may have missed a write made in the 0.5 s since the source's last sample.
        assert!((lag.resolution - 0.5).abs() < 1e-9, "{lag:?}");
    }

    #[test]
    fn resolution_is_the_sample_spacing_where_the_reading_falls() {
        let base = t0();
        let mut h = PositionHistory::default();
        // Polled every second (no samples between polls), writing all along.
        for i in 0..=3 {
            h.push(secs(base, i as f64), 1000 * i);
        }
        // A standby read at 3.7 s at the source's 3 s position looks caught
        // up, but the source's position has not been known for 0.7 s.
        let lag = h.lag(3000, secs(base, 3.7)).unwrap();
        assert!(lag.is_zero());
        assert!((lag.resolution - 0.7).abs() < 1e-9, "{lag:?}");
        // Behind: placed within the 1 s between the polls around it.
        let lag = h.lag(1500, secs(base, 3.0)).unwrap();
        assert!((lag.seconds - 1.5).abs() < 1e-9 && (lag.resolution - 1.0).abs() < 1e-9, "{lag:?}");
        // Sampled every 25 ms from 3 s on: both are 25 ms.
        for i in 1..=40 {
            h.push(secs(base, 3.0 + 0.025 * i as f64), 3000 + 25 * i);
        }
        let lag = h.lag(3500, secs(base, 3.9)).unwrap();
        assert!((lag.resolution - 0.025).abs() < 1e-6, "{lag:?}");
        let lag = h.lag(4000, secs(base, 4.01)).unwrap();
        assert!(lag.is_zero() && (lag.resolution - 0.01).abs() < 1e-6, "{lag:?}");
        // Inside an idle plateau the position was known throughout.
        h.push(secs(base, 6.0), 4000);
        assert_eq!(h.lag(4000, secs(base, 5.0)).unwrap().resolution, 0.0);
    }

    proptest! {
        /// Monotonic source, any replica position and time: lag is never
        /// negative, bytes and seconds agree on "caught up", and a replica at
        /// the latest position is caught up.
        #[test]
        fn lag_is_sane_for_monotonic_input(
            steps in prop::collection::vec((1u64..2_000, 0u64..10_000), 1..200),
            replica_frac in 0.0f64..1.2,
            obs_offset_ms in 0u64..5_000,
        ) {
            let base = t0();
            let mut h = PositionHistory::with_capacity(64);
            let (mut t_ms, mut pos) = (0u64, 0u64);
            for (dt, dp) in &steps {
                t_ms += dt;
                pos += dp;
                h.push(base + Duration::from_millis(t_ms), pos);
            }
            let at = base + Duration::from_millis(t_ms + obs_offset_ms);
            let replica = (pos as f64 * replica_frac) as u64;
            let lag = h.lag(replica, at).unwrap();
            prop_assert!(lag.seconds >= 0.0 && lag.seconds.is_finite());
            prop_assert_eq!(lag.bytes == 0, lag.seconds == 0.0 || lag.bytes == 0);
            if replica >= pos {
                prop_assert!(lag.is_zero());
            }
            // Never more precise than the samples, never beyond the whole history.
            prop_assert!(lag.resolution >= 0.0 && lag.resolution <= (at - base).as_secs_f64() + 1e-6);
            if at > base + Duration::from_millis(t_ms) && replica >= pos {
                prop_assert!((lag.resolution - obs_offset_ms as f64 / 1000.0).abs() < 1e-6);
            }
            // The lag can never exceed the time since the first sample ever pushed
            // (here the start of the stream).
            prop_assert!(lag.seconds <= (at - base).as_secs_f64() + 1e-6);
            prop_assert!(h.len() <= 64);
        }

        /// A replica further behind never has less lag than one ahead of it.
        #[test]
        fn lag_is_monotonic_in_replica_position(
            steps in prop::collection::vec((1u64..2_000, 0u64..10_000), 2..100),
            a in 0.0f64..1.0, b in 0.0f64..1.0,
        ) {
            let base = t0();
            let mut h = PositionHistory::default();
            let (mut t_ms, mut pos) = (0u64, 0u64);
            for (dt, dp) in &steps {
                t_ms += dt;
                pos += dp;
                h.push(base + Duration::from_millis(t_ms), pos);
            }
            let at = base + Duration::from_millis(t_ms);
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            let behind = h.lag((pos as f64 * lo) as u64, at).unwrap();
            let ahead = h.lag((pos as f64 * hi) as u64, at).unwrap();
            prop_assert!(behind.seconds + 1e-9 >= ahead.seconds);
            prop_assert!(behind.bytes >= ahead.bytes);
        }
    }
}
