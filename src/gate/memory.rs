//! What gates remember of every link across snapshots: its lag over time,
//! so "over the limit for longer than `for`" can be answered. Snapshots stay
//! plain data; this memory follows them (one task, fed each snapshot the
//! engine publishes) and hands the server each snapshot with its tracks.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::watch;

use super::breach::BreachHistory;
use super::recent::RecentLag;
use crate::model::LinkId;
use crate::snapshot::Snapshot;

/// A link's lag history in the forms gates (and people) ask about.
#[derive(Debug, Clone, Default)]
pub struct LinkTrack {
    pub seconds: BreachHistory,
    pub bytes: BreachHistory,
    /// The last 15 minutes in 10 s buckets (status page, `/api/v1/history`).
    pub recent: RecentLag,
}

/// Each link's lag history as of one snapshot, in the order of its `links`.
#[derive(Debug, Clone, Default)]
pub struct Tracks(Vec<Arc<LinkTrack>>);

impl Tracks {
    /// The track of the snapshot's `i`-th link.
    pub fn of(&self, i: usize) -> Option<&LinkTrack> {
        self.0.get(i).map(Arc::as_ref)
    }
}

impl FromIterator<Arc<LinkTrack>> for Tracks {
    /// Tracks for a snapshot's links, in order (fixtures and benches).
    fn from_iter<I: IntoIterator<Item = Arc<LinkTrack>>>(iter: I) -> Self {
        Tracks(iter.into_iter().collect())
    }
}

/// Every link's track, by link.
#[derive(Debug, Default)]
pub struct Memory {
    tracks: HashMap<LinkId, Arc<LinkTrack>>,
    /// The first snapshot's moment: every link's recent buckets align to it.
    origin: Option<std::time::Instant>,
}

impl Memory {
    /// Extend each link's history with the snapshot's lag (at the moment the
    /// snapshot describes); forget links that are gone.
    pub fn observe(&mut self, snapshot: &Snapshot) -> Tracks {
        let mut current = HashSet::with_capacity(snapshot.links.len());
        let mut tracks = Vec::with_capacity(snapshot.links.len());
        let origin = *self.origin.get_or_insert(snapshot.taken);
        for link in &snapshot.links {
            let track = self.tracks.entry(link.id.clone()).or_default();
            let t = Arc::make_mut(track);
            let lag = link.gate_lag();
            if let Some(lag) = lag {
                t.seconds.push(snapshot.taken, lag.seconds);
                t.bytes.push(snapshot.taken, lag.bytes as f64);
            }
            t.recent.push(origin, snapshot.taken, lag.map(|l| l.seconds), link.up);
            tracks.push(track.clone());
            current.insert(&link.id);
        }
        self.tracks.retain(|id, _| current.contains(id));
        Tracks(tracks)
    }
}

/// A snapshot and the gates' memory of its links: what the server reads.
#[derive(Debug)]
pub struct Tracked {
    pub snapshot: Arc<Snapshot>,
    pub tracks: Tracks,
}

impl Tracked {
    pub fn new(snapshot: Arc<Snapshot>) -> Self {
        Tracked { snapshot, tracks: Tracks::default() }
    }
}

/// Follow the engine's snapshots, publishing each with its tracks, until
/// the engine stops.
pub async fn follow(mut snapshots: watch::Receiver<Arc<Snapshot>>, publish: watch::Sender<Arc<Tracked>>) {
    let mut memory = Memory::default();
    while snapshots.changed().await.is_ok() {
        let snapshot = snapshots.borrow_and_update().clone();
        // Microseconds for a usual fleet; off the async workers only when big.
        let tracks = if snapshot.links.len() >= crate::offload::HEAVY_LINKS {
            crate::offload::heavy(|| memory.observe(&snapshot))
        } else {
            memory.observe(&snapshot)
        };
        publish.send_replace(Arc::new(Tracked { snapshot, tracks }));
    }
}
