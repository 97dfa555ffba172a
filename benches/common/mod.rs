//! What every benchmark binary shares: the sizes measured, criterion's
//! settings, and a `main` that also works under `cargo test`.

use std::process::Command;
use std::time::Duration;

use criterion::Criterion;

/// Links in the topologies measured: a small, a large and a very large
/// deployment.
const LINK_COUNTS: [usize; 3] = [100, 1_000, 10_000];

/// The sizes to run. Under `cargo test` (criterion's `--test`) every
/// benchmark runs once, unoptimised, to check it still works: the smallest
/// size is enough for that, and the largest would take minutes.
pub fn link_counts() -> &'static [usize] {
    if std::env::args_os().any(|a| a == "--test") {
        &LINK_COUNTS[..1]
    } else {
        &LINK_COUNTS
    }
}

/// Regions nodes are spread over, as in a multi-region deployment.
pub const REGIONS: [&str; 3] = ["us-east", "eu-west", "ap-south"];

/// Short measurements, so that the whole `cargo bench` takes minutes on a
/// small machine: the figures are orders of magnitude, not regressions to a
/// percent. Ten samples (criterion's minimum) still hold thousands of
/// iterations for fast code, and bound the slowest benchmarks to ten.
fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .without_plots()
}

/// Run benchmark groups as `cargo bench` and `cargo test` both expect.
///
/// `cargo bench` passes `--bench`: criterion reads its own options and
/// measures. `cargo test --all-targets` runs bench targets too, with
/// libtest's options (CI passes `--show-output --test-threads 4`), and
/// criterion rejects `--test-threads`. Without `--bench`, criterion would
/// only run every benchmark once to check it works; so the binary runs
/// itself again with just criterion's `--test`, which does exactly that.
pub fn main(groups: &[fn(&mut Criterion)]) {
    let mode_given = std::env::args_os().any(|a| a == "--bench" || a == "--test");
    if !mode_given {
        let exe = std::env::current_exe().expect("path of the benchmark binary");
        let status = Command::new(exe).arg("--test").status().expect("benchmark binary runs");
        std::process::exit(status.code().unwrap_or(1));
    }
    let mut c = criterion().configure_from_args();
    for group in groups {
        group(&mut c);
    }
    c.final_summary();
}
