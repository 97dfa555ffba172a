//! Every integration test in one binary: each file here is a module (its
//! tests are named `file::test`, e.g. `truth::lag_below_…`), sharing the
//! harness in `common`. One binary links once: 23 of them linked the whole
//! crate and its dependencies 23 times, about a minute of every CI run.

mod common;

mod deploy;
mod failover;
mod filer_sync;
mod fuzz_inputs;
mod gate;
mod golden;
mod layout;
mod lifecycle;
mod observability;
mod page;
mod partitions;
mod patroni;
mod postgres_logical;
mod postgres_physical;
mod postgres_tls;
mod redis_replication;
mod redis_topology;
mod seaweedfs;
mod shards;
mod soak;
mod truth;
mod wan;
mod web_security;
