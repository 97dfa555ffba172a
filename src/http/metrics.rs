//! `/metrics`: the snapshot in Prometheus text format. Families and labels
//! are the contract of docs/metrics.md; dashboards and alerts rely on them.
//! The generic families are here; each system adds its own
//! (`systems::render_metrics`).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;
use hyper::body::Bytes;
use tokio::sync::watch;

use super::in_force::InForce;
use crate::exposition::{bool_value, with, Families, LINK_LABELS, NODE_LABELS};
use crate::gate::Tracked;
use crate::model::{to_unix, FailureKind, SILENT};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn build_revision() -> &'static str {
    env!("REPLAG_GIT_REVISION")
}

/// The last `/metrics` text, for the snapshot and config it was rendered
/// from: every scrape of the same snapshot shares it without a copy, and
/// its gzip form, made once by the first scrape that asks for it.
///
/// A large fleet's render takes longer than a scrape should (56k series:
/// ~13 ms of CPU with its gzip, 60–900 ms of wall time on a loaded host).
/// When renders are that slow, the next scrape's render is made just ahead
/// of it (Prometheus scrapes at a steady pace; `render_ahead`), and a scrape
/// may be served a render of a snapshot up to `AHEAD_STALENESS` older than
/// the newest.
#[derive(Debug, Default)]
pub struct RenderCache {
    /// Locked only to look or to swap, never while rendering: a scrape that
    /// a render in progress would not serve better is served at once.
    last: Mutex<Option<Made>>,
    /// Held while a render is made: one at a time, the others wait for it.
    rendering: Mutex<()>,
    pace: Mutex<ScrapePace>,
}

/// Renders slower than this are made ahead of the scrapes. Well below what
/// a scrape may take: on a loaded host a render's wall time is a multiple of
/// its CPU time (a 2,000-node fleet's ~20 ms render, when a scrape made it,
/// was 75 ms of that scrape).
pub const SLOW_RENDER: Duration = Duration::from_millis(10);

/// How much older than the newest snapshot a render may be when renders are
/// slow: one made ahead (at most `MAX_LEAD` before the scrape, of a snapshot
/// up to half a poll interval old), or the last one while the next is being
/// made. Two poll intervals at the default 1 s; a scrape of older waits.
pub const AHEAD_STALENESS: Duration = Duration::from_secs(2);

/// A render made ahead starts at most this long before the scrape is due,
/// so that the scrape can still be served it (`AHEAD_STALENESS`).
const MAX_LEAD: Duration = Duration::from_secs(1);

/// The pace of the scrapes, and of the renders.
#[derive(Debug, Default, Clone, Copy)]
struct ScrapePace {
    last_scrape: Option<Instant>,
    /// Between the last two scrapes.
    interval: Option<Duration>,
    /// How long renders take: the last one's time, or more while a slower
    /// one is recent (it decays by a quarter a render), so one quick render
    /// of a large fleet does not make the next scrape render itself.
    render_time: Duration,
    /// A render was made ahead of the scrape after `last_scrape`.
    ahead_made: bool,
}

impl ScrapePace {
    fn took(&mut self, render_time: Duration) {
        self.render_time = render_time.max(self.render_time * 3 / 4);
    }

    /// When to render ahead of the next scrape: a few render times and a
    /// margin before it is due, if renders are slow and scrapes regular.
    fn ahead_at(&self) -> Option<Instant> {
        let (last, interval) = (self.last_scrape?, self.interval?);
        if self.render_time < SLOW_RENDER || self.ahead_made {
            return None;
        }
        let lead = (self.render_time * 3 + Duration::from_millis(100)).min(MAX_LEAD);
        Some((last + interval).checked_sub(lead).unwrap_or(last))
    }
}

/// A render and what it was made from.
type Made = (Arc<Tracked>, Arc<InForce>, Arc<Rendered>);

