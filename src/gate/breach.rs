//! "Since when has this value been above L?" for any L, in bounded memory:
//! what a gate needs to say a link has been over its limit continuously for
//! longer than `for`.
//!
//! Only samples lower than every later sample can be the last time the value
//! was at or below some limit, so only those are kept (values increase from
//! oldest to newest), each with the time of the sample that followed it. A
//! value that stays at 0 costs one entry.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back a breach can be dated; gates' `for` may not exceed it.
pub const RETENTION: Duration = Duration::from_secs(3600);
const MAX_ENTRIES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    at: Instant,
    value: f64,
    /// When the next sample (in arrival order) came.
    next_at: Option<Instant>,
}

/// When a breach of a limit began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreachStart {
    At(Instant),
    /// Above the limit for all of the history kept, which begins here.
    BeforeHistory(Instant),
}

#[derive(Debug, Clone, Default)]
pub struct BreachHistory {
    entries: VecDeque<Entry>,
    /// Start of the time the history covers.
    covered_since: Option<Instant>,
}

impl BreachHistory {
    pub fn push(&mut self, at: Instant, value: f64) {
        if self.entries.back().is_some_and(|e| at <= e.at) || !value.is_finite() {
            return;
        }
        if let Some(last) = self.entries.back_mut() {
            last.next_at.get_or_insert(at);
        }
        while self.entries.back().is_some_and(|e| e.value >= value) {
            self.entries.pop_back();
        }
        self.entries.push_back(Entry { at, value, next_at: None });
        self.covered_since.get_or_insert(at);
        let horizon = at.checked_sub(RETENTION);
        while self.entries.len() > MAX_ENTRIES
            || horizon.is_some_and(|h| self.entries.front().is_some_and(|e| e.at < h))
        {
            if let Some(dropped) = self.entries.pop_front() {
                self.covered_since = Some(dropped.next_at.unwrap_or(at).max(self.covered_since.unwrap_or(at)));
            }
        }
    }

    pub fn latest(&self) -> Option<f64> {
        self.entries.back().map(|e| e.value)
    }

    /// None if the latest value is within `limit`; otherwise when the value
    /// went above it and stayed there.
    pub fn above_since(&self, limit: f64) -> Option<BreachStart> {
        let last = self.entries.back()?;
        if last.value <= limit {
            return None;
        }
        // Entries at or below the limit are a prefix (values increase).
        let within = self.entries.partition_point(|e| e.value <= limit);
        if within == 0 {
            return Some(BreachStart::BeforeHistory(self.covered_since.unwrap_or(last.at)));
        }
        let e = self.entries[within - 1];
        Some(BreachStart::At(e.next_at.unwrap_or(last.at)))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(base: Instant, s: u64) -> Instant {
        base + Duration::from_secs(s)
    }

    #[test]
    fn constant_zero_costs_one_entry_and_never_breaches() {
        let base = Instant::now();
        let mut h = BreachHistory::default();
        for s in 0..1000 {
            h.push(at(base, s), 0.0);
        }
        assert_eq!(h.len(), 1);
        assert_eq!(h.above_since(0.5), None);
    }

    #[test]
    fn breach_starts_at_the_first_sample_above_the_limit() {
        let base = Instant::now();
        let mut h = BreachHistory::default();
        // 0, 5, 3, 4: above 1 since t=1 (the 5), though the 5 itself is forgotten.
        for (s, v) in [(0, 0.0), (1, 5.0), (2, 3.0), (3, 4.0)] {
            h.push(at(base, s), v);
        }
        assert_eq!(h.above_since(1.0), Some(BreachStart::At(at(base, 1))));
        assert_eq!(h.above_since(3.5), Some(BreachStart::At(at(base, 3))));
        assert_eq!(h.above_since(4.0), None);
    }

    #[test]
    fn a_dip_below_the_limit_restarts_the_breach() {
        let base = Instant::now();
        let mut h = BreachHistory::default();
        for (s, v) in [(0, 9.0), (1, 9.0), (2, 0.1), (3, 9.0), (4, 9.0)] {
            h.push(at(base, s), v);
        }
        assert_eq!(h.above_since(0.5), Some(BreachStart::At(at(base, 3))));
    }

    #[test]
    fn above_for_all_of_history_says_so() {
        let base = Instant::now();
        let mut h = BreachHistory::default();
        for s in 0..10 {
            h.push(at(base, s), 10.0 + s as f64);
        }
        assert_eq!(h.above_since(1.0), Some(BreachStart::BeforeHistory(base)));
    }

    proptest! {
        /// Against a brute-force scan of the full series.
        #[test]
        fn agrees_with_brute_force(values in prop::collection::vec(0u8..20, 1..120), limit in 0u8..20) {
            let base = Instant::now();
            let mut h = BreachHistory::default();
            for (i, v) in values.iter().enumerate() {
                h.push(at(base, i as u64), f64::from(*v));
            }
            let limit = f64::from(limit);
            let expected = if f64::from(*values.last().unwrap()) <= limit {
                None
            } else {
                match values.iter().rposition(|v| f64::from(*v) <= limit) {
                    Some(i) => Some(BreachStart::At(at(base, i as u64 + 1))),
                    None => Some(BreachStart::BeforeHistory(base)),
                }
            };
            prop_assert_eq!(h.above_since(limit), expected);
        }
    }
}
