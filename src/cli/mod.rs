//! The `replag` command line: `serve`, `check`, `gate`, `promote`,
//! `drill-report`, `healthcheck`.

pub mod check;
mod failover;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::error::Error;
use crate::gate::client::GateRequest;
use crate::gate::prometheus::{PrometheusSource, DEFAULT_MAX_DATA_AGE};
use crate::gate::GateParams;
use crate::http::security::WebSecurity;
use crate::logging::LogFormat;

/// `replag --version`: version, git revision, build date.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("REPLAG_GIT_REVISION"),
    ", built ",
    env!("REPLAG_BUILD_DATE"),
    ")"
);

#[derive(Parser)]
#[command(name = "replag", version = VERSION, about = "Replication lag in bytes and seconds, across regions")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log level or filter (debug, info, warn, error; or e.g. info,replag=debug). Default: $REPLAG_LOG, else info.
    #[arg(long = "log.level", global = true, value_parser = crate::logging::parse_level)]
    log_level: Option<String>,
    /// Log line format.
    #[arg(long = "log.format", global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

impl Cli {
    pub fn log_level(&self) -> Option<&str> {
        self.log_level.as_deref()
    }

    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }
}

#[derive(clap::Args)]
struct ConfigArg {
    /// TOML config file. Without one, the seeds' REGION and DATABASE_URL make a one-region config.
    #[arg(long, short, env = "REPLAG_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Poll in the background and serve /metrics, /healthz, /api/v1/status.
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// Listen address; overrides server.listen.
        #[arg(long, visible_alias = "web.listen-address")]
        listen: Option<std::net::SocketAddr>,
        /// Path of the Prometheus metrics (as exporters take it).
        #[arg(long = "web.telemetry-path", default_value = "/metrics", value_parser = telemetry_path)]
        telemetry_path: String,
        /// TLS and basic auth for replag's own HTTP server (Prometheus exporter web config format).
        #[arg(long = "web.config.file", env = "REPLAG_WEB_CONFIG_FILE")]
        web_config: Option<PathBuf>,
    },
    /// Poll every node twice, print nodes and links; exit 1 if a node is unreachable.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Only load and validate the config (nothing is polled): a summary and
        /// exit 0, or exit 2 naming the key that is wrong.
        #[arg(long)]
        config_only: bool,
    },
    /// Ask a running replag (or Prometheus) whether a gate passes: exit 0 pass, 1 fail, 2 cannot evaluate.
    Gate(Box<GateArgs>),
    /// Ask a running replag whether a replica can be promoted (it has everything its primary was seen to
    /// write): exit 0 yes, 1 no (with reasons), 2 cannot tell.
    Promote(failover::PromoteArgs),
    /// Print a markdown record of the failovers in a window (from a running replag, or its events journal).
    DrillReport(failover::DrillReportArgs),
    /// Exit 0 if a running replag answers /healthz (for container health checks).
    Healthcheck {
        #[arg(long, env = "REPLAG_URL", default_value = "http://127.0.0.1:8439")]
        url: String,
    },
}

#[derive(clap::Args)]
struct GateArgs {
    /// A gate defined in the config ([gates.NAME]); without it, an ad-hoc gate from the options.
    name: Option<String>,
    /// Where replag serves.
    #[arg(long, env = "REPLAG_URL", default_value = "http://127.0.0.1:8439")]
    url: String,
    /// Evaluate from this Prometheus (all shards and regions it scrapes) instead of asking --url.
    #[arg(long, env = "REPLAG_PROMETHEUS_URL")]
    prometheus: Option<String>,
    /// With --prometheus: label matchers every replag series must have, e.g. 'job="replag"'.
    #[arg(long, requires = "prometheus")]
    selector: Option<String>,
    #[command(flatten)]
    params: GateParams,
    /// Ask again until the gate passes or this much time has passed.
    #[arg(long, value_parser = humantime::parse_duration)]
    wait: Option<Duration>,
    /// Time between questions while waiting.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    every: Duration,
    /// Print the full JSON verdict instead of the short report.
    #[arg(long)]
    json: bool,
}

