//! Positions to lag, and what every system's link rules share: the bounded
//! history of each source position stream and its conversion of a replica
//! position into bytes and seconds, the per-system view of the fleet, the
//! memory of discovered replicas, and liveness (when a link's periodic
//! message was last heard).

pub mod discovered;
pub mod fleet;
pub mod history;
pub mod liveness;

pub use discovered::DiscoveredLinks;
pub use fleet::{label, lag_of, Fleet, Histories, Member, StreamKey, Upstream};
pub use history::{capacity_for, Lag, PositionHistory, Pushed};
pub use liveness::{silence_margin, LastHeard};
