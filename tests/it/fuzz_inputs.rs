//! Every fuzz seed and every input that once made a fuzz target fail, run
//! through the targets' own checks (`fuzz/checks.rs`, the very functions the
//! fuzz targets call) on each `cargo test`: deterministic, no sanitizer
//! build, no luck needed to meet a known-bad input again.
//!
//! A crash the fuzzer finds goes to `fuzz/regressions/<target>/` once its
//! cause is fixed.

#[path = "../../fuzz/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

/// Run every input of every target; name each one that fails.
#[test]
fn seeds_and_past_failures_pass_every_fuzz_check() {
    let mut failed = Vec::new();
    let mut ran = 0;
    for (target, check) in checks::TARGETS {
        let seeds = inputs("seeds", target);
        assert!(!seeds.is_empty(), "fuzz/seeds/{target} has no seed");
        for file in seeds.iter().chain(&inputs("regressions", target)) {
            let data = std::fs::read(file).unwrap();
            ran += 1;
            if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failed.push(format!("{target} {}: {message}", file.display()));
            }
        }
    }
    assert!(failed.is_empty(), "{} of {ran} inputs failed:\n{}", failed.len(), failed.join("\n"));
}

/// The list of checks is the list of fuzz targets: a target added to
/// `fuzz/Cargo.toml` without its check here (or the reverse) fails.
#[test]
fn every_fuzz_target_has_its_check() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml")).unwrap();
    let mut declared: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.trim().strip_prefix("name = \""))
        .map(|n| n.trim_end_matches('"'))
        .filter(|n| *n != "replag-fuzz")
        .collect();
    declared.sort();
    let checked: Vec<&str> = checks::TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(declared, checked);
    for name in checked {
        let body =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fuzz/fuzz_targets/{name}.rs")))
                .unwrap();
        assert!(body.contains(&format!("checks::{name}(data)")), "fuzz_targets/{name}.rs does not call its check");
    }
}
