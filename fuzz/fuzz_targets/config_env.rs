//! Feeds an environment to the config loader without a file:
//! `replag::config::load_from(Source::SeedEnvironment, env)`, i.e. the seeds'
//! `REGION`, `DATABASE_URL`, `REDIS_URL`, `SEAWEEDFS_MASTER` and any
//! `REPLAG_<KEY>__<KEY>` overrides. The input is `NAME=value` lines. Checks:
//! no panic. Inputs naming devices or FIFOs are skipped (see common.rs).
#![no_main]

mod common;

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use replag::config::{load_from, Source};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let env: HashMap<String, String> =
        text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if !env.values().all(|v| common::is_safe_path(v)) {
        return;
    }
    let _ = load_from(Source::SeedEnvironment, &env);
});
