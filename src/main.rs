//! The `replag` command line: `serve` and `check`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;

use clap::{Parser, Subcommand};
use tokio::sync::{mpsc, watch};

use replag::config::{self, Config};
use replag::lag::{self, Engine};
use replag::snapshot::Snapshot;
use replag::{check, poller, server};

#[derive(Parser)]
#[command(name = "replag", version, about = "Replication lag in bytes and seconds, across regions")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// TLS and basic auth for replag's own HTTP server (Prometheus exporter web config format).
        #[arg(long = "web.config.file", env = "REPLAG_WEB_CONFIG_FILE")]
        web_config: Option<PathBuf>,
    },
    /// Poll every node twice, print nodes and links; exit 1 if a node is unreachable.
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Ask a running replag (or Prometheus) whether a gate passes: exit 0 pass, 1 fail, 2 cannot evaluate.
    Gate(Box<GateArgs>),
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
    /// Fail a link whose lag stays above this (e.g. 500ms).
    #[arg(long)]
    max_lag: Option<String>,
    /// Fail a link whose lag stays above this many bytes (e.g. 16MiB).
    #[arg(long)]
    max_lag_bytes: Option<String>,
    /// How long a link may be over a limit before it fails (0: right now).
    #[arg(long = "for")]
    hold: Option<String>,
    /// Data older than this fails.
    #[arg(long)]
    max_data_age: Option<String>,
    /// Only these systems (repeatable): postgres, redis.
    #[arg(long)]
    system: Vec<String>,
    /// Only these link kinds (repeatable): physical, logical, replica.
    #[arg(long)]
    kind: Vec<String>,
    #[arg(long)]
    source_region: Vec<String>,
    #[arg(long)]
    replica_region: Vec<String>,
    /// Only these links (repeatable): source->replica, or a replica name.
    #[arg(long)]
    link: Vec<String>,
    /// Ask again until the gate passes or this much time has passed.
    #[arg(long, value_parser = humantime::parse_duration)]
    wait: Option<std::time::Duration>,
    /// Time between questions while waiting.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    every: std::time::Duration,
    /// Print the full JSON verdict instead of the short report.
    #[arg(long)]
    json: bool,
}

