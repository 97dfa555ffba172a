//! One task per node: poll on the interval, bound each poll by the timeout,
//! back off while a node fails, and hand every result to the lag engine.
//! Nothing here runs on a scrape.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::PollSettings;
use crate::lag::StreamKey;
use crate::model::{FailureKind, OpenPositionReader, PollFailure, PositionReader, Sampled, Source, SourcePosition};
use crate::systems::{NodeSpec, Observation};

/// What a node's task hands the engine.
#[derive(Debug, Clone)]
pub enum Report {
    Polled(Box<NodeReport>),
    /// A source's position, read between polls.
    Sampled(PositionSample),
}

/// A source's position read alone between polls (`Source::sample_position`).
#[derive(Debug, Clone)]
pub struct PositionSample {
    pub node: usize,
    /// The stream the node's last poll said it is the source of.
    pub stream: StreamKey,
    pub at: Instant,
    pub source: SourcePosition,
}

/// The result of one poll of one node.
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// Index of the node in the configuration's node list.
    pub node: usize,
    /// When the poll finished (monotonic and wall clock).
    pub finished: Instant,
    pub finished_wall: SystemTime,
    pub duration: Duration,
    pub result: Result<Sampled<Observation>, PollFailure>,
}

/// Position samples per second the whole process may take, shared by every
/// source it samples: with more sources than `budget × sample_interval`
/// each is sampled less often, so the cost stays bounded however large the
/// fleet (docs/performance.md).
pub const SAMPLES_PER_SECOND: f64 = 1000.0;

/// Nodes of this process that were a source (one stream) at their last
/// poll, sampled or not: they share the budget.
static SOURCES: AtomicUsize = AtomicUsize::new(0);

/// Counts one source while its poller says it is one.
struct CountedSource;

impl CountedSource {
    fn new() -> Self {
        SOURCES.fetch_add(1, Ordering::Relaxed);
        CountedSource
    }
}

impl Drop for CountedSource {
    fn drop(&mut self) {
        SOURCES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The interval between one source's samples: the configured one, or
/// longer when the process's budget is shared by many sources.
pub fn sample_interval(configured: Duration, sources: usize) -> Duration {
    configured.max(Duration::from_secs_f64(sources as f64 / SAMPLES_PER_SECOND))
}

/// Sampling pays while each source is still read at least twice a poll
/// interval: beyond that (500 sources at 1 s polls) its samples would come
/// no more often than its polls, for a connection and a read each.
pub fn sampling_pays(settings: &PollSettings, sources: usize) -> bool {
    !settings.sample_interval.is_zero() && sample_interval(settings.sample_interval, sources) * 2 <= settings.interval
}

/// Start polling every node; reports go to `reports`. Tasks end when the
/// receiver is dropped (or when the handles are aborted).
pub fn spawn_all(nodes: &[NodeSpec], settings: PollSettings, reports: mpsc::Sender<Report>) -> Vec<JoinHandle<()>> {
    let start = Instant::now();
    nodes
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let (name, reports) = (spec.name.clone(), reports.clone());
            let source = spec.target.source(settings.timeout, settings.connect_timeout);
            tokio::spawn(run(index, name, source, settings, start, reports))
        })
        .collect()
}

/// Delay before the next poll after `failures` consecutive failures.
pub fn next_delay(settings: &PollSettings, failures: u32) -> Duration {
    if failures == 0 {
        return settings.interval;
    }
    let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
    settings.interval.saturating_mul(factor).min(settings.max_backoff)
}

