//! Turns consecutive sets of role facts into failover events, and each set
//! into what is at risk right now. Generic: it reads `RoleFact`s and links,
//! never a system's own words. While nothing fails it updates one record
//! per primary in place and allocates nothing per node.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::event::{Event, EventKind, EventNode};
use super::journal::Journal;
use crate::model::{to_unix, HaRecord, LinkId, LinkKind, LinkView, Primary, Role, RoleFact, System};
use crate::systems::position_text;

/// A primary unreachable this long is recorded as lost (a poll timing out
/// once is not an event).
pub const LOST_AFTER: Duration = Duration::from_secs(5);
/// Two primaries of one group for this long are a split brain (a promotion
/// and the old primary's demotion can overlap for a moment).
pub const SPLIT_BRAIN_AFTER: Duration = Duration::from_secs(2);
/// Events kept in memory (and served); the journal keeps them all.
const EVENTS_KEPT: usize = 10_000;

/// Per system (by `System as usize`), per node name.
type BySystem<T> = [FxHashMap<String, T>; System::ALL.len()];

/// What the tracker remembers of a node that was a primary.
#[derive(Debug)]
struct PrimaryRecord {
    region: String,
    group: String,
    generation: String,
    position: u64,
    position_at: Instant,
    last_write: Option<(Instant, Instant)>,
    first_write: Option<(Instant, Instant)>,
    last_seen: Instant,
    /// First seen unreachable in the current outage.
    down_since: Option<Instant>,
    lost_event: Option<u64>,
    /// A promotion took over from it.
    successor: Option<Successor>,
    /// The last heartbeat replag wrote on it: `(source, sequence)`.
    heartbeat_written: Option<(String, u64)>,
    /// The event of its own promotion, and whether that event has the HA
    /// manager's record yet (Patroni writes it after the promotion).
    promoted_in: Option<u64>,
    ha_known: bool,
}

#[derive(Debug)]
struct Successor {
    node: String,
    event: u64,
    switch_at: u64,
    /// The old primary came back (as primary or replica) and was seen.
    seen_back: bool,
}

/// A replica's last figures, for a promotion without the server's switch
/// point, and for the first writes of a promoted node.
#[derive(Debug, Clone, Copy)]
struct Following {
    received: Option<u64>,
    mark: Option<u64>,
    seen_at: Instant,
}

#[derive(Debug)]
struct SplitRecord {
    since: Instant,
    event: Option<u64>,
    seen: bool,
}

/// What is at risk on one link whose primary is unreachable.
#[derive(Debug, Clone, Serialize)]
pub struct AtRisk {
    #[serde(flatten)]
    pub link: LinkId,
    /// The primary's last seen position minus what the replica has
    /// received: at least this much is not on the replica (the primary may
    /// have written more after it was last seen).
    pub at_risk_bytes: u64,
    /// Received by the replica but not yet replayed (visible); None where
    /// the system does not tell the two apart.
    pub unreplayed_bytes: Option<u64>,
    /// Seconds since the primary was last read.
    pub primary_last_seen_seconds: f64,
    /// The link was up until the primary was lost (false: it went down or
    /// silent earlier, so the replica stopped receiving before the end).
    pub stream_live_to_end: bool,
}

/// A primary replag cannot reach, not (yet) replaced.
#[derive(Debug, Clone, Serialize)]
pub struct LostPrimary {
    pub system: System,
    pub node: String,
    pub node_region: String,
    pub group: String,
    pub last_seen_seconds: f64,
    pub unreachable_seconds: f64,
    pub last_position: u64,
    pub last_position_text: String,
}

/// Two primaries of one group, now.
#[derive(Debug, Clone, Serialize)]
pub struct SplitBrain {
    pub system: System,
    pub group: String,
    /// The side whose writes will be thrown away (the older generation),
    /// where known.
    pub old_primary: String,
    pub new_primary: String,
    pub since_seconds: f64,
    /// What the old side wrote past the switch point, as last seen.
    pub diverged_bytes: Option<u64>,
}

/// The failover picture one snapshot carries.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FailoverView {
    pub primaries_unreachable: Vec<LostPrimary>,
    pub data_at_risk: Vec<AtRisk>,
    pub split_brains: Vec<SplitBrain>,
    /// Every event kept, newest first (served at /api/v1/events).
    #[serde(skip)]
    pub events: Arc<Vec<Event>>,
}

pub struct Tracker {
    journal: Journal,
    /// Oldest first.
    events: Vec<Event>,
    shared: Arc<Vec<Event>>,
    next_id: u64,
    /// By system, then node name (Fx: hashing names was most of the
    /// tracker's cost per snapshot with SipHash).
    primaries: BySystem<PrimaryRecord>,
    following: BySystem<Following>,
    splits: HashMap<(System, String, String), SplitRecord>,
    /// Scratch: the groups of this snapshot's primaries (hashed), kept to
    /// reuse its memory.
    groups_seen: FxHashSet<u64>,
}