impl GateArgs {
    fn into_request(self) -> Result<replag::gate_client::GateRequest, String> {
        let mut params = Vec::new();
        for (key, value) in [
            ("max_lag", self.max_lag),
            ("max_lag_bytes", self.max_lag_bytes),
            ("for", self.hold),
            ("max_data_age", self.max_data_age),
        ] {
            if let Some(value) = value {
                params.push((key.to_string(), value));
            }
        }
        for (key, values) in [
            ("system", self.system),
            ("kind", self.kind),
            ("source_region", self.source_region),
            ("replica_region", self.replica_region),
            ("link", self.link),
        ] {
            params.extend(values.into_iter().map(|v| (key.to_string(), v)));
        }
        if self.name.is_some() && !params.is_empty() {
            return Err("a named gate takes no limit or scope options; drop the name for an ad-hoc gate".into());
        }
        let prometheus = match self.prometheus {
            None => None,
            Some(_) if self.name.is_some() => {
                return Err("--prometheus takes an ad-hoc gate: give its limits and scope as options, not a name".into())
            }
            Some(url) => {
                let pairs = params.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                let spec =
                    replag::gate::GateSpec::from_pairs(None, pairs, replag::gate_prometheus::DEFAULT_MAX_DATA_AGE)
                        .map_err(|e| e.to_string())?;
                Some((replag::gate_prometheus::PrometheusSource { url, selector: self.selector }, spec))
            }
        };
        Ok(replag::gate_client::GateRequest {
            prometheus,
            url: self.url,
            name: self.name,
            params,
            wait: self.wait,
            every: self.every.max(std::time::Duration::from_millis(100)),
            json: self.json,
        })
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REPLAG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn load(arg: &ConfigArg) -> Result<Config, ExitCode> {
    config::load(arg.config.as_deref()).map_err(|e| {
        eprintln!("replag: {e}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("replag: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Serve { config, listen, web_config } => match load(&config) {
                Ok(mut cfg) => {
                    if let Some(listen) = listen {
                        cfg.listen = listen;
                    }
                    let security = match web_config.as_deref().map(replag::web_security::WebSecurity::open) {
                        None => None,
                        Some(Ok(s)) => Some(Arc::new(s)),
                        Some(Err(e)) => {
                            eprintln!("replag: --web.config.file: {e}");
                            return ExitCode::from(2);
                        }
                    };
                    serve(cfg, config.config.clone(), security).await
                }
                Err(code) => code,
            },
            Command::Gate(args) => match (*args).into_request() {
                Ok(request) => replag::gate_client::run(request).await,
                Err(message) => {
                    eprintln!("replag gate: {message}");
                    ExitCode::from(2)
                }
            },
            Command::Healthcheck { url } => healthcheck(&url).await,
            Command::Check { config } => match load(&config) {
                Ok(cfg) => {
                    let snapshot = check::run(&cfg).await;
                    print!("{}", check::report(&snapshot));
                    if snapshot.nodes.iter().all(|n| n.up) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(code) => code,
            },
        }
    })
}

async fn serve(
    cfg: Config,
    config_path: Option<PathBuf>,
    security: Option<Arc<replag::web_security::WebSecurity>>,
) -> ExitCode {
    let listener = match server::bind(cfg.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("replag: cannot listen on {} (server.listen): {e}", cfg.listen);
            return ExitCode::from(2);
        }
    };
    let local = listener.local_addr().map_or(cfg.listen.to_string(), |a| a.to_string());
    let started = SystemTime::now();
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(Snapshot::empty(started)));
    let (report_tx, report_rx) = mpsc::channel(4096);
    let (reconfigure_tx, reconfigure_rx) = mpsc::channel(4);
    let mut pollers = poller::spawn_all(&cfg.nodes, cfg.poll, report_tx);
    let engine = tokio::spawn(lag::run(
        Engine::new(cfg.nodes.clone(), started),
        report_rx,
        reconfigure_rx,
        snapshot_tx,
        lag::publish_gap(cfg.poll.interval),
    ));
    let gates_of = |cfg: &Config, last_reload| {
        Arc::new(server::Gates {
            default_max_data_age: cfg.default_max_data_age(),
            named: cfg.gates.clone(),
            last_reload,
            shard: cfg.shard,
        })
    };
    let (gates_tx, gates_rx) = watch::channel(gates_of(&cfg, None));
    if let Some(s) = cfg.shard {
        tracing::info!(
            shard = s.shard.index,
            count = s.shard.count,
            nodes = cfg.nodes.len(),
            of = s.nodes_total,
            groups = s.groups,
            "sharded: polling this shard's replication groups only"
        );
    }
    tracing::info!(
        listen = %local,
        nodes = cfg.nodes.len(),
        interval = %humantime::format_duration(cfg.poll.interval),
        "replag serving /metrics, /gate, /healthz, /api/v1/status"
    );
    // SIGHUP: load the config again; take it whole or keep the old one.
    let reloader = tokio::spawn(async move {
        #[cfg(unix)]
        {
            let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
            let mut listen = cfg.listen;
            while hangup.recv().await.is_some() {
                match config::load(config_path.as_deref()) {
                    Ok(new) => {
                        if new.listen != listen {
                            tracing::warn!(listen = %new.listen, "server.listen changes take a restart; still listening on the old address");
                        }
                        listen = new.listen;
                        let (tx, rx) = mpsc::channel(4096);
                        for task in pollers.drain(..) {
                            task.abort();
                        }
                        // Gates first: a snapshot of the new nodes never meets the old gates.
                        gates_tx.send_replace(gates_of(&new, Some((true, SystemTime::now()))));
                        pollers = poller::spawn_all(&new.nodes, new.poll, tx);
                        if reconfigure_tx
                            .send(lag::Reconfigure { specs: new.nodes.clone(), reports: rx })
                            .await
                            .is_err()
                        {
                            return;
                        }
                        tracing::info!(nodes = new.nodes.len(), gates = new.gates.len(), "config reloaded");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "config reload refused; the previous config stays in force");
                        let mut kept = (*gates_tx.borrow()).as_ref().clone();
                        kept.last_reload = Some((false, SystemTime::now()));
                        gates_tx.send_replace(Arc::new(kept));
                    }
                }
            }
        }
        #[cfg(not(unix))]
        let _ = (cfg, config_path, pollers, reconfigure_tx, gates_tx);
    });
    let result = server::serve(listener, snapshot_rx, gates_rx, security, shutdown_signal()).await;
    reloader.abort();
    engine.abort();
    match result {
        Ok(()) => {
            tracing::info!("shut down");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

async fn healthcheck(url: &str) -> ExitCode {
    let endpoint = format!("{}/healthz", url.trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build();
    match client.map(|c| c.get(&endpoint)) {
        Ok(request) => match request.send().await {
            Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
            Ok(r) => {
                eprintln!("replag healthcheck: {endpoint} answered {}", r.status());
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("replag healthcheck: {}", replag::sources::error_chain(&e));
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("replag healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
