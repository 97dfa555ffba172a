//! The status page at `/`: the whole fleet at a glance, grouped by region —
//! a map of the regions with replication drawn between them, each region's
//! nodes and the links into it (worst first), each link's health against
//! the threshold that matters for it, for how long, why, and its last 15
//! minutes; the configured gates' verdicts. `/ui/live` serves the same
//! fleet section alone, which the page's small script swaps in every 2 s.
//!
//! Built with maud (everything from config or the network is escaped), no
//! external assets: the CSS and script are inlined from this folder.

mod map;
mod sparkline;
pub mod view;

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::gate::Tracked;
use crate::http::in_force::InForce;
use crate::model::rfc3339;
use view::{bytes_text, duration_text, Health, LinkRow, PageView};

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("live.js");

/// The whole page.
pub fn full(tracked: &Tracked, in_force: &InForce, metrics_path: &str, now: Instant, wall: SystemTime) -> String {
    let view = view::build(tracked, in_force, now, wall);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title(&view)) }
                style { (PreEscaped(STYLE)) }
            }
            body data-updates="0" {
                header {
                    h1 { "replag" }
                    p id="conn" role="status" { "live: updates every 2 s" }
                    nav aria-label="Endpoints" {
                        a href=(format!(".{metrics_path}")) { (metrics_path) }
                        a href="api/v1/status" { "/api/v1/status" }
                        a href="api/v1/history" { "/api/v1/history" }
                        a href="gate" { "/gate" }
                    }
                }
                main id="live" aria-live="polite" { (fleet(&view)) }
                noscript { p { "This page updates itself with JavaScript; without it, reload to see new figures." } }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    page.into_string()
}

/// The fleet section alone, for the page's live updates.
pub fn live(tracked: &Tracked, in_force: &InForce, now: Instant, wall: SystemTime) -> String {
    fleet(&view::build(tracked, in_force, now, wall)).into_string()
}

fn title(view: &PageView<'_>) -> String {
    let down = view.count(Health::Down) + view.count(Health::Silent);
    let lagging = view.count(Health::Lagging);
    match (down, lagging) {
        (0, 0) => "replag: all links healthy".to_string(),
        (d, l) => format!("replag: {d} down, {l} lagging"),
    }
}

fn fleet(view: &PageView<'_>) -> Markup {
    let silent = view.count(Health::Silent);
    html! {
        div.summary data-title=(title(view)) {
            span.when { "as of " (rfc3339(view.generated_at)) " (data " (duration_text(view.data_age_seconds)) " old)" }
            span.chip.healthy { "✓ " (view.count(Health::Healthy)) " healthy" }
            span.chip.lagging { "▲ " (view.count(Health::Lagging)) " lagging" }
            span.chip.down { "✕ " (view.count(Health::Down) + silent) " down" @if silent > 0 { " (" (silent) " silent)" } }
            @if view.count(Health::NoData) > 0 { span.chip.nodata { "? " (view.count(Health::NoData)) " no data" } }
            @if view.nodes_down() > 0 { span.chip.down { "✕ " (view.nodes_down()) " node(s) unreachable" } }
        }
        @if !view.gates.is_empty() {
            section aria-label="Gates" {
                h2 { "Gates" }
                ul.gates {
                    @for gate in &view.gates {
                        li data-gate=(gate.gate.as_deref().unwrap_or("")) data-pass=(gate.pass) {
                            @if gate.pass { span.chip.pass { "✓ PASS" } } @else { span.chip.fail { "✕ FAIL" } }
                            " " b { (gate.gate.as_deref().unwrap_or("ad hoc")) } ": " (gate.summary)
                        }
                    }
                }
            }
        }
        (failover(view))
        section aria-label="Map" { (map::render(view)) }
        @if !view.redis_groups.is_empty() {
            section aria-label="Redis groups" {
                h2 { "Redis groups and shards" }
                ul.groups {
                    @for c in view.redis_clusters {
                        @let ok = c.state_ok && !c.stale;
                        li class=(if ok { "healthy" } else { "down" }) data-redis-cluster=(c.group) {
                            span.chip { @if ok { "✓ OK" } @else { "✕ FAIL" } }
                            " cluster " b { (c.group) } " "
                            span.meta {
                                "cluster_state " @if c.state_ok { "ok" } @else { "fail" }
                                " · slots ok " (c.slots_ok) "/16384"
                                @if c.slots_pfail + c.slots_fail > 0 { " · failing " (c.slots_pfail + c.slots_fail) }
                                @if c.stale { " · stale" }
                            }
                        }
                    }
                    @for row in &view.redis_groups {
                        @let g = row.group;
                        li class=(row.health.class()) data-redis-group=(g.group) data-shard=(g.shard.as_deref().unwrap_or("")) {
                            span.chip { (row.health.symbol()) " " (row.health.label().to_uppercase()) }
                            " " b { (g.group) } @if let Some(shard) = &g.shard { " shard " b { (shard) } } " "
                            span.meta {
                                (g.kind) " · master "
                                @if let Some(m) = &g.master { (m) @if let Some(r) = &g.master_region { " (" (r) ")" } } @else { "unknown" }
                                " · " (g.healthy_replicas) "/" (g.replicas) " replicas healthy"
                                @if let (Some(q), Some(n)) = (g.quorum, g.sentinels_reachable) { " · quorum " (q) ", " (n) " Sentinels reachable" }
                                @if g.failovers_total > 0 { " · " (g.failovers_total) " failover(s) seen" }
                            }
                            @if !row.problems.is_empty() { p.reason { (row.problems.join("; ")) } }
                        }
                    }
                }
            }
        }
        div.regions {
            @for region in &view.regions {
                section.region-card data-region=(region.name) aria-label=(format!("Region {}", region.name)) {
                    h2 { (region.name) }
                    @if !region.nodes.is_empty() {
                        h3 { "Nodes" }
                        ul.nodes {
                            @for node in &region.nodes {
                                @let class = if node.up { "healthy" } else { "down" };
                                li class=(class) data-node=(node.name) data-up=(node.up) {
                                    span.chip { @if node.up { "✓ UP" } @else { "✕ DOWN" } }
                                    " " b { (node.name) } " "
                                    span.meta {
                                        (node.system.as_str())
                                        @if let Some(role) = &node.role { " · " (role) }
                                        @if let Some(version) = &node.version { " · " (version) }
                                    }
                                    @if let Some(failure) = &node.failure { p.reason { (failure.to_string()) } }
                                }
                            }
                        }
                    }
                    @if !region.links.is_empty() {
                        h3 { "Replication into " (region.name) }
                        ul.links { @for row in &region.links { (link(row, view.now)) } }
                    }
                }
            }
        }
    }
}