/// May a scrape of `tracked` under `in_force` be served `made`? Made from
/// them; or, when renders are slow, from a snapshot at most
/// `AHEAD_STALENESS` older under the same config.
fn serves(made: &Made, tracked: &Arc<Tracked>, in_force: &Arc<InForce>, slow: bool) -> bool {
    let (t, f, _) = made;
    if !Arc::ptr_eq(f, in_force) {
        return false;
    }
    Arc::ptr_eq(t, tracked)
        || (slow && tracked.snapshot.taken.saturating_duration_since(t.snapshot.taken) <= AHEAD_STALENESS)
}

/// One render: the text, and (once asked for) the same text gzipped.
#[derive(Debug)]
pub struct Rendered {
    pub text: Bytes,
    gzipped: OnceLock<Bytes>,
}

impl Rendered {
    fn new(text: Bytes) -> Self {
        Rendered { text, gzipped: OnceLock::new() }
    }

    /// The text gzipped (see [`gzip`]), made by the first scrape that asks.
    pub fn gzipped(&self) -> Bytes {
        self.gzipped
            .get_or_init(|| {
                if self.text.len() >= HEAVY_BYTES {
                    crate::offload::heavy(|| gzip(&self.text))
                } else {
                    gzip(&self.text)
                }
            })
            .clone()
    }
}

/// gzip at the fastest level, as Prometheus' own client libraries serve
/// `/metrics` (figures: docs/performance.md, `cargo bench -- metrics_gzip`).
pub fn gzip(text: &[u8]) -> Bytes {
    let mut encoder = GzEncoder::new(Vec::with_capacity(text.len() / 8), Compression::fast());
    encoder.write_all(text).expect("writing to memory");
    Bytes::from(encoder.finish().expect("writing to memory"))
}

/// Texts this large take milliseconds to compress: off the async workers.
const HEAVY_BYTES: usize = 256 << 10;

/// A text this large is gzipped as soon as it is rendered (~20 ms at 6 MB).
fn slow_to_gzip(text: &[u8]) -> bool {
    text.len() >= 8 * HEAVY_BYTES
}

impl RenderCache {
    /// The render for a scrape of `tracked` under `in_force`, made once.
    pub fn get(&self, tracked: &Arc<Tracked>, in_force: &Arc<InForce>) -> Arc<Rendered> {
        let slow = {
            let mut pace = self.pace.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            pace.interval = pace.last_scrape.map(|last| now.saturating_duration_since(last));
            pace.last_scrape = Some(now);
            pace.ahead_made = false;
            pace.render_time >= SLOW_RENDER
        };
        self.render(tracked, in_force, slow)
    }

    /// Render the newest snapshot now if the next scrape is due soon and
    /// renders are slow (`render_ahead` asks every `AHEAD_TICK`).
    fn render_if_due(&self, tracked: &Arc<Tracked>, in_force: &Arc<InForce>) {
        let due = {
            let mut pace = self.pace.lock().unwrap_or_else(|e| e.into_inner());
            let due = pace.ahead_at().is_some_and(|at| Instant::now() >= at);
            pace.ahead_made |= due;
            due
        };
        if due {
            // Exact: the newest snapshot, not one a little older.
            self.render(tracked, in_force, false);
        }
    }

    fn render(&self, tracked: &Arc<Tracked>, in_force: &Arc<InForce>, slow: bool) -> Arc<Rendered> {
        let hit = || match &*self.last.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(made) if serves(made, tracked, in_force, slow) => Some(made.2.clone()),
            _ => None,
        };
        // Most scrapes find it rendered: no thread hand-off.
        if let Some(rendered) = hit() {
            return rendered;
        }
        // Render (or wait for the render in progress) off the workers.
        crate::offload::heavy(|| {
            let asked = Instant::now();
            let _one_at_a_time = self.rendering.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(rendered) = hit() {
                tracing::debug!(waited_ms = asked.elapsed().as_millis() as u64, "served a render made meanwhile");
                return rendered;
            }
            // The process' own figures ride along, as fresh as the render.
            let started = Instant::now();
            let text = Bytes::from(render(tracked, in_force) + &crate::exposition::process_metrics());
            let rendered = Arc::new(Rendered::new(text));
            if slow_to_gzip(&rendered.text) {
                // Made ahead or not, the next scrape of a large fleet asks gzip.
                rendered.gzipped();
            }
            let render_time = started.elapsed();
            tracing::debug!(
                waited_ms = started.saturating_duration_since(asked).as_millis() as u64,
                render_ms = render_time.as_millis() as u64,
                bytes = rendered.text.len(),
                age_ms = tracked.snapshot.taken.elapsed().as_millis() as u64,
                exact_snapshot = !slow,
                "rendered /metrics"
            );
            self.pace.lock().unwrap_or_else(|e| e.into_inner()).took(render_time);
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((tracked.clone(), in_force.clone(), rendered.clone()));
            rendered
        })
    }
}

