//! A failover event as users keep it: JSON in the journal, in
//! `/api/v1/events` and in the drill report. Field names are a stable
//! contract (docs/api.md). Figures that are bounds say so.

use serde::{Deserialize, Serialize};

use crate::model::{HaRecord, System};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A replica was promoted after its primary was lost (or with data
    /// possibly lost).
    Failover,
    /// A promotion the old primary then followed, with nothing lost.
    Switchover,
    /// Two primaries of one group taking writes at once.
    SplitBrain,
    /// A primary unreachable long enough to matter (`LOST_AFTER`).
    PrimaryLost,
}

impl EventKind {
    pub const ALL: [EventKind; 4] =
        [EventKind::Failover, EventKind::Switchover, EventKind::SplitBrain, EventKind::PrimaryLost];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Failover => "failover",
            EventKind::Switchover => "switchover",
            EventKind::SplitBrain => "split_brain",
            EventKind::PrimaryLost => "primary_lost",
        }
    }
}

/// A node as an event names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventNode {
    pub node: String,
    pub region: String,
}

/// One event. Written again (same `id`) when later polls refine it: the
/// journal keeps every version, readers keep the last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique and increasing within a journal.
    pub id: u64,
    pub kind: EventKind,
    pub system: System,
    /// The replication group (PostgreSQL: system identifier; Redis: the
    /// Sentinel master, Cluster shard or config group; may be empty).
    pub group: String,
    /// The old primary (failover, switchover, split brain: the side whose
    /// writes will be thrown away; primary_lost: the primary).
    pub from: Option<EventNode>,
    /// The new primary.
    pub to: Option<EventNode>,
    /// When replag saw it happen (Unix seconds): the promotion, the loss,
    /// the second primary.
    pub at: f64,
    /// When replag first saw the old primary unreachable; None if it never
    /// was (a planned switchover seen before the stop, a split brain).
    pub primary_lost_at: Option<f64>,
    /// The old primary's last successful read.
    pub primary_last_seen_at: Option<f64>,
    /// From the primary's loss to replag seeing the promotion.
    pub promotion_after_seconds: Option<f64>,
    /// The generations (PostgreSQL timeline, Redis replication ID) before
    /// and after.
    pub from_generation: Option<String>,
    pub to_generation: Option<String>,
    /// Where the new generation branched off the old one, and whether the
    /// server said so (history file, `second_repl_offset`) or replag
    /// estimated it (the candidate's last received position).
    pub switch_position: Option<u64>,
    pub switch_text: Option<String>,
    pub switch_exact: bool,
    /// The old primary's last position replag saw, and as text.
    pub old_primary_position: Option<u64>,
    pub old_primary_position_text: Option<String>,
    /// What the old primary wrote past the switch point: lost on the new
    /// primary. Exact only when the old primary was seen to its end (it
    /// came back); otherwise at least this much (it may have written more
    /// after replag last saw it).
    pub lost_bytes: Option<u64>,
    pub lost_bytes_exact: bool,
    /// From the last write seen on the old primary to the first on the new
    /// one (None until the new primary takes a write).
    pub write_gap_seconds: Option<f64>,
    /// With replag's heartbeats on: how much older the new primary's newest
    /// heartbeat of the old primary is than the last one replag wrote
    /// there (heartbeats are replag's wall-clock microseconds, one a poll):
    /// the old primary's writes of about this long before it was lost are
    /// not on the new primary, to within a poll.
    #[serde(default)]
    pub lost_window_seconds: Option<f64>,
    /// Split brain: what the side to be thrown away wrote past the switch
    /// point (what pg_rewind would discard), as last seen.
    pub diverged_bytes: Option<u64>,
    /// The HA manager's own record of the switch (Patroni's `/history`),
    /// where it keeps one: its switch point, time and reason.
    #[serde(default)]
    pub ha: Option<HaRecord>,
    /// When it ended (split brain over, primary back or replaced).
    pub ended_at: Option<f64>,
    /// One line for people.
    pub summary: String,
}

impl Event {
    pub fn new(id: u64, kind: EventKind, system: System, group: &str, at: f64) -> Event {
        Event {
            id,
            kind,
            system,
            group: group.to_string(),
            from: None,
            to: None,
            at,
            primary_lost_at: None,
            primary_last_seen_at: None,
            promotion_after_seconds: None,
            from_generation: None,
            to_generation: None,
            switch_position: None,
            switch_text: None,
            switch_exact: false,
            old_primary_position: None,
            old_primary_position_text: None,
            lost_bytes: None,
            lost_bytes_exact: false,
            write_gap_seconds: None,
            lost_window_seconds: None,
            diverged_bytes: None,
            ha: None,
            ended_at: None,
            summary: String::new(),
        }
    }
}
