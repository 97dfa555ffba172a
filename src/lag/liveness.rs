//! Liveness: is the periodic message a link's protocol promises still
//! arriving? Judged by when replag saw a value change (a status reply's
//! timestamp, say) on its own monotonic clock — never by subtracting two
//! hosts' clocks. A value seen first at a poll changed at most one poll
//! earlier, so the silence replag reports is never longer than the real one.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Entries not observed for this long are forgotten (bounds memory when
/// links come and go).
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// Per key (a link), the last value seen and when replag first saw it.
#[derive(Debug)]
pub struct LastHeard<K> {
    seen: HashMap<K, Heard>,
}

#[derive(Debug, Clone, Copy)]
struct Heard {
    value: u64,
    since: Instant,
    observed: Instant,
}

impl<K> Default for LastHeard<K> {
    fn default() -> Self {
        LastHeard { seen: HashMap::new() }
    }
}

impl<K: Eq + Hash> LastHeard<K> {
    /// `value` observed at `at`: for how long replag has seen it unchanged.
    /// The first observation counts as a change.
    pub fn observe(&mut self, key: K, value: f64, at: Instant) -> Duration {
        let bits = value.to_bits();
        let heard = self.seen.entry(key).or_insert(Heard { value: bits, since: at, observed: at });
        if heard.value != bits {
            heard.value = bits;
            heard.since = at;
        }
        heard.observed = heard.observed.max(at);
        at.saturating_duration_since(heard.since)
    }

    /// Forget `key`: its next observation counts as a change (after an
    /// outage of the observer, silence counts anew).
    pub fn forget(&mut self, key: &K) {
        self.seen.remove(key);
    }

    /// Forget keys not observed for an hour.
    pub fn forget_stale(&mut self, now: Instant) {
        self.seen.retain(|_, h| now.saturating_duration_since(h.observed) < FORGET_AFTER);
    }
}

/// How long past its interval a periodic message may be before the link is
/// silent: two polls (replag sees a change up to one poll late, and a poll
/// may itself be late), and never less than 2 s.
pub fn silence_margin(poll_interval: Duration) -> Duration {
    (poll_interval * 2).max(Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_counts_from_the_first_sight_of_the_current_value() {
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let mut heard = LastHeard::default();
        assert_eq!(heard.observe("a", 100.0, s(0)), Duration::ZERO, "first sight is a change");
        assert_eq!(heard.observe("a", 100.0, s(3)), Duration::from_secs(3));
        assert_eq!(heard.observe("a", 110.0, s(4)), Duration::ZERO, "a new value resets");
        assert_eq!(heard.observe("a", 110.0, s(16)), Duration::from_secs(12));
        assert_eq!(heard.observe("b", 110.0, s(16)), Duration::ZERO, "keys are independent");
        heard.forget_stale(s(16) + FORGET_AFTER);
        assert_eq!(heard.observe("a", 110.0, s(16) + FORGET_AFTER), Duration::ZERO, "forgotten, seen anew");
    }

    #[test]
    fn margin_is_two_polls_and_at_least_two_seconds() {
        assert_eq!(silence_margin(Duration::from_millis(500)), Duration::from_secs(2));
        assert_eq!(silence_margin(Duration::from_secs(5)), Duration::from_secs(10));
    }
}
