//! One task per node: poll on the interval, bound each poll by the timeout,
//! back off while a node fails, and hand every result to the lag engine.
//! Nothing here runs on a scrape.

use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::PollSettings;
use crate::model::{FailureKind, PollFailure, Sampled, Source};
use crate::systems::{NodeSpec, Observation};

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

/// Start polling every node; reports go to `reports`. Tasks end when the
/// receiver is dropped (or when the handles are aborted).
pub fn spawn_all(nodes: &[NodeSpec], settings: PollSettings, reports: mpsc::Sender<NodeReport>) -> Vec<JoinHandle<()>> {
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

/// Poll one node until the report channel closes (or the task is aborted).
pub async fn run<S: Source<Observation = Observation>>(
    index: usize,
    name: String,
    mut source: S,
    settings: PollSettings,
    first_poll: Instant,
    reports: mpsc::Sender<NodeReport>,
) {
    let mut failures = 0u32;
    let mut last_failure: Option<PollFailure> = None;
    let mut next = tokio::time::Instant::from_std(first_poll);
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
            Ok(_) => {
                if let Some(previous) = last_failure.take() {
                    tracing::info!(node = %name, after_failures = failures, last_error = %previous, "node is reachable again");
                }
                failures = 0;
            }
            Err(failure) => {
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
        if reports.send(report).await.is_err() {
            return;
        }
        next =
            tokio::time::Instant::from_std(started + next_delay(&settings, failures)).max(tokio::time::Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let s = PollSettings {
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(800),
            connect_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(10),
        };
        let delays: Vec<u64> = (0..7).map(|f| next_delay(&s, f).as_secs()).collect();
        assert_eq!(delays, [1, 1, 2, 4, 8, 10, 10]);
        assert_eq!(next_delay(&s, u32::MAX), Duration::from_secs(10));
    }
}
