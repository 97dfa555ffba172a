//! Failover, measured: from the role facts every system states
//! (`model::RoleFact`), what is at risk while a primary is unreachable,
//! whether a replica can be promoted, and events (`failover`,
//! `switchover`, `split_brain`, `primary_lost`) kept in a journal and
//! served, counted and reported. Generic: no system's words in here.

pub mod event;
pub mod journal;
pub mod metrics;
pub mod promote;
pub mod report;
pub mod tracker;

pub use event::{Event, EventKind, EventNode};
pub use journal::Journal;
pub use promote::{verdict, PromoteError, PromoteQuery, PromoteVerdict};
pub use tracker::{AtRisk, FailoverView, LostPrimary, SplitBrain, Tracker};