/// Events shown per group on the page (all are at /api/v1/events).
const EVENTS_SHOWN: usize = 12;

/// Primaries lost now (with what their replicas lack), split brains, and
/// each group's failover timeline, newest first. Nothing while nothing
/// ever failed.
fn failover(view: &PageView<'_>) -> Markup {
    let f = view.failover;
    if f.primaries_unreachable.is_empty() && f.split_brains.is_empty() && f.events.is_empty() {
        return html! {};
    }
    let mut groups: BTreeMap<(&str, &str), Vec<&crate::failover::Event>> = BTreeMap::new();
    for e in f.events.iter() {
        groups.entry((e.system.as_str(), e.group.as_str())).or_default().push(e);
    }
    let at = |unix: f64| rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(unix.max(0.0)));
    html! {
        section aria-label="Failover" {
            h2 { "Failover" }
            ul.groups {
                @for p in &f.primaries_unreachable {
                    li.down data-primary-lost=(p.node) {
                        span.chip { "✕ PRIMARY LOST" } " " b { (p.node) } " (" (p.node_region) ") "
                        span.meta { "unreachable " (duration_text(p.unreachable_seconds)) " · last seen at " (p.last_position_text) " " (duration_text(p.last_seen_seconds)) " ago" }
                        ul {
                            @for r in f.data_at_risk.iter().filter(|r| r.link.source == p.node && r.link.system == p.system) {
                                li { (r.link.replica) " (" (r.link.replica_region) "): "
                                    @if r.at_risk_bytes == 0 { "has everything it was seen to write" } @else { "lacks at least " (bytes_text(r.at_risk_bytes)) }
                                    @if let Some(u) = r.unreplayed_bytes.filter(|u| *u > 0) { " · " (bytes_text(u)) " received, not replayed" }
                                    @if !r.stream_live_to_end { " · its stream went down before the primary" }
                                }
                            }
                        }
                    }
                }
                @for s in &f.split_brains {
                    li.down data-split-brain=(s.group) {
                        span.chip { "✕ SPLIT BRAIN" } " " b { (s.old_primary) } " and " b { (s.new_primary) } " are both primaries "
                        span.meta { "for " (duration_text(s.since_seconds))
                            @if let Some(d) = s.diverged_bytes { " · " (s.old_primary) " wrote " (bytes_text(d)) " past the switch point" } }
                    }
                }
                @for ((system, group), events) in &groups {
                    li data-failover-group=(group) {
                        b { (system) " " @if group.is_empty() { "(no group)" } @else { (group) } }
                        ol.timeline {
                            @for e in events.iter().take(EVENTS_SHOWN) {
                                li data-event=(e.kind.as_str()) { span.meta { (at(e.at)) } " " b { (e.kind.as_str()) } " " (e.summary) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn link(row: &LinkRow<'_>, now: Instant) -> Markup {
    let id = &row.link.id;
    let lag = row.link.gate_lag();
    html! {
        li class=(row.health.class()) data-link=(format!("{}/{}/{}->{}", id.system.as_str(), id.kind.as_str(), id.source, id.replica))
            data-state=(row.health.class()) {
            span.chip { (row.health.symbol()) " " (row.health.label().to_uppercase()) }
            " " b { (id.source) } " " span.meta { "(" (id.source_region) ")" }
            span.arrow aria-label="replicates to" { " → " }
            b { (id.replica) } " "
            span.meta {
                (id.system.as_str()) " " (id.kind.as_str())
                @if let Some(group) = &row.link.group { " · group " (group) }
                @if let Some(shard) = &row.link.shard { " · shard " (shard) }
            }
            div.figures {
                @match lag {
                    Some(lag) => {
                        span.lag data-seconds=(lag.seconds) {
                            @if lag.lower_bound { "≥ " } (duration_text(lag.seconds))
                        }
                        span.bytes data-bytes=(lag.bytes) { (bytes_text(lag.bytes)) }
                    }
                    None => { span.lag { "lag unknown" } }
                }
                @if let Some(since) = row.since.filter(|s| s.seconds >= 1.0) {
                    span.since { (row.health.label()) " for " @if since.at_least { "≥ " } (duration_text(since.seconds)) }
                }
                span.meta { "limit " (duration_text(row.threshold)) " (" (row.threshold_from) ")" }
                (sparkline::render(row, now))
            }
            @if let Some(reason) = &row.link.reason {
                p.reason { (row.link.state) ": " (reason) }
            }
        }
    }
}