impl GateArgs {
    fn into_request(self) -> Result<GateRequest, Error> {
        if self.name.is_some() && !self.params.is_empty() {
            return Err(Error::Usage(
                "a named gate takes no limit or scope options; drop the name for an ad-hoc gate".into(),
            ));
        }
        let prometheus = match self.prometheus {
            None => None,
            Some(_) if self.name.is_some() => {
                return Err(Error::Usage(
                    "--prometheus takes an ad-hoc gate: give its limits and scope as options, not a name".into(),
                ))
            }
            Some(url) => {
                let spec = self.params.spec(None, DEFAULT_MAX_DATA_AGE).map_err(|e| Error::Usage(e.to_string()))?;
                Some((PrometheusSource { url, selector: self.selector }, spec))
            }
        };
        Ok(GateRequest {
            prometheus,
            url: self.url,
            name: self.name,
            params: self.params,
            wait: self.wait,
            every: self.every.max(Duration::from_millis(100)),
            json: self.json,
        })
    }
}

fn load(arg: &ConfigArg) -> Result<Config, Error> {
    Ok(config::load(arg.config.as_deref())?)
}

/// Run a parsed command line on a one-worker runtime (the HTTP server has
/// its own: `supervisor::serve`). A poll costs replag ~45 µs of CPU, so one
/// worker carries ~20,000 node-polls a second, far past where a process
/// should shard (docs/performance.md); a second worker cost 1–2 points of a
/// core more at 2,000 nodes in three A/B runs (tasks stolen and woken
/// across threads). Snapshots and renders run in `offload::heavy`, which
/// hands the worker's tasks to another thread meanwhile.
pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail("replag", Error::Runtime(e)),
    };
    runtime.block_on(async {
        match cli.command {
            Command::Serve { config, listen, web_config, telemetry_path } => {
                match serve(&config, listen, web_config, telemetry_path).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e @ Error::Server(_)) => {
                        tracing::error!(error = %e, "server failed");
                        e.exit_code()
                    }
                    Err(e) => fail("replag", e),
                }
            }
            Command::Gate(args) => match (*args).into_request() {
                Ok(request) => crate::gate::client::run(request).await,
                Err(e) => fail("replag gate", e),
            },
            Command::Healthcheck { url } => healthcheck(&url).await,
            Command::Promote(args) => failover::promote(args).await,
            Command::DrillReport(args) => failover::drill_report(args).await,
            Command::Check { config, config_only: true } => match load(&config) {
                Ok(cfg) => {
                    print!("{}", check::config_summary(&cfg));
                    ExitCode::SUCCESS
                }
                Err(e) => fail("replag", e),
            },
            Command::Check { config, config_only: false } => match load(&config) {
                Ok(cfg) => {
                    let snapshot = check::run(&cfg).await;
                    print!("{}", check::report(&snapshot));
                    if snapshot.nodes.iter().all(|n| n.up) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => fail("replag", e),
            },
        }
    })
}

fn fail(command: &str, error: Error) -> ExitCode {
    eprintln!("{command}: {error}");
    error.exit_code()
}

/// `--web.telemetry-path`: absolute, and not one of replag's other routes.
fn telemetry_path(value: &str) -> Result<String, String> {
    let taken =
        ["/", "/healthz", "/gate", "/promote", "/ui/live", "/api/v1/status", "/api/v1/events", "/api/v1/history"];
    if !value.starts_with('/') || value.contains(['?', '#']) || value.len() > 256 {
        return Err("must be an absolute path like /metrics".into());
    }
    if taken.contains(&value) || value.starts_with("/gate/") {
        return Err(format!("{value} is another of replag's endpoints"));
    }
    Ok(value.to_string())
}

async fn serve(
    config: &ConfigArg,
    listen: Option<std::net::SocketAddr>,
    web_config: Option<PathBuf>,
    telemetry_path: String,
) -> Result<(), Error> {
    let mut cfg = load(config)?;
    if let Some(listen) = listen {
        cfg.listen = listen;
    }
    let security = match web_config.as_deref().map(WebSecurity::open) {
        None => None,
        Some(Ok(s)) => Some(Arc::new(s)),
        Some(Err(e)) => return Err(Error::WebConfig(e)),
    };
    crate::supervisor::serve(cfg, config.config.clone(), security, telemetry_path).await
}

async fn healthcheck(url: &str) -> ExitCode {
    let endpoint = format!("{}/healthz", url.trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build();
    match client.map(|c| c.get(&endpoint)) {
        Ok(request) => match request.send().await {
            Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
            Ok(r) => {
                eprintln!("replag healthcheck: {endpoint} answered {}", r.status());
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("replag healthcheck: {}", crate::model::error_chain(&e));
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("replag healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}
