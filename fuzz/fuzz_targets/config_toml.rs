//! Feeds TOML text to the config loader, `replag::config::load_from` with
//! `Source::File` (the input is written to a per-process temporary file) and
//! an empty environment. Checks: no panic. Inputs naming devices or FIFOs
//! are skipped (see common.rs).
#![no_main]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use replag::config::{load_from, Source};

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("replag-fuzz-config-{}.toml", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if !common::toml_is_safe(text) {
            return;
        }
    } // Not UTF-8: the loader cannot read it as TOML; still worth a run.
    let path = scratch();
    std::fs::write(path, data).expect("write scratch config");
    let env = HashMap::new();
    let _ = load_from(Source::File(path), &env);
});