/// Poll one node until the report channel closes (or the task is aborted);
/// while it is a source, a sampler reads its position beside the polls.
pub async fn run<S: Source<Observation = Observation>>(
    index: usize,
    name: String,
    mut source: S,
    settings: PollSettings,
    first_poll: Instant,
    reports: mpsc::Sender<Report>,
) {
    let mut failures = 0u32;
    let mut last_failure: Option<PollFailure> = None;
    let mut next = tokio::time::Instant::from_std(first_poll);
    let mut sampler: Option<Sampler> = None;
    let mut counted: Option<CountedSource> = None;
    loop {
        tokio::time::sleep_until(next).await;
        let started = Instant::now();
        // A new connection takes several round trips; a poll on one, one.
        let (limit, key) = if source.is_connected() {
            (settings.timeout, "poll.timeout")
        } else {
            (settings.connect_timeout + settings.timeout, "poll.connect_timeout + poll.timeout")
        };
        let result = match tokio::time::timeout(limit, source.poll()).await {
            Ok(result) => result,
            Err(_) => Err(PollFailure::new(
                FailureKind::Timeout,
                format!("no answer within {key} ({})", humantime::format_duration(limit)),
            )),
        };
        let finished = Instant::now();
        match &result {
            Ok(sampled) => {
                // One stream (a primary, a master): sampled until a poll says otherwise.
                let stream = match sampled.observation.source_positions().as_slice() {
                    [(key, _)] if !settings.sample_interval.is_zero() => Some(key.clone()),
                    _ => None,
                };
                if stream.is_some() != counted.is_some() {
                    counted = stream.as_ref().map(|_| CountedSource::new());
                }
                let stream = stream.filter(|_| sampling_pays(&settings, SOURCES.load(Ordering::Relaxed)));
                let running = |s: &Sampler| Some(&s.stream) == stream.as_ref() && !s.task.is_finished();
                if !sampler.as_ref().is_some_and(running) {
                    sampler = stream.zip(source.position_reader()).map(|(stream, open)| Sampler {
                        stream: stream.clone(),
                        task: tokio::spawn(sample(index, name.clone(), stream, open, settings, reports.clone())),
                    });
                }
                if let Some(previous) = last_failure.take() {
                    tracing::info!(node = %name, after_failures = failures, last_error = %previous, "node is reachable again");
                }
                failures = 0;
            }
            Err(failure) => {
                sampler = None;
                counted = None;
                source.reset();
                failures = failures.saturating_add(1);
                if last_failure.as_ref() != Some(failure) {
                    tracing::warn!(node = %name, reason = failure.kind.as_str(), error = %failure.message, "poll failed");
                } else {
                    tracing::debug!(node = %name, error = %failure, "poll failed again");
                }
                last_failure = Some(failure.clone());
            }
        }
        let report = NodeReport {
            node: index,
            finished,
            finished_wall: SystemTime::now(),
            duration: finished - started,
            result,
        };
        if reports.send(Report::Polled(Box::new(report))).await.is_err() {
            return;
        }
        next =
            tokio::time::Instant::from_std(started + next_delay(&settings, failures)).max(tokio::time::Instant::now());
    }
}

