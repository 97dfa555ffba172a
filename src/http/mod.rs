//! replag's HTTP side: the server and its routes (`server`), the `/metrics`
//! exposition (`metrics`), the status page (`page`), the lag history API
//! (`history`), failover events and promotion verdicts (`failover`), and TLS with basic auth from an exporter web config
//! (`security`). Every handler reads the latest
//! snapshot; none queries a database.

mod failover;
pub mod history;
mod in_force;
pub mod metrics;
pub mod page;
pub mod security;
pub mod server;

pub use failover::parse_since;
pub use in_force::InForce;
pub use server::{bind, handle, serve, Served};