impl Tracker {
    /// A tracker that continues `events` (read back from `journal`).
    pub fn new(journal: Journal, mut events: Vec<Event>) -> Tracker {
        events.sort_by_key(|e| e.id);
        let next_id = events.last().map_or(1, |e| e.id + 1);
        let mut tracker = Tracker {
            journal,
            events,
            shared: Arc::default(),
            next_id,
            primaries: Default::default(),
            following: Default::default(),
            splits: HashMap::new(),
            groups_seen: FxHashSet::default(),
        };
        tracker.publish();
        tracker
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// What is known before any poll: the events read back from the
    /// journal (a restarted replag serves them from its first moment, not
    /// from its first snapshot).
    pub fn known(&self) -> FailoverView {
        FailoverView { events: self.shared.clone(), ..FailoverView::default() }
    }

    fn publish(&mut self) {
        if self.events.len() > EVENTS_KEPT {
            let excess = self.events.len() - EVENTS_KEPT;
            self.events.drain(..excess);
        }
        self.shared = Arc::new(self.events.iter().rev().cloned().collect());
    }

    fn record(&mut self, event: Event) -> u64 {
        let id = event.id;
        self.journal.append(&event);
        self.events.push(event);
        id
    }

    /// Change event `id` and write its new version.
    fn amend(&mut self, id: u64, change: impl FnOnce(&mut Event)) {
        if let Some(event) = self.events.iter_mut().rev().find(|e| e.id == id) {
            change(event);
            self.journal.append(event);
        }
    }

    fn new_event(&mut self, kind: EventKind, system: System, group: &str, at: f64) -> Event {
        let id = self.next_id;
        self.next_id += 1;
        Event::new(id, kind, system, group, at)
    }

    /// Take one snapshot's facts and links; say what is at risk now.
    pub fn observe<D>(
        &mut self,
        facts: &[RoleFact],
        links: &[LinkView<D>],
        now: Instant,
        wall: SystemTime,
    ) -> FailoverView {
        let clock = Clock { now, wall };
        let before = self.events.len();
        let mut changed = false;
        // Primaries first: a promotion and the old primary's turn to follow
        // can both show in one snapshot (a Cluster's manual failover takes
        // milliseconds), and the promotion must still find the old record.
        for fact in facts {
            match &fact.role {
                Role::Primary(p) if fact.up => changed |= self.primary_up(fact, p, clock),
                Role::Primary(_) => changed |= self.primary_down(fact, clock),
                Role::Replica(_) => {}
            }
        }
        for fact in facts {
            if let Role::Replica(r) = &fact.role {
                let following = Following { received: r.received.or(r.replayed), mark: r.mark, seen_at: fact.seen_at };
                self.following[fact.system as usize].insert_if_changed(&fact.node, following);
                changed |= self.now_replica(fact, clock);
            }
        }
        changed |= self.write_gaps(clock);
        let split_brains = self.split_brains(facts, clock, &mut changed);
        if changed || self.events.len() != before {
            self.publish();
        }
        let (primaries_unreachable, data_at_risk) = self.at_risk(facts, links, clock);
        FailoverView { primaries_unreachable, data_at_risk, split_brains, events: self.shared.clone() }
    }

    fn primary_up(&mut self, fact: &RoleFact, p: &Primary, clock: Clock) -> bool {
        let records = &mut self.primaries[fact.system as usize];
        if let Some(record) = records.get_mut(fact.node.as_str()).filter(|r| r.generation == p.generation) {
            record.position = p.position;
            record.position_at = p.position_at;
            record.last_write = p.last_write.or(record.last_write);
            record.first_write = record.first_write.or(p.first_write);
            // Its last read: the poll, or a position read after it.
            record.last_seen = fact.seen_at.max(p.position_at);
            record.group.clone_from(&fact.group);
            if let Some(written) = fact.heartbeats.as_ref().and_then(|h| h.written.as_ref()) {
                match &mut record.heartbeat_written {
                    Some(known) => known.clone_from(written),
                    None => record.heartbeat_written = Some(written.clone()),
                }
            }
            let ha = p.switch.as_ref().and_then(|s| s.record.as_deref()).filter(|_| !record.ha_known).cloned();
            let ha = ha.zip(record.promoted_in);
            record.ha_known |= ha.is_some();
            let was_down = record.down_since.take().is_some();
            let lost = record.lost_event.take().filter(|_| was_down);
            // Back from an outage on its old generation: seen to its end.
            // (One that never went away is still writing: its figure is
            // final when it stops being a primary.)
            let back = record.successor.as_mut().filter(|s| !s.seen_back && was_down).map(|s| {
                s.seen_back = true;
                (s.event, s.switch_at)
            });
            let position = p.position;
            let mut changed = false;
            if let Some((ha, id)) = ha {
                self.join_ha_record(fact.system, id, ha);
                changed = true;
            }
            if let Some(id) = lost {
                self.amend(id, |e| e.ended_at = Some(clock.unix(fact.seen_at)));
                changed = true;
            }
            if let Some((id, switch_at)) = back {
                // Seen to its end: everything it has past the switch point.
                self.amend(id, |e| {
                    e.lost_bytes = Some(position.saturating_sub(switch_at));
                    e.lost_bytes_exact = true;
                    e.old_primary_position = Some(position);
                    e.old_primary_position_text = Some(position_text(fact.system, position));
                    e.summary = failover_summary(e, true);
                });
                changed = true;
            }
            return changed;
        }
        self.new_generation(fact, p, clock)
    }

    /// The HA manager's record of promotion `id`, come after the event: its
    /// switch point replaces an estimate (and the lost bytes follow it).
    fn join_ha_record(&mut self, system: System, id: u64, ha: HaRecord) {
        let switch = ha.switch_position;
        let mut estimated = false;
        self.amend(id, |e| {
            if !e.switch_exact {
                estimated = true;
                e.switch_position = Some(switch);
                e.switch_text = Some(ha.switch_text.clone());
                e.switch_exact = true;
                if let Some(old) = e.old_primary_position {
                    e.lost_bytes = Some(old.saturating_sub(switch));
                }
                let old_up = e.summary.ends_with("; the old primary is up");
                e.summary = failover_summary(e, old_up);
            }
            e.ha = Some(ha);
        });
        if estimated {
            for r in self.primaries[system as usize].values_mut() {
                if let Some(s) = r.successor.as_mut().filter(|s| s.event == id) {
                    s.switch_at = switch;
                }
            }
        }
    }

    /// A node seen as primary of a generation replag did not know it on:
    /// a promotion if another node was primary of the generation it
    /// branched from (or, without the server's word, of its group).
    fn new_generation(&mut self, fact: &RoleFact, p: &Primary, clock: Clock) -> bool {
        let system = fact.system;
        let records = &mut self.primaries[system as usize];
        let old = p
            .switch
            .as_ref()
            .and_then(|sw| {
                // Within the group: PostgreSQL timelines are numbers every
                // cluster counts from 1 (Redis IDs are random; their group
                // may be empty on both sides).
                records.iter().find(|(n, r)| {
                    *n != &fact.node
                        && r.successor.is_none()
                        && r.generation == sw.from_generation
                        && r.group == fact.group
                })
            })
            .or_else(|| {
                // Without the server's word, only a node last seen following
                // (not a primary restarted empty, which starts a generation of
                // its own) took over from its group's primary.
                let was_replica = !records.contains_key(fact.node.as_str())
                    && self.following[system as usize].contains_key(fact.node.as_str());
                (was_replica && !fact.group.is_empty()).then_some(()).and_then(|()| {
                    records.iter().find(|(n, r)| *n != &fact.node && r.successor.is_none() && r.group == fact.group)
                })
            })
            .map(|(n, _)| n.clone());
        // What it was last seen to hold as a replica; it is a primary now.
        let following = self.following[system as usize].remove(fact.node.as_str());
        let opened = p.opened;
        let mut record = PrimaryRecord {
            region: fact.region.clone(),
            group: fact.group.clone(),
            generation: p.generation.clone(),
            position: p.position,
            position_at: p.position_at,
            last_write: p.last_write,
            first_write: p.first_write,
            last_seen: fact.seen_at.max(p.position_at),
            down_since: None,
            lost_event: None,
            successor: None,
            heartbeat_written: fact.heartbeats.as_ref().and_then(|h| h.written.clone()),
            promoted_in: None,
            ha_known: false,
        };
        // Writes between the candidate's last read as a replica and the
        // first read as primary: its first write was in that interval.
        if let (Some(f), Some((opened_at, opened_mark))) = (following, opened) {
            if f.mark.is_some_and(|m| m != opened_mark) {
                record.first_write = Some((f.seen_at, opened_at));
            }
        }
        let Some(old_node) = old else {
            // The same node on a generation of its own (restarted empty):
            // its outage, if any, is over.
            let ended = records.insert(fact.node.clone(), record).and_then(|r| r.lost_event);
            if let Some(id) = ended {
                self.amend(id, |e| e.ended_at = Some(clock.unix(fact.seen_at)));
                return true;
            }
            return false;
        };
        let (switch_at, switch_exact) = match &p.switch {
            Some(sw) => (Some(sw.at), sw.exact),
            None => (following.and_then(|f| f.received), false),
        };
        let old_record = &records[&old_node];
        let mut event = Event::new(0, EventKind::Failover, system, &old_record.group, clock.unix(clock.now));
        event.from = Some(EventNode { node: old_node.clone(), region: old_record.region.clone() });
        event.to = Some(EventNode { node: fact.node.clone(), region: fact.region.clone() });
        event.primary_lost_at = old_record.down_since.map(|t| clock.unix(t));
        event.primary_last_seen_at = Some(clock.unix(old_record.last_seen));
        event.promotion_after_seconds =
            old_record.down_since.map(|t| clock.now.saturating_duration_since(t).as_secs_f64());
        event.from_generation = Some(old_record.generation.clone());
        event.to_generation = Some(p.generation.clone());
        event.switch_position = switch_at;
        event.switch_text = switch_at.map(|at| position_text(system, at));
        event.switch_exact = switch_exact;
        event.ha = p.switch.as_ref().and_then(|s| s.record.as_deref()).cloned();
        event.old_primary_position = Some(old_record.position);
        event.old_primary_position_text = Some(position_text(system, old_record.position));
        event.lost_bytes = switch_at.map(|at| old_record.position.saturating_sub(at));
        event.lost_bytes_exact = false;
        // Heartbeats are microseconds of replag's wall clock.
        event.lost_window_seconds = old_record.heartbeat_written.as_ref().and_then(|(source, written)| {
            let seen = fact.heartbeats.as_ref()?.seen(source)?;
            Some(written.saturating_sub(seen) as f64 / 1e6)
        });
        let old_up = old_record.down_since.is_none()
            && old_record.last_seen >= fact.seen_at.checked_sub(Duration::from_secs(5)).unwrap_or(fact.seen_at);
        let lost_event = old_record.lost_event;
        let id = self.next_id;
        self.next_id += 1;
        event.id = id;
        event.summary = failover_summary(&event, old_up);
        record.promoted_in = Some(id);
        record.ha_known = event.ha.is_some();
        let records = &mut self.primaries[system as usize];
        if let Some(old_record) = records.get_mut(&old_node) {
            old_record.successor = Some(Successor {
                node: fact.node.clone(),
                event: id,
                switch_at: switch_at.unwrap_or(old_record.position),
                seen_back: false,
            });
        }
        records.insert(fact.node.clone(), record);
        tracing::warn!(system = system.as_str(), from = %old_node, to = %fact.node, lost_bytes = ?event.lost_bytes, "failover: {}", event.summary);
        self.record(event);
        if let Some(lost) = lost_event {
            let at = clock.unix(clock.now);
            self.amend(lost, |e| e.ended_at = Some(at));
        }
        true
    }

    fn primary_down(&mut self, fact: &RoleFact, clock: Clock) -> bool {
        let system = fact.system;
        let Some(record) = self.primaries[system as usize].get_mut(fact.node.as_str()) else {
            return false;
        };
        let since = *record.down_since.get_or_insert(clock.now);
        if record.lost_event.is_some()
            || record.successor.is_some()
            || clock.now.saturating_duration_since(since) < LOST_AFTER
        {
            return false;
        }
        let mut event = Event::new(0, EventKind::PrimaryLost, system, &record.group, clock.unix(since));
        event.from = Some(EventNode { node: fact.node.clone(), region: record.region.clone() });
        event.primary_lost_at = Some(clock.unix(since));
        event.primary_last_seen_at = Some(clock.unix(record.last_seen));
        event.from_generation = Some(record.generation.clone());
        event.old_primary_position = Some(record.position);
        event.old_primary_position_text = Some(position_text(system, record.position));
        event.summary = format!(
            "{} unreachable since {} (last seen at {})",
            fact.node,
            crate::model::rfc3339(clock.system_time(since)),
            position_text(system, record.position)
        );
        let id = self.next_id;
        self.next_id += 1;
        event.id = id;
        record.lost_event = Some(id);
        tracing::warn!(system = system.as_str(), node = %fact.node, "primary lost: {}", event.summary);
        self.record(event);
        true
    }

    /// A node replag knew as a primary follows another now: an old primary
    /// that rejoined (a switchover when nothing was lost), or a demotion.
    fn now_replica(&mut self, fact: &RoleFact, clock: Clock) -> bool {
        let records = &mut self.primaries[fact.system as usize];
        let Some(record) = records.remove(fact.node.as_str()) else { return false };
        if let Some(id) = record.lost_event {
            self.amend(id, |e| e.ended_at = Some(clock.unix(fact.seen_at)));
        }
        let Some(successor) = record.successor.filter(|s| !s.seen_back) else { return record.lost_event.is_some() };
        // Watched without a break until it followed: its last position as
        // a primary is its end. Back from an outage as a replica: what it
        // was last seen to have is a bound (it may have written more).
        let watched_to_the_end = record.down_since.is_none();
        let lost = record.position.saturating_sub(successor.switch_at);
        self.amend(successor.event, |e| {
            if lost == 0 {
                e.kind = EventKind::Switchover;
            }
            e.lost_bytes = Some(lost);
            e.lost_bytes_exact = watched_to_the_end || lost == 0;
            e.old_primary_position = Some(record.position);
            e.old_primary_position_text = Some(position_text(fact.system, record.position));
            e.ended_at.get_or_insert(clock.unix(fact.seen_at));
            e.summary = failover_summary(e, false);
        });
        true
    }

    /// Fill in write gaps once the new primary has taken a write.
    fn write_gaps(&mut self, clock: Clock) -> bool {
        let mut found = Vec::new();
        for records in &self.primaries {
            for old in records.values() {
                let Some(successor) = &old.successor else { continue };
                let Some(new) = records.get(&successor.node) else { continue };
                let (Some(last), Some(first)) = (old.last_write, new.first_write) else { continue };
                let gap = mid(first).saturating_duration_since(mid(last)).as_secs_f64();
                found.push((successor.event, gap));
            }
        }
        let mut changed = false;
        for (id, gap) in found {
            if self.events.iter().rev().find(|e| e.id == id).is_some_and(|e| e.write_gap_seconds.is_none()) {
                self.amend(id, |e| e.write_gap_seconds = Some(gap));
                changed = true;
            }
        }
        let _ = clock;
        changed
    }

    /// Primaries of one group (or of one lineage) up at once.
    fn split_brains(&mut self, facts: &[RoleFact], clock: Clock, changed: &mut bool) -> Vec<SplitBrain> {
        // While nothing fails: one primary per group, none taken over from,
        // no split open — found without building anything.
        self.groups_seen.clear();
        let mut shared_group = false;
        for fact in facts.iter().filter(|f| f.up && !f.group.is_empty() && f.primary().is_some()) {
            let mut hasher = FxHasher::default();
            (fact.system, fact.group.as_str()).hash(&mut hasher);
            shared_group |= !self.groups_seen.insert(hasher.finish());
        }
        let superseded = self.primaries.iter().flat_map(FxHashMap::values).any(|r| r.successor.is_some());
        if !shared_group && !superseded && self.splits.is_empty() {
            return Vec::new();
        }
        for split in self.splits.values_mut() {
            split.seen = false;
        }
        let mut by_group: HashMap<(System, &str), Vec<&RoleFact>> = HashMap::new();
        for fact in facts.iter().filter(|f| f.up && f.primary().is_some()) {
            by_group.entry((fact.system, fact.group.as_str())).or_default().push(fact);
        }
        let mut pairs = Vec::new();
        // Unrelated primaries of one group (no promotion links them: a
        // server restarted empty, say) are two primaries only once both
        // take writes; a node and the one promoted in its place are at once.
        let writes = |f: &RoleFact| f.primary().is_some_and(|p| p.last_write.is_some());
        for ((system, group), members) in &by_group {
            if !group.is_empty() && members.len() > 1 {
                for (i, a) in members.iter().enumerate() {
                    for b in &members[i + 1..] {
                        if writes(a) && writes(b) {
                            pairs.push((*system, a.node.as_str(), b.node.as_str()));
                        }
                    }
                }
            }
        }
        // Lineage: an old primary still up beside the node that took over from it.
        let up: HashMap<(System, &str), &RoleFact> =
            facts.iter().filter(|f| f.up && f.primary().is_some()).map(|f| ((f.system, f.node.as_str()), f)).collect();
        for (system, records) in System::ALL.into_iter().zip(&self.primaries) {
            for (node, record) in records {
                if let Some(s) = &record.successor {
                    if up.contains_key(&(system, node.as_str())) && up.contains_key(&(system, s.node.as_str())) {
                        pairs.push((system, node.as_str(), s.node.as_str()));
                    }
                }
            }
        }
        let mut current = Vec::new();
        let mut new_events = Vec::new();
        for (system, a, b) in pairs {
            // The old side: the one a promotion took over from.
            let records = Some(&self.primaries[system as usize]);
            let superseded =
                |n: &str| records.and_then(|r| r.get(n)).and_then(|r| r.successor.as_ref()).map(|s| s.node.as_str());
            let (old, new) = if superseded(b) == Some(a) { (b, a) } else { (a, b) };
            let key = (system, old.to_string(), new.to_string());
            if current.iter().any(|(k, _)| k == &key) {
                continue;
            }
            let old_record = records.and_then(|r| r.get(old));
            let diverged = old_record.and_then(|r| {
                r.successor.as_ref().filter(|s| s.node == new).map(|s| r.position.saturating_sub(s.switch_at))
            });
            let group = up.get(&(system, old)).map_or(String::new(), |f| f.group.clone());
            let split =
                self.splits.entry(key.clone()).or_insert(SplitRecord { since: clock.now, event: None, seen: true });
            split.seen = true;
            if clock.now.saturating_duration_since(split.since) < SPLIT_BRAIN_AFTER {
                continue;
            }
            if split.event.is_none() {
                new_events.push((key.clone(), group.clone(), diverged, split.since));
            }
            current.push((
                key,
                SplitBrain {
                    system,
                    group,
                    old_primary: old.to_string(),
                    new_primary: new.to_string(),
                    since_seconds: clock.now.saturating_duration_since(split.since).as_secs_f64(),
                    diverged_bytes: diverged,
                },
            ));
        }
        for (key, group, diverged, since) in new_events {
            let (system, old, new) = &key;
            let mut event = self.new_event(EventKind::SplitBrain, *system, &group, clock.unix(since));
            let region = |n: &str| {
                facts.iter().find(|f| f.system == *system && f.node == n).map_or(String::new(), |f| f.region.clone())
            };
            event.from = Some(EventNode { node: old.clone(), region: region(old) });
            event.to = Some(EventNode { node: new.clone(), region: region(new) });
            event.diverged_bytes = diverged;
            event.summary = format!(
                "{old} and {new} are both primaries{}",
                diverged.map_or(String::new(), |d| format!(
                    "; {old} wrote {d} bytes past the switch point that will be thrown away"
                ))
            );
            tracing::error!(system = system.as_str(), old = %old, new = %new, "split brain: {}", event.summary);
            let id = self.record(event);
            if let Some(split) = self.splits.get_mut(&key) {
                split.event = Some(id);
            }
            *changed = true;
        }
        let ended: Vec<_> = self.splits.iter().filter(|(_, s)| !s.seen).map(|(k, s)| (k.clone(), s.event)).collect();
        for (key, event) in ended {
            self.splits.remove(&key);
            if let Some(id) = event {
                self.amend(id, |e| e.ended_at = Some(clock.unix(clock.now)));
                *changed = true;
            }
        }
        current.into_iter().map(|(_, s)| s).collect()
    }

    /// Lost primaries and, for each of their links, what the replica lacks.
    fn at_risk<D>(&self, facts: &[RoleFact], links: &[LinkView<D>], clock: Clock) -> (Vec<LostPrimary>, Vec<AtRisk>) {
        let mut lost = Vec::new();
        for (system, records) in System::ALL.into_iter().zip(&self.primaries) {
            for (node, r) in records {
                let Some(since) = r.down_since.filter(|_| r.successor.is_none()) else { continue };
                lost.push((system, node.as_str(), r, since));
            }
        }
        if lost.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let mut primaries = Vec::new();
        let mut risks = Vec::new();
        for (system, node, record, since) in lost {
            let unreachable = clock.now.saturating_duration_since(since).as_secs_f64();
            let last_seen = clock.now.saturating_duration_since(record.last_seen).as_secs_f64();
            primaries.push(LostPrimary {
                system,
                node: node.to_string(),
                node_region: record.region.clone(),
                group: record.group.clone(),
                last_seen_seconds: last_seen,
                unreachable_seconds: unreachable,
                last_position: record.position,
                last_position_text: position_text(system, record.position),
            });
            for link in links.iter().filter(|l| l.id.system == system && l.id.source == node) {
                let replica = facts.iter().find(|f| f.system == system && f.node == link.id.replica);
                let (at_risk, unreplayed) = match replica.and_then(RoleFact::replica) {
                    Some(r) if link.id.kind != LinkKind::Logical => {
                        let received = r.received.or(r.replayed);
                        let unreplayed = r.received.zip(r.replayed).map(|(rc, rp)| rc.saturating_sub(rp));
                        (received.map(|rc| record.position.saturating_sub(rc)), unreplayed)
                    }
                    // A subscriber or a replica replag cannot read: the link's own bytes.
                    _ => (link.lag.map(|l| l.bytes), None),
                };
                let Some(at_risk_bytes) = at_risk else { continue };
                let link_down = link.down_seconds.unwrap_or(0.0);
                risks.push(AtRisk {
                    link: link.id.clone(),
                    at_risk_bytes,
                    unreplayed_bytes: unreplayed,
                    primary_last_seen_seconds: last_seen,
                    // Down no longer than the primary has been (give or take its last read).
                    stream_live_to_end: link_down <= last_seen + 1.0,
                });
            }
        }
        primaries.sort_by(|a, b| (a.system, &a.node).cmp(&(b.system, &b.node)));
        risks.sort_by(|a, b| {
            (a.link.system, &a.link.source, &a.link.replica).cmp(&(b.link.system, &b.link.source, &b.link.replica))
        });
        (primaries, risks)
    }
}

/// One line for a failover or switchover, from its figures as they stand.
fn failover_summary(e: &Event, old_up: bool) -> String {
    let from = e.from.as_ref().map_or("?", |n| n.node.as_str());
    let to = e.to.as_ref().map_or("?", |n| n.node.as_str());
    let lost = match (e.lost_bytes, e.lost_bytes_exact) {
        (Some(0), _) => "nothing lost as far as replag saw".to_string(),
        (Some(b), true) => format!("{b} bytes lost"),
        (Some(b), false) => format!("at least {b} bytes lost"),
        (None, _) => "lost bytes unknown".to_string(),
    };
    let old = match (e.kind, old_up) {
        (EventKind::Switchover, _) => "; the old primary follows the new one",
        (_, true) => "; the old primary is up",
        _ => "",
    };
    format!("{to} took over from {from}: {lost}{old}")
}

fn mid((a, b): (Instant, Instant)) -> Instant {
    a + (b.saturating_duration_since(a)) / 2
}

/// The snapshot's moment on both clocks: monotonic instants to Unix time.
#[derive(Debug, Clone, Copy)]
struct Clock {
    now: Instant,
    wall: SystemTime,
}

impl Clock {
    fn system_time(&self, t: Instant) -> SystemTime {
        self.wall.checked_sub(self.now.saturating_duration_since(t)).unwrap_or(self.wall)
    }