/// A source's sampler task, stopped when dropped (a poll that fails or
/// finds another stream, the poller's end).
struct Sampler {
    stream: StreamKey,
    task: JoinHandle<()>,
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads of one source in flight at most: on their own connection, so a
/// source 100 ms away is still read every 25 ms, and reads sent while a
/// server is slow to answer are stamped across the stall, not after it.
const MAX_READS_IN_FLIGHT: usize = 16;

/// Why a source's reads ended.
enum ReadsEnded {
    /// The node is no source of the stream any more, or the engine is gone.
    ForGood,
    /// A read failed (`had_read`: after at least one that did not).
    Failed { failure: PollFailure, had_read: bool },
}

/// Read the source's position on a connection of its own, beside its
/// polls, until it is no longer the source its last poll saw; a failed
/// connection or read is retried with the poller's backoff. Failures
/// never touch the node's polls or `up`: lag is then resolved to the poll
/// interval, and the log says so once.
async fn sample(
    node: usize,
    name: String,
    stream: StreamKey,
    open: OpenPositionReader,
    settings: PollSettings,
    reports: mpsc::Sender<Report>,
) {
    let mut failures = 0u32;
    let mut last_failure: Option<PollFailure> = None;
    loop {
        if failures > 0 {
            tokio::time::sleep(next_delay(&settings, failures)).await;
        }
        let opened = tokio::time::timeout(settings.connect_timeout + settings.timeout, open()).await;
        let ended = match opened {
            Ok(Ok(reader)) => read_every(node, &name, &stream, &reader, settings, &reports, &mut last_failure).await,
            Ok(Err(failure)) => ReadsEnded::Failed { failure, had_read: false },
            Err(_) => ReadsEnded::Failed {
                failure: PollFailure::new(
                    FailureKind::Timeout,
                    "no connection within poll.connect_timeout + poll.timeout",
                ),
                had_read: false,
            },
        };
        let ReadsEnded::Failed { failure, had_read } = ended else { return };
        if had_read {
            failures = 0;
        }
        failures = failures.saturating_add(1);
        if last_failure.as_ref() != Some(&failure) {
            tracing::warn!(node = %name, reason = failure.kind.as_str(), error = %failure.message,
                "position reads between polls failed: lag in seconds is resolved to the poll interval until they recover");
        } else {
            tracing::debug!(node = %name, error = %failure, "position reads failed again");
        }
        last_failure = Some(failure);
    }
}

/// Read every `sample_interval`, reads overlapping when a round trip is
/// longer than the interval (so a source across a WAN is read as often as
/// one nearby), until a read fails or finds the node no source any more.
/// The first read says so if reads had failed (`last_failure`).
async fn read_every(
    node: usize,
    name: &str,
    stream: &StreamKey,
    reader: &PositionReader,
    settings: PollSettings,
    reports: &mpsc::Sender<Report>,
    last_failure: &mut Option<PollFailure>,
) -> ReadsEnded {
    let mut in_flight = FuturesOrdered::new();
    let mut tick = tokio::time::Instant::now();
    let mut had_read = false;
    loop {
        let next_tick = tick + sample_interval(settings.sample_interval, SOURCES.load(Ordering::Relaxed));
        tokio::select! {
            () = tokio::time::sleep_until(next_tick), if in_flight.len() < MAX_READS_IN_FLIGHT => {
                // After a wait for a free slot, the next read starts now, not in a hurry.
                tick = next_tick.max(tokio::time::Instant::now());
                in_flight.push_back(tokio::time::timeout(settings.timeout, reader()));
            }
            Some(read) = in_flight.next(), if !in_flight.is_empty() => match read {
                Ok(Ok(Some(sampled))) => {
                    had_read = true;
                    if let Some(previous) = last_failure.take() {
                        tracing::info!(node = %name, last_error = %previous, "position reads are back");
                    }
                    let sample = PositionSample { node, stream: stream.clone(), at: sampled.at, source: sampled.observation };
                    if reports.send(Report::Sampled(sample)).await.is_err() {
                        return ReadsEnded::ForGood;
                    }
                }
                Ok(Ok(None)) => return ReadsEnded::ForGood,
                Ok(Err(failure)) => return ReadsEnded::Failed { failure, had_read },
                Err(_) => {
                    let limit = humantime::format_duration(settings.timeout);
                    let failure = PollFailure::new(FailureKind::Timeout, format!("no answer within poll.timeout ({limit})"));
                    return ReadsEnded::Failed { failure, had_read };
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_sources_share_the_sample_budget() {
        let configured = Duration::from_millis(25);
        assert_eq!(sample_interval(configured, 1), configured);
        assert_eq!(sample_interval(configured, 25), configured);
        assert_eq!(sample_interval(configured, 100), Duration::from_millis(100));
        assert_eq!(sample_interval(configured, 1000), Duration::from_secs(1));
    }

    #[test]
    fn sampling_stops_paying_once_samples_come_no_faster_than_polls() {
        let mut s = PollSettings {
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(800),
            connect_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(10),
            sample_interval: Duration::from_millis(25),
        };
        assert!(sampling_pays(&s, 1));
        assert!(sampling_pays(&s, 500), "every 500 ms: twice a poll");
        assert!(!sampling_pays(&s, 501));
        s.interval = Duration::from_secs(10);
        assert!(sampling_pays(&s, 5000));
        s.sample_interval = Duration::ZERO;
        assert!(!sampling_pays(&s, 1), "0s turns sampling off");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = PollSettings {
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(800),
            connect_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(10),
            sample_interval: Duration::from_millis(25),
        };
        let delays: Vec<u64> = (0..7).map(|f| next_delay(&s, f).as_secs()).collect();
        assert_eq!(delays, [1, 1, 2, 4, 8, 10, 10]);
        assert_eq!(next_delay(&s, u32::MAX), Duration::from_secs(10));
    }
}
