//! `replag serve` wired together — pollers → engine → gates' memory →
//! server — and the SIGHUP reload: take a valid config whole (new pollers,
//! new nodes for the engine, new gates), or refuse an invalid one and keep
//! the old. [`Running::reload`] is the reload itself, testable without
//! signals or a process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{self, Config, ConfigError};
use crate::engine::{self, Engine, Joined, Reconfigure};
use crate::error::Error;
use crate::gate::memory::{self, Tracked};
use crate::http::security::WebSecurity;
use crate::http::{self, InForce};
use crate::poller;
use crate::snapshot::Snapshot;

/// Reports waiting for the engine, per config: enough for every node of a
/// large fleet to report once without a poller waiting.
const REPORT_QUEUE: usize = 4096;

/// The background parts of a running replag, and what a reload changes.
pub struct Running {
    pollers: Vec<JoinHandle<()>>,
    /// Starts (and owns) the pollers of nodes that join by discovery.
    joiner: JoinHandle<()>,
    reconfigure: mpsc::Sender<Reconfigure>,
    in_force: watch::Sender<Arc<InForce>>,
    listen: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    /// Each snapshot with the gates' memory of its links: what the server reads.
    pub tracked: watch::Receiver<Arc<Tracked>>,
}

impl Running {
    /// Start polling `cfg`'s nodes, the engine and the gates' memory.
    pub fn start(cfg: &Config) -> Running {
        let started = SystemTime::now();
        let failover = failover_tracker(cfg);
        let mut empty = Snapshot::empty(started);
        empty.failover = failover.known();
        let empty = Arc::new(empty);
        let (snapshot_tx, snapshot_rx) = watch::channel(empty.clone());
        let (tracked_tx, tracked_rx) = watch::channel(Arc::new(Tracked::new(empty)));
        let (report_tx, report_rx) = mpsc::channel(REPORT_QUEUE);
        let (reconfigure_tx, reconfigure_rx) = mpsc::channel(4);
        let (joins_tx, joins_rx) = mpsc::unbounded_channel();
        let joiner = tokio::spawn(poll_joined(joins_rx, cfg.poll, report_tx.clone()));
        let pollers = poller::spawn_all(&cfg.nodes, cfg.poll, report_tx);
        let engine = tokio::spawn(engine::run(
            Engine::new(cfg.nodes.clone(), started)
                .with_poll_interval(cfg.poll.interval)
                .with_joins(joins_tx)
                .with_failover(failover),
            report_rx,
            reconfigure_rx,
            snapshot_tx,
            engine::publish_gap(cfg.poll.interval),
        ));
        let gates = tokio::spawn(memory::follow(snapshot_rx, tracked_tx));
        let (in_force, _) = watch::channel(Arc::new(InForce::of(cfg, None)));
        Running {
            pollers,
            joiner,
            reconfigure: reconfigure_tx,
            in_force,
            listen: cfg.listen,
            tasks: vec![engine, gates],
            tracked: tracked_rx,
        }
    }

    /// The config in force, as the server reads it.
    pub fn in_force(&self) -> watch::Receiver<Arc<InForce>> {
        self.in_force.subscribe()
    }

