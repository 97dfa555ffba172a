//! replag: replication lag, in bytes and seconds, for systems spread across
//! regions. Data flows one way: config → poller → sources → lag engine →
//! snapshot → server. See docs/architecture.md.

pub mod check;
pub mod config;
pub mod cpu;
pub mod gate;
pub mod gate_client;
pub mod gate_prometheus;
pub mod lag;
pub mod lsn;
pub mod metrics;
pub mod poller;
pub mod server;
pub mod shard;
pub mod snapshot;
pub mod sources;
pub mod topology;
pub mod web;
pub mod web_security;
