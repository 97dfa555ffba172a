//! The vocabulary every part shares, below all of them: systems and link
//! kinds, a link's identity, nodes as configured, poll failures, the views a
//! snapshot is made of, and how config errors name their key. Nothing here
//! knows any one system's internals.

pub mod config;
mod failure;
mod heartbeat;
mod labels;
mod node;
mod role;
mod source;
mod text;
mod view;

pub use failure::{error_chain, scrub, FailureKind, PollFailure};
pub use heartbeat::{next_sequence, Heartbeat, Heartbeats};
pub use labels::{LinkId, LinkKind, System, UNKNOWN_REGION};
pub use node::{normalize_host, Node, NodeIndex, Revealed};
pub use role::{HaRecord, Primary, Replica, Role, RoleFact, Switch};
pub use source::{OpenPositionReader, PositionRead, PositionReader, Sampled, Source, SourcePosition};
pub use text::{quoted, rfc3339, table, to_unix, truncate};
pub use view::{as_object, Identity, LagView, LinkView, NodeView, SILENT};