    /// Take a newly loaded config whole, or keep the one in force if it did
    /// not load (and say so in `replag_config_last_reload_successful`).
    pub async fn reload(&mut self, loaded: Result<Config, ConfigError>) {
        match loaded {
            Ok(new) => {
                if new.listen != self.listen {
                    tracing::warn!(listen = %new.listen, "server.listen changes take a restart; still listening on the old address");
                }
                self.listen = new.listen;
                let (tx, rx) = mpsc::channel(REPORT_QUEUE);
                for task in self.pollers.drain(..) {
                    task.abort();
                }
                // Discovered nodes are discovered again from the new config.
                self.joiner.abort();
                let (joins_tx, joins_rx) = mpsc::unbounded_channel();
                self.joiner = tokio::spawn(poll_joined(joins_rx, new.poll, tx.clone()));
                // Gates first: a snapshot of the new nodes never meets the old gates.
                self.in_force.send_replace(Arc::new(InForce::of(&new, Some((true, SystemTime::now())))));
                self.pollers = poller::spawn_all(&new.nodes, new.poll, tx);
                let change = Reconfigure {
                    specs: new.nodes.clone(),
                    poll_interval: new.poll.interval,
                    reports: rx,
                    joins: Some(joins_tx),
                };
                if self.reconfigure.send(change).await.is_err() {
                    tracing::error!("the engine has stopped; the new config cannot take effect");
                    return;
                }
                tracing::info!(nodes = new.nodes.len(), gates = new.gates.len(), "config reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "config reload refused; the previous config stays in force");
                let mut kept = (**self.in_force.borrow()).clone();
                kept.last_reload = Some((false, SystemTime::now()));
                self.in_force.send_replace(Arc::new(kept));
            }
        }
    }
}

/// The failover tracker, with the events its journal kept. An unreadable
/// journal or a corrupt line is reported and skipped: events are figures
/// people keep, never a reason not to start.
fn failover_tracker(cfg: &Config) -> crate::failover::Tracker {
    let journal = crate::failover::Journal::new(cfg.events_journal.clone());
    let loaded = match journal.load() {
        Ok(loaded) => loaded,
        Err(e) => {
            let path = journal.path().map(|p| p.display().to_string()).unwrap_or_default();
            tracing::error!(path = %path, error = %e, "cannot read the events journal; starting without its events");
            Default::default()
        }
    };
    for (line, why) in &loaded.skipped {
        let path = journal.path().map(|p| p.display().to_string()).unwrap_or_default();
        tracing::warn!(path = %path, line, error = %why, "events journal: skipped a line that does not parse (a torn write?)");
    }
    if !loaded.events.is_empty() {
        tracing::info!(events = loaded.events.len(), "failover events read back from the journal");
    }
    crate::failover::Tracker::new(journal, loaded.events)
}

/// Dropping a `Running` stops its pollers, engine and gates' memory.
impl Drop for Running {
    fn drop(&mut self) {
        for task in self.pollers.iter().chain(&self.tasks).chain([&self.joiner]) {
            task.abort();
        }
    }
}

/// Poll each node the engine announces as joined by discovery. The pollers
/// live in a `JoinSet`: aborting this task (a reload, a shutdown) stops them.
async fn poll_joined(
    mut joins: mpsc::UnboundedReceiver<Joined>,
    settings: config::PollSettings,
    reports: mpsc::Sender<poller::Report>,
) {
    let mut pollers = tokio::task::JoinSet::new();
    while let Some(joined) = joins.recv().await {
        let source = joined.spec.target.source(settings.timeout, settings.connect_timeout);
        let name = joined.spec.name.clone();
        pollers.spawn(poller::run(joined.index, name, source, settings, std::time::Instant::now(), reports.clone()));
    }
}

/// `replag serve`: poll, serve until SIGTERM or SIGINT, reload on SIGHUP.
pub async fn serve(
    cfg: Config,
    config_path: Option<PathBuf>,
    security: Option<Arc<WebSecurity>>,
    telemetry_path: String,
) -> Result<(), Error> {
    let listener = http::bind(cfg.listen).await.map_err(|source| Error::Listen { addr: cfg.listen, source })?;
    let local = listener.local_addr().map_or(cfg.listen.to_string(), |a| a.to_string());
    let running = Running::start(&cfg);
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
        metrics = %telemetry_path,
        "replag serving metrics, /gate, /healthz, /api/v1/status and the status page at /"
    );
    let (tracked, in_force) = (running.tracked.clone(), running.in_force());
    let reloader = tokio::spawn(reload_on_hangup(running, config_path));
    let listener = listener.into_std().map_err(Error::Server)?;
    let (done, served) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("replag-http".into())
        .spawn(move || {
            let result = http_runtime().and_then(|runtime| {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    http::serve(listener, tracked, in_force, security, telemetry_path.into(), shutdown_signal()).await
                })
            });
            let _ = done.send(result);
        })
        .map_err(Error::Server)?;
    let result = served.await.unwrap_or_else(|_| Err(std::io::Error::other("the HTTP server's thread ended")));
    // Aborting the reloader drops `Running`: pollers and engine stop with it.
    reloader.abort();
    result.map_err(Error::Server)?;
    tracing::info!("shut down");
    Ok(())
}

