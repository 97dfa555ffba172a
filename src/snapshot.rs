//! The immutable picture the server reads: built by the engine after each
//! batch of polls and swapped in atomically. Plain data — what the engine
//! saw, nothing more: gates keep their own memory of lag over time
//! (`gate::memory`) and the server its render cache (`http::metrics`).
//! A scrape or API call reads one snapshot and never touches a database.

use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::failover::FailoverView;
use crate::model::{to_unix, NodeView, RoleFact};
use crate::systems::{Details, Link};

#[derive(Debug, Serialize)]
pub struct Snapshot {
    #[serde(serialize_with = "unix_seconds")]
    pub generated_at: SystemTime,
    #[serde(serialize_with = "unix_seconds")]
    pub started_at: SystemTime,
    pub nodes: Vec<NodeView>,
    pub links: Vec<Link>,
    /// Each system's own figures, under the system's name.
    #[serde(flatten)]
    pub details: Details,
    /// Primaries unreachable, what their replicas lack, split brains.
    pub failover: FailoverView,
    /// Every node's role facts (what `/promote` judges by).
    #[serde(skip)]
    pub roles: Vec<RoleFact>,
    /// The moment (monotonic) the snapshot describes.
    #[serde(skip)]
    pub taken: Instant,
}

impl Snapshot {
    /// Before the first poll has reported.
    pub fn empty(started_at: SystemTime) -> Self {
        Snapshot {
            generated_at: started_at,
            started_at,
            nodes: Vec::new(),
            links: Vec::new(),
            details: Details::default(),
            failover: FailoverView::default(),
            roles: Vec::new(),
            taken: Instant::now(),
        }
    }
}

fn unix_seconds<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(to_unix(*t))
}
