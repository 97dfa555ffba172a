//! The `redis_info` check of `fuzz/checks.rs` (what it feeds and asserts is
//! documented there; `tests/it/fuzz_inputs.rs` runs the seeds and past
//! failures through the same function on every `cargo test`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::redis_info(data));
