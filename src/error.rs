//! What can stop a replag command, and the exit code each means: 2 for
//! anything the user can fix in the command line or config (the same code
//! `replag gate` uses for "cannot evaluate"), 1 for failures at run time.

use std::net::SocketAddr;
use std::process::ExitCode;

use crate::model::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// Arguments that do not go together.
    #[error("{0}")]
    Usage(String),
    #[error("cannot listen on {addr} (server.listen): {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("--web.config.file: {0}")]
    WebConfig(String),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("server failed: {0}")]
    Server(std::io::Error),
}

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) | Error::Usage(_) | Error::Listen { .. } | Error::WebConfig(_) => ExitCode::from(2),
            Error::Runtime(_) | Error::Server(_) => ExitCode::FAILURE,
        }
    }
}