/// How often `render_ahead` looks whether a scrape is due.
const AHEAD_TICK: Duration = Duration::from_millis(50);

/// Renders the newest snapshot just before the next scrape is due, when
/// renders are slow (`RenderCache`): the scrape then finds it made.
pub async fn render_ahead(
    cache: Arc<RenderCache>,
    snapshots: watch::Receiver<Arc<Tracked>>,
    gates: watch::Receiver<Arc<InForce>>,
) {
    let mut tick = tokio::time::interval(AHEAD_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (tracked, in_force) = (snapshots.borrow().clone(), gates.borrow().clone());
        // Off the async workers, as a scrape's render (`offload::heavy`).
        cache.render_if_due(&tracked, &in_force);
    }
}

/// Does an `Accept-Encoding` header take gzip? A listed `gzip` (any case)
/// whose quality is not 0, or `*` with a non-zero quality and no `gzip;q=0`.
pub fn accepts_gzip(header: Option<&[u8]>) -> bool {
    let Some(text) = header.and_then(|h| std::str::from_utf8(h).ok()) else { return false };
    let mut star = false;
    for item in text.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .filter_map(|q| q.trim().parse::<f32>().ok())
            .next_back()
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case("gzip") {
            return quality > 0.0;
        }
        if coding == "*" {
            star = quality > 0.0;
        }
    }
    star
}