/// The HTTP server's own runtime. Every poll of a large fleet fires at the
/// same moment (so a primary and its standbys are read together), and on
/// the pollers' runtime a scrape arriving then queued behind 2,000 replies'
/// decoding; here it waits only for the OS. One worker: serving is light,
/// and a render (`offload::heavy`) hands the worker's other requests to a
/// blocking thread meanwhile.
fn http_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(4)
        .thread_name("replag-http")
        .enable_all()
        .build()
}

/// SIGHUP: load the config again; take it whole or keep the old one.
async fn reload_on_hangup(mut running: Running, config_path: Option<PathBuf>) {
    #[cfg(unix)]
    {
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            return std::future::pending().await;
        };
        while hangup.recv().await.is_some() {
            running.reload(config::load(config_path.as_deref())).await;
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (&mut running, config_path);
        std::future::pending::<()>().await;
    }
}

/// Resolves on SIGTERM or SIGINT.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_from, Source};
    use std::time::Duration;

    /// A config of Redis nodes nobody listens for (refused at once: each
    /// poll reports a failure, so snapshots come without any server).
    fn config_with(dir: &std::path::Path, nodes: &[&str], gate: &str) -> Result<Config, ConfigError> {
        let mut text = String::from("[poll]\ninterval = \"200ms\"\n");
        for name in nodes {
            text += &format!("[[regions.r1.redis]]\nname = \"{name}\"\nurl = \"redis://127.0.0.1:1\"\n");
        }
        text += gate;
        let file = dir.join(format!("replag-{}.toml", nodes.len()));
        std::fs::write(&file, text).unwrap();
        load_from(Source::File(&file), &Default::default())
    }

    async fn wait_for_nodes(running: &mut Running, names: &[&str]) {
        let wanted: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let seen: Vec<String> =
                    running.tracked.borrow().snapshot.nodes.iter().map(|n| n.name.clone()).collect();
                if seen == wanted && running.tracked.borrow().snapshot.nodes.iter().all(|n| n.polls_total > 0) {
                    return;
                }
                running.tracked.changed().await.unwrap();
            }
        })
        .await
        .unwrap_or_else(|_| panic!("snapshot with nodes {names:?}"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reload_takes_a_valid_config_whole_and_refuses_a_broken_one() {
        let dir = tempfile::tempdir().unwrap();
        let first = config_with(dir.path(), &["a"], "").unwrap();
        let mut running = Running::start(&first);
        let in_force = running.in_force();
        wait_for_nodes(&mut running, &["a"]).await;
        assert!(in_force.borrow().named.is_empty() && in_force.borrow().last_reload.is_none());

        let second = config_with(dir.path(), &["a", "b"], "[gates.deploy]\nmax_lag = \"1s\"\n");
        running.reload(second).await;
        assert_eq!(in_force.borrow().named.keys().collect::<Vec<_>>(), ["deploy"], "the new gates are in force");
        assert!(matches!(in_force.borrow().last_reload, Some((true, _))));
        wait_for_nodes(&mut running, &["a", "b"]).await;

        let broken = config_with(dir.path(), &["a", "b", "c"], "[gates.deploy]\nmax_lag = \"soon\"\n");
        assert!(broken.is_err());
        running.reload(broken).await;
        assert!(matches!(in_force.borrow().last_reload, Some((false, _))), "the refusal is visible");
        assert_eq!(in_force.borrow().named.keys().collect::<Vec<_>>(), ["deploy"], "the old gates stay");
        // Polling goes on with the nodes in force.
        let before = running.tracked.borrow().snapshot.nodes[1].polls_total;
        tokio::time::timeout(Duration::from_secs(10), async {
            while running.tracked.borrow().snapshot.nodes.get(1).map_or(0, |n| n.polls_total) <= before {
                running.tracked.changed().await.unwrap();
            }
        })
        .await
        .expect("node b is still polled after a refused reload");
        assert_eq!(running.tracked.borrow().snapshot.nodes.len(), 2);
    }
}
