//! replag: replication lag, in bytes and seconds, for systems spread across
//! regions. Data flows one way: config → pollers → engine → snapshot →
//! HTTP and gates. Modules, from the bottom up (each uses only those above
//! it in this list):
//!
//! - `model`: the shared vocabulary (systems, link identity, nodes, views);
//! - `lag`: position histories and what every system's link rules share;
//! - `exposition`: writing Prometheus text;
//! - `offload`: heavy work off the async workers;
//! - `systems`: one folder per system, and the one place that lists them;
//! - `failover`: role facts → events, data at risk, promotion verdicts;
//! - `snapshot`: what the engine saw, as plain data;
//! - `gate`: gate parameters, memory, semantics, Prometheus gate, client;
//! - `config`: the TOML file and environment, validated (and sharding);
//! - `poller`: one task per node;
//! - `engine`: reports in, snapshots out;
//! - `http`: server, `/metrics`, status page, web security;
//! - `supervisor`: `replag serve` wired together, and SIGHUP reloads;
//! - `cli`, `logging`, `error`: the command line.
//!
//! See docs/architecture.md.

pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod exposition;
pub mod failover;
pub mod gate;
pub mod http;
pub mod lag;
pub mod logging;
pub mod model;
pub mod offload;
pub mod poller;
pub mod snapshot;
pub mod supervisor;
pub mod systems;