    fn unix(&self, t: Instant) -> f64 {
        to_unix(self.system_time(t))
    }
}

trait InsertIfChanged {
    fn insert_if_changed(&mut self, node: &str, following: Following);
}

impl InsertIfChanged for FxHashMap<String, Following> {
    /// No allocation for a node already known.
    fn insert_if_changed(&mut self, node: &str, following: Following) {
        match self.get_mut(node) {
            Some(known) => *known = following,
            None => {
                self.insert(node.to_string(), following);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Replica, Switch};

    struct Lab {
        tracker: Tracker,
        start: Instant,
        wall: SystemTime,
    }

    fn primary(node: &str, generation: &str, position: u64, at: Instant, switch: Option<(&str, u64)>) -> RoleFact {
        RoleFact {
            system: System::Postgres,
            node: node.into(),
            region: format!("{node}-region"),
            group: "42".into(),
            up: true,
            seen_at: at,
            role: Role::Primary(Primary {
                generation: generation.into(),
                position,
                position_at: at,
                last_write: Some((at - Duration::from_millis(20), at)),
                first_write: None,
                switch: switch.map(|(from, at)| Switch { from_generation: from.into(), at, exact: true, record: None }),
                opened: None,
            }),
            heartbeats: None,
        }
    }

    fn replica(node: &str, position: u64, at: Instant) -> RoleFact {
        RoleFact {
            system: System::Postgres,
            node: node.into(),
            region: format!("{node}-region"),
            group: "42".into(),
            up: true,
            seen_at: at,
            role: Role::Replica(Replica { received: Some(position), replayed: Some(position), mark: None }),
            heartbeats: None,
        }
    }

    fn down(mut fact: RoleFact) -> RoleFact {
        fact.up = false;
        fact
    }

    impl Lab {
        fn new() -> Lab {
            Lab {
                tracker: Tracker::new(Journal::new(None), Vec::new()),
                start: Instant::now(),
                wall: SystemTime::now(),
            }
        }

        fn at(&self, seconds: f64) -> Instant {
            self.start + Duration::from_secs_f64(seconds)
        }

        fn see(&mut self, seconds: f64, facts: &[RoleFact]) -> FailoverView {
            let links: Vec<LinkView<()>> = Vec::new();
            let wall = self.wall + Duration::from_secs_f64(seconds);
            self.tracker.observe(facts, &links, self.at(seconds), wall)
        }

        fn kinds(&self) -> Vec<EventKind> {
            self.tracker.events().iter().map(|e| e.kind).collect()
        }
    }

    #[test]
    fn a_promotion_after_a_loss_is_a_failover_with_its_loss_bounded_then_exact() {
        let mut lab = Lab::new();
        let start = lab.start;
        let t = |s: f64| start + Duration::from_secs_f64(s);
        let (p0, r0) = (primary("a", "1", 1000, t(0.0), None), replica("b", 1000, t(0.0)));
        lab.see(0.0, &[p0.clone(), r0.clone()]);
        let p1 = primary("a", "1", 5000, t(1.0), None);
        lab.see(1.0, &[p1.clone(), replica("b", 3000, t(1.0))]);
        // a dies: down for less than LOST_AFTER is no event yet.
        lab.see(3.0, &[down(p1.clone()), replica("b", 3000, t(3.0))]);
        assert!(lab.kinds().is_empty());
        lab.see(8.5, &[down(p1.clone()), replica("b", 3000, t(8.5))]);
        assert_eq!(lab.kinds(), vec![EventKind::PrimaryLost]);
        // b promoted at 3000.
        let b = primary("b", "2", 3100, t(9.0), Some(("1", 3000)));
        lab.see(9.0, &[down(p1.clone()), b.clone()]);
        assert_eq!(lab.kinds(), vec![EventKind::PrimaryLost, EventKind::Failover]);
        let failover = &lab.tracker.events()[1];
        assert_eq!((failover.lost_bytes, failover.lost_bytes_exact), (Some(2000), false));
        assert_eq!(failover.from.as_ref().unwrap().node, "a");
        assert!(lab.tracker.events()[0].ended_at.is_some(), "the loss ended with the promotion");
        // a back on its old generation, further along: seen to its end, and a split brain.
        let back = primary("a", "1", 5200, t(10.0), None);
        let view = lab.see(10.0, &[back.clone(), b.clone()]);
        assert!(view.split_brains.is_empty(), "not before SPLIT_BRAIN_AFTER");
        let failover = &lab.tracker.events()[1];
        assert_eq!((failover.lost_bytes, failover.lost_bytes_exact), (Some(2200), true));
        let view = lab.see(12.5, &[back.clone(), b.clone()]);
        assert_eq!(view.split_brains.len(), 1);
        assert_eq!(view.split_brains[0].old_primary, "a");
        assert_eq!(view.split_brains[0].diverged_bytes, Some(2200));
        assert_eq!(lab.kinds().last(), Some(&EventKind::SplitBrain));
        // a rewound and following b: the split brain is over.
        let view = lab.see(14.0, &[replica("a", 3100, t(14.0)), b]);
        assert!(view.split_brains.is_empty());
        assert!(lab.tracker.events().last().unwrap().ended_at.is_some());
    }

    #[test]
    fn an_old_primary_that_follows_with_nothing_lost_makes_it_a_switchover() {
        let mut lab = Lab::new();
        let start = lab.start;
        let t = |s: f64| start + Duration::from_secs_f64(s);
        lab.see(0.0, &[primary("a", "1", 1000, t(0.0), None), replica("b", 1000, t(0.0))]);
        let stopped = down(primary("a", "1", 1000, t(0.0), None));
        lab.see(1.0, &[stopped.clone(), replica("b", 1100, t(1.0))]);
        let b = primary("b", "2", 1200, t(2.0), Some(("1", 1100)));
        lab.see(2.0, &[stopped, b.clone()]);
        assert_eq!(lab.kinds(), vec![EventKind::Failover]);
        lab.see(3.0, &[replica("a", 1200, t(3.0)), b]);
        let e = &lab.tracker.events()[0];
        assert_eq!((e.kind, e.lost_bytes, e.lost_bytes_exact), (EventKind::Switchover, Some(0), true));
    }

    #[test]
    fn a_promotion_and_the_old_primary_following_in_one_snapshot_is_a_switchover() {
        let mut lab = Lab::new();
        let start = lab.start;
        let t = |s: f64| start + Duration::from_secs_f64(s);
        lab.see(0.0, &[replica("b", 1000, t(0.0)), primary("a", "1", 1000, t(0.0), None)]);
        // The old primary is listed first: it follows already when its
        // successor's promotion is read.
        lab.see(1.0, &[replica("a", 1000, t(1.0)), primary("b", "2", 1000, t(1.0), Some(("1", 1000)))]);
        let e = &lab.tracker.events()[0];
        assert_eq!((e.kind, e.lost_bytes, e.lost_bytes_exact), (EventKind::Switchover, Some(0), true));
    }

    #[test]
    fn another_cluster_on_the_same_timeline_is_not_the_old_primary() {
        let mut lab = Lab::new();
        let start = lab.start;
        let t = |s: f64| start + Duration::from_secs_f64(s);
        let mut other = primary("subscriber", "1", 9000, t(0.0), None);
        other.group = "77".into();
        lab.see(0.0, &[other.clone(), primary("a", "1", 1000, t(0.0), None), replica("b", 1000, t(0.0))]);
        let lost = down(primary("a", "1", 1000, t(0.0), None));
        lab.see(1.0, &[other.clone(), lost.clone(), primary("b", "2", 1000, t(1.0), Some(("1", 1000)))]);
        let e = &lab.tracker.events()[0];
        assert_eq!(e.from.as_ref().unwrap().node, "a", "{e:?}");
        assert_eq!(e.group, "42");
        let view = lab.see(4.0, &[other, lost, primary("b", "2", 1000, t(4.0), Some(("1", 1000)))]);
        assert!(view.split_brains.is_empty(), "a cluster of its own is no second primary");
    }

    #[test]
    fn a_primary_restarted_empty_beside_the_group_primary_is_no_failover_and_no_split_until_both_write() {
        let mut lab = Lab::new();
        let start = lab.start;
        let t = |s: f64| start + Duration::from_secs_f64(s);
        let a = primary("a", "1", 1000, t(0.0), None);
        lab.see(0.0, std::slice::from_ref(&a));
        let mut empty = primary("c", "9", 0, t(1.0), None);
        if let Role::Primary(p) = &mut empty.role {
            p.last_write = None;
        }
        lab.see(1.0, &[a.clone(), empty.clone()]);
        let view = lab.see(5.0, &[a.clone(), empty.clone()]);
        assert!(lab.kinds().is_empty(), "{:?}", lab.kinds());
        assert!(view.split_brains.is_empty());
        // Someone writes to it: two primaries of one group take writes.
        let writing = primary("c", "9", 300, t(6.0), None);
        lab.see(6.0, &[a.clone(), writing.clone()]);
        let view = lab.see(8.5, &[a, writing]);
        assert_eq!(view.split_brains.len(), 1);
        assert_eq!(lab.kinds(), vec![EventKind::SplitBrain]);
    }

    #[test]
    fn events_continue_their_journal_numbering_and_keep_nothing_per_node_while_nothing_fails() {
        let old = Event::new(41, EventKind::Failover, System::Redis, "orders", 1.0);
        let mut tracker = Tracker::new(Journal::new(None), vec![old]);
        assert_eq!(tracker.next_id, 42);
        let now = Instant::now();
        let links: Vec<LinkView<()>> = Vec::new();
        let facts = [primary("a", "1", 10, now, None), replica("b", 10, now)];
        let view = tracker.observe(&facts, &links, now, SystemTime::now());
        assert!(view.data_at_risk.is_empty() && view.primaries_unreachable.is_empty());
        assert_eq!(view.events.len(), 1);
    }
}
