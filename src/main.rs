//! The `replag` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = replag::cli::Cli::parse();
    replag::logging::init(cli.log_level(), cli.log_format());
    replag::cli::run(cli)
}

/// glibc gives each thread that allocates an arena of its own (up to 8 per
/// core), and memory freed in one is not reused by another: with 2,000
/// nodes polled from tokio's workers and renders on blocking threads, RSS
/// was 180 MiB where two arenas hold it at 130 (docs/performance.md). The
/// polling is I/O-bound, so two arenas cost no measurable contention.
/// `MALLOC_ARENA_MAX` in the environment still decides when set.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before
        // any thread is started.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
