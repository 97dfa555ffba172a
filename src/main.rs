//! The `replag` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = replag::cli::Cli::parse();
    replag::logging::init(cli.log_level(), cli.log_format());
    replag::cli::run(cli)
}
