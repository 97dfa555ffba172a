//! replag's own heartbeats (opt-in, per node): on a source, replag writes an
//! increasing sequence number every poll; on a replica, it reads the latest
//! one of each source. Which write a replica lacks is then the lag —
//! end-to-end (it includes apply), independent of traffic, and skew-free:
//! replag both writes the sequence and times the write on its own clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// A node's heartbeat settings: who writes (one row or field per replag
/// instance) and under which source name this node writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// `heartbeat.writer`: distinguishes replag instances sharing sources.
    pub writer: String,
    /// This node's name: the key its heartbeats are written under.
    pub source: String,
}

/// What one poll wrote and saw of replag's heartbeats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Heartbeats {
    /// The sequence number written on this node in this poll (it was a
    /// source): `(source, sequence)`.
    pub written: Option<(String, u64)>,
    /// Each source's latest sequence this node holds.
    pub seen: Vec<(String, u64)>,
}

impl Heartbeats {
    pub fn seen(&self, source: &str) -> Option<u64> {
        self.seen.iter().find(|(s, _)| s == source).map(|(_, seq)| *seq)
    }
}

/// The next sequence number: increasing, and (as microseconds of the wall
/// clock) larger than any a previous run of replag wrote, so a restart never
/// looks like going backwards. Only ever compared with itself.
pub fn next_sequence(last: u64) -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
    now.max(last + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_increase_even_if_the_clock_does_not() {
        let a = next_sequence(0);
        assert!(next_sequence(a) > a);
        assert_eq!(next_sequence(u64::MAX - 1), u64::MAX);
    }
}
