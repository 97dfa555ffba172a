//! Deploy gates: "is replication healthy enough to proceed?".
//!
//! - `spec`: the parameters (limits, `for`, data age, scope), defined and
//!   parsed once for config, CLI, HTTP and the Prometheus gate;
//! - `breach`, `recent` and `memory`: each link's lag over time, kept beside
//!   the snapshots (`recent`: the last 15 minutes, for people);
//! - `evaluate`: the semantics over replag's own snapshot;
//! - `prometheus`: the same semantics over Prometheus' samples (all shards);
//! - `client`: `replag gate`, for shells and pipelines.

pub mod breach;
pub mod client;
pub mod evaluate;
pub mod memory;
pub mod prometheus;
pub mod recent;
pub mod spec;

pub use evaluate::{evaluate, CannotEvaluate, LinkVerdict, Verdict};
pub use memory::{LinkTrack, Tracked, Tracks};
pub use spec::{GateError, GateParams, GateSpec, Scope};