/// The metrics text for a snapshot (with the gates' memory of its links)
/// and the config in force.
pub fn render(tracked: &Tracked, in_force: &InForce) -> String {
    let (s, gates) = (&*tracked.snapshot, in_force);
    let f = Families::default();

    let gate_pass =
        f.gauge("replag_gate_pass", "1 if the configured gate passes now, else 0 (see /gate/<gate>).", &["gate"]);
    let (now, wall) = (std::time::Instant::now(), std::time::SystemTime::now());
    for (name, spec) in &gates.named {
        gate_pass
            .with_label_values(&[name])
            .set(bool_value(crate::gate::evaluate(spec, s, &tracked.tracks, now, wall).pass));
    }

    let build = f.gauge("replag_build_info", "replag version and revision; always 1.", &["version", "revision"]);
    build.with_label_values(&[env!("CARGO_PKG_VERSION"), build_revision()]).set(1.0);

    if let Some(shard) = gates.shard {
        let info = f.gauge(
            "replag_shard_info",
            "This instance polls shard `index` of `count` (0-based); always 1. Absent when not sharded.",
            &["index", "count"],
        );
        info.with_label_values(&[&shard.shard.index.to_string(), &shard.shard.count.to_string()]).set(1.0);
    }

    if let Some((ok, at)) = gates.last_reload {
        let help = "1 if the last SIGHUP reload of the config was taken, 0 if it was refused.";
        f.plain_gauge("replag_config_last_reload_successful", help).set(bool_value(ok));
        f.plain_gauge("replag_config_last_reload_timestamp_seconds", "Unix time of the last SIGHUP reload attempt.")
            .set(to_unix(at));
    }

    // ---- nodes
    let node_up = f.gauge("replag_node_up", "1 if the last poll of the node succeeded, else 0.", NODE_LABELS);
    let node_info = f.gauge(
        "replag_node_info",
        "Identity of a node as of its last successful poll; always 1.",
        &with(NODE_LABELS, &["role", "version", "system_identifier", "replication_id"]),
    );
    let poll_duration = f.gauge(
        "replag_poll_duration_seconds",
        "Duration of the last poll of the node, including any reconnect.",
        NODE_LABELS,
    );
    let last_success = f.gauge(
        "replag_node_last_success_timestamp_seconds",
        "Unix time of the last successful poll of the node.",
        NODE_LABELS,
    );
    let failing = f.gauge(
        "replag_node_failing",
        "1 for the reason the last poll failed (connect, auth, timeout, query, protocol), 0 for the others.",
        &with(NODE_LABELS, &["reason"]),
    );
    let polls = f.counter("replag_node_polls_total", "Polls of the node since replag started.", NODE_LABELS);
    let failures = f.counter(
        "replag_node_poll_failures_total",
        "Failed polls of the node since replag started, by reason.",
        &with(NODE_LABELS, &["reason"]),
    );
    for n in &s.nodes {
        let v = [n.system.as_str(), n.name.as_str(), n.region.as_str()];
        node_up.with_label_values(&v).set(bool_value(n.up));
        if let Some(role) = &n.role {
            let version = n.version.as_deref().unwrap_or("");
            let id = |key: &str| n.identity.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str());
            node_info
                .with_label_values(&[v[0], v[1], v[2], role, version, id("system_identifier"), id("replication_id")])
                .set(1.0);
        }
        if let Some(d) = n.last_poll_duration_seconds {
            poll_duration.with_label_values(&v).set(d);
        }
        if let Some(t) = n.last_success {
            last_success.with_label_values(&v).set(to_unix(t));
        }
        polls.with_label_values(&v).inc_by(n.polls_total);
        for (i, kind) in FailureKind::ALL.iter().enumerate() {
            let labels = [v[0], v[1], v[2], kind.as_str()];
            let current = n.failure.as_ref().is_some_and(|f| f.kind == *kind);
            failing.with_label_values(&labels).set(bool_value(current));
            failures.with_label_values(&labels).inc_by(n.failures_total[i]);
        }
    }

    // ---- links
    let lag_seconds = f.gauge(
        "replag_lag_seconds",
        "Seconds the replica trails its source (apply/replay stage), measured on replag's clock from the source's position history.",
        LINK_LABELS,
    );
    let lag_bytes =
        f.gauge("replag_lag_bytes", "Bytes the replica trails its source (apply/replay stage).", LINK_LABELS);
    let lower_bound = f.gauge(
        "replag_lag_lower_bound",
        "1 if replag_lag_seconds is a lower bound: the replica is older than the source history replag keeps.",
        LINK_LABELS,
    );
    let resolution = f.gauge(
        "replag_lag_resolution_seconds",
        "How finely the source's position history placed the replica's reading: the replica may trail by up to this \
         much more than replag_lag_seconds (behind, by as much less). About the sampling interval while the source is \
         sampled between polls; up to the poll interval when it is not.",
        LINK_LABELS,
    );
    let link_up = f.gauge("replag_link_up", "1 if the link is connected and streaming, else 0.", LINK_LABELS);
    let data_age = f.gauge(
        "replag_link_data_age_seconds",
        "Age of the replica position the link's lag was computed from.",
        LINK_LABELS,
    );
    let down_seconds = f.gauge(
        "replag_link_down_seconds",
        "Seconds replag has seen the link down without a break; 0 while it is up.",
        LINK_LABELS,
    );
    let silent = f.gauge(
        "replag_link_silent",
        "1 if the link's periodic message (a standby's status reply, a replica's ACK or its master's ping) is overdue: \
         a partition that drops packets without a reset. The link is then down (replag_link_up 0).",
        LINK_LABELS,
    );
    let message_age = f.gauge(
        "replag_link_last_message_age_seconds",
        "Seconds since the link's periodic message last arrived, as replag saw it (PostgreSQL: a change of the \
         standby's reply_time; Redis: the master's ACK age, else the replica's last I/O with its master).",
        LINK_LABELS,
    );
    let heartbeat_lag = f.gauge(
        "replag_heartbeat_lag_seconds",
        "With replag's heartbeats on: seconds since replag wrote the first heartbeat on the source that the replica \
         does not have yet (0 when it has the last one). End to end, and growing 1 s/s on a cut link even at idle.",
        LINK_LABELS,
    );
    let group_info = f.gauge(
        "replag_link_group_info",
        "The replication group (a Redis Sentinel master name or Cluster name) and shard (a Redis Cluster shard's \
         slot ranges) of a link; always 1. Join on the link labels to group any link series by them.",
        &with(LINK_LABELS, &["group", "shard"]),
    );
    for l in &s.links {
        let v = l.id.label_values();
        if let Some(group) = &l.group {
            group_info.with_label_values(&with(&v, &[group, l.shard.as_deref().unwrap_or("")])).set(1.0);
        }
        link_up.with_label_values(&v).set(bool_value(l.up));
        if let Some(seconds) = l.heartbeat_lag_seconds {
            heartbeat_lag.with_label_values(&v).set(seconds);
        }
        silent.with_label_values(&v).set(bool_value(l.state == SILENT));
        if let Some(age) = l.last_message_age_seconds {
            message_age.with_label_values(&v).set(age);
        }
        if let Some(lag) = l.lag {
            lag_seconds.with_label_values(&v).set(lag.seconds);
            lag_bytes.with_label_values(&v).set(lag.bytes as f64);
            lower_bound.with_label_values(&v).set(bool_value(lag.lower_bound));
            if let Some(r) = lag.resolution_seconds {
                resolution.with_label_values(&v).set(r);
            }
        }
        if let Some(age) = l.data_age_seconds {
            data_age.with_label_values(&v).set(age);
        }
        down_seconds.with_label_values(&v).set(l.down_seconds.unwrap_or(0.0));
    }

    crate::systems::render_metrics(&f, &s.links, &s.details);
    crate::failover::metrics::render(&f, &s.failover, &s.roles);

    f.encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Snapshot;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    #[test]
    fn gzip_only_when_asked() {
        for (header, want) in [
            (None, false),
            (Some("gzip"), true),
            (Some("GZip"), true),
            (Some("gzip, deflate"), true),
            (Some("deflate, gzip;q=0.5"), true),
            (Some("gzip;q=0"), false),
            (Some("gzip; q=0.0"), false),
            (Some("identity"), false),
            (Some("deflate, br"), false),
            (Some("*"), true),
            (Some("*;q=0"), false),
            (Some("gzip;q=0, *"), false),
            (Some("gzipx"), false),
            (Some(""), false),
        ] {
            assert_eq!(accepts_gzip(header.map(str::as_bytes)), want, "{header:?}");
        }
        assert!(!accepts_gzip(Some(&[0xff, 0xfe])), "not UTF-8: not gzip");
    }

    #[test]
    fn the_gzip_form_is_the_text_and_made_once() {
        use std::io::Read;
        let cache = RenderCache::default();
        let tracked = Arc::new(Tracked::new(Arc::new(Snapshot::empty(SystemTime::now()))));
        let in_force = Arc::new(InForce::default());
        let rendered = cache.get(&tracked, &in_force);
        let zipped = rendered.gzipped();
        let mut back = String::new();
        flate2::read::GzDecoder::new(&zipped[..]).read_to_string(&mut back).unwrap();
        assert_eq!(back.as_bytes(), &rendered.text[..]);
        let again = cache.get(&tracked, &in_force).gzipped();
        assert_eq!(again.as_ptr(), zipped.as_ptr(), "compressed once per render, then shared");
    }

    #[test]
    fn slow_renders_are_made_ahead_of_a_steady_scraper() {
        let now = Instant::now();
        let mut pace = ScrapePace {
            last_scrape: Some(now),
            interval: Some(Duration::from_secs(15)),
            render_time: Duration::from_millis(60),
            ahead_made: false,
        };
        assert_eq!(pace.ahead_at(), Some(now + Duration::from_secs(15) - Duration::from_millis(280)));
        pace.ahead_made = true;
        assert_eq!(pace.ahead_at(), None, "once per scrape");
        pace.ahead_made = false;
        pace.render_time = Duration::from_millis(5);
        assert_eq!(pace.ahead_at(), None, "fast renders are made when asked");
        pace.render_time = Duration::from_millis(600);
        assert_eq!(pace.ahead_at(), Some(now + Duration::from_secs(15) - MAX_LEAD), "never so early it goes stale");
        pace.render_time = Duration::from_millis(60);
        pace.interval = None;
        assert_eq!(pace.ahead_at(), None, "one scrape tells no pace");
    }

    #[test]
    fn one_quick_render_does_not_end_rendering_ahead() {
        let mut pace = ScrapePace::default();
        pace.took(Duration::from_millis(16));
        pace.took(Duration::from_millis(4));
        assert_eq!(pace.render_time, Duration::from_millis(12), "still slow");
        pace.took(Duration::from_millis(4));
        pace.took(Duration::from_millis(4));
        assert!(pace.render_time < SLOW_RENDER, "renders that stay quick are made when asked");
    }

    #[test]
    fn only_slow_renders_serve_a_snapshot_a_little_older_under_the_same_config() {
        let old = Arc::new(Tracked::new(Arc::new(Snapshot::empty(SystemTime::now()))));
        let in_force = Arc::new(InForce::default());
        let made: Made = (old.clone(), in_force.clone(), Arc::new(Rendered::new(Bytes::new())));
        let newer_by = |d: Duration| {
            let mut snapshot = Snapshot::empty(SystemTime::now());
            snapshot.taken = old.snapshot.taken + d;
            Arc::new(Tracked::new(Arc::new(snapshot)))
        };
        assert!(serves(&made, &old, &in_force, false));
        assert!(!serves(&made, &newer_by(Duration::from_millis(300)), &in_force, false));
        assert!(serves(&made, &newer_by(Duration::from_millis(300)), &in_force, true));
        assert!(!serves(&made, &newer_by(AHEAD_STALENESS + Duration::from_millis(1)), &in_force, true));
        assert!(!serves(&made, &old, &Arc::new(InForce::default()), true), "another config: rendered anew");
    }

    #[test]
    fn a_scrape_served_by_the_last_render_does_not_wait_for_one_in_progress() {
        let old = Arc::new(Tracked::new(Arc::new(Snapshot::empty(SystemTime::now()))));
        let in_force = Arc::new(InForce::default());
        let cache = Arc::new(RenderCache::default());
        let made = cache.get(&old, &in_force);
        cache.pace.lock().unwrap().render_time = SLOW_RENDER;
        let mut newer = Snapshot::empty(SystemTime::now());
        newer.taken = old.snapshot.taken + Duration::from_millis(300);
        let newer = Arc::new(Tracked::new(Arc::new(newer)));

        // A render (made ahead, or another scrape's) is in progress...
        let rendering = cache.rendering.lock().unwrap();
        let (sent, got) = std::sync::mpsc::channel();
        std::thread::spawn({
            let (cache, newer, in_force) = (cache.clone(), newer.clone(), in_force.clone());
            move || sent.send(cache.get(&newer, &in_force)).unwrap()
        });
        // ...and the scrape is served the last one, a little older, at once.
        let served = got.recv_timeout(Duration::from_secs(10)).expect("served without waiting for the render");
        assert!(Arc::ptr_eq(&served, &made));
        drop(rendering);

        // Beyond AHEAD_STALENESS the scrape waits for a render of its own.
        let mut stale = Snapshot::empty(SystemTime::now());
        stale.taken = old.snapshot.taken + AHEAD_STALENESS * 2;
        let fresh = cache.get(&Arc::new(Tracked::new(Arc::new(stale))), &in_force);
        assert!(!Arc::ptr_eq(&fresh, &made));
    }

    #[test]
    fn reload_status_is_rendered() {
        let snapshot = Tracked::new(Arc::new(Snapshot::empty(SystemTime::now())));
        let gates = InForce {
            last_reload: Some((false, SystemTime::now())),
            default_max_data_age: Duration::from_secs(10),
            ..Default::default()
        };
        let text = render(&snapshot, &gates);
        assert!(text.contains("replag_config_last_reload_successful 0"), "{text}");
        assert!(text.contains("replag_config_last_reload_timestamp_seconds "), "{text}");
        let fresh = InForce::default();
        assert!(!render(&snapshot, &fresh).contains("replag_config_last_reload"), "absent before any reload");
    }
}
