//! The region map: regions in a row, replication between them drawn as
//! arrows in the direction data flows (left to right above the row, right
//! to left below it), one per pair of regions, in the worst state of its
//! links, labelled with how many links and the worst lag. Dashed when any
//! link is down: the pattern and the label say it, not only the colour.

use std::collections::BTreeMap;

use maud::{html, Markup};

use super::view::{duration_text, Health, PageView};

const BOX_WIDTH: f64 = 150.0;
const GAP: f64 = 60.0;
const BOX_HEIGHT: f64 = 60.0;
/// How much higher (or lower) an arrow bends per region it spans: arrows
/// over longer distances clear the shorter ones, and so do their labels.
const BEND_PER_SPAN: f64 = 44.0;

struct Pair {
    links: usize,
    worst: Health,
    worst_lag: Option<f64>,
}

pub fn render(view: &PageView<'_>) -> Markup {
    let names: Vec<&str> = view.regions.iter().map(|r| r.name).collect();
    let x = |i: usize| GAP / 2.0 + i as f64 * (BOX_WIDTH + GAP);
    let width = (names.len() as f64 * (BOX_WIDTH + GAP)).max(320.0);
    let position = |name: &str| names.iter().position(|n| *n == name);
    let mut pairs: BTreeMap<(usize, usize), Pair> = BTreeMap::new();
    for row in view.links() {
        let id = &row.link.id;
        let (Some(s), Some(r)) = (position(&id.source_region), position(&id.replica_region)) else { continue };
        let pair = pairs.entry((s, r)).or_insert(Pair { links: 0, worst: Health::Healthy, worst_lag: None });
        pair.links += 1;
        pair.worst = pair.worst.max(row.health);
        if let Some(lag) = row.link.gate_lag() {
            pair.worst_lag = Some(pair.worst_lag.map_or(lag.seconds, |w: f64| w.max(lag.seconds)));
        }
    }
    // Room above the row for the longest left-to-right arrow and its label,
    // below it for the longest right-to-left one.
    let room = |forward: bool| {
        let span = pairs.keys().filter(|(s, r)| (r > s) == forward && s != r).map(|(s, r)| s.abs_diff(*r)).max();
        span.map_or(12.0, |span| 20.0 + (20.0 + BEND_PER_SPAN * span as f64) / 2.0 + 18.0)
    };
    let box_top = room(true);
    let height = box_top + BOX_HEIGHT + room(false);
    let summary = format!(
        "Map of {} regions and the replication between them: {} healthy, {} lagging, {} down or silent links.",
        names.len(),
        view.count(Health::Healthy),
        view.count(Health::Lagging),
        view.count(Health::Down) + view.count(Health::Silent)
    );
    html! {
        svg.map viewBox=(format!("0 0 {width} {height}")) width=(width) height=(format!("{height:.0}")) role="img" aria-labelledby="map-title" {
            title id="map-title" { (summary) }
            defs {
                @for health in [Health::Healthy, Health::NoData, Health::Lagging, Health::Down, Health::Silent] {
                    marker id=(format!("arrow-{}", health.class())) viewBox="0 0 10 10" refX="9" refY="5"
                        markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                        path class=(format!("arrowhead {}", health.class())) d="M0,0 L10,5 L0,10 z" {}
                    }
                }
            }
            @for ((s, r), pair) in &pairs {
                @if s != r {
                    @let (from, to) = (x(*s) + BOX_WIDTH / 2.0, x(*r) + BOX_WIDTH / 2.0);
                    @let forward = r > s;
                    @let span = (*s as f64 - *r as f64).abs();
                    @let (y, bend) = if forward { (box_top, box_top - 20.0 - BEND_PER_SPAN * span) } else { (box_top + BOX_HEIGHT, box_top + BOX_HEIGHT + 20.0 + BEND_PER_SPAN * span) };
                    // Ends spread along the box by distance, so arrows to
                    // different regions do not share a point.
                    @let spread = 14.0 * span;
                    @let (from, to) = if forward { (from + spread, to - spread) } else { (from - spread, to + spread) };
                    @let mid = (from + to) / 2.0;
                    @let label = format!("{} link{}{}{}", pair.links, if pair.links == 1 { "" } else { "s" },
                        pair.worst_lag.map_or(String::new(), |l| format!(" · {}", duration_text(l))),
                        if pair.worst >= Health::Down { format!(" · {}", pair.worst.label()) } else { String::new() });
                    g class=(format!("pair {}", pair.worst.class())) {
                        title { (names[*s]) " → " (names[*r]) ": " (label) " (" (pair.worst.label()) ")" }
                        path class="arc" d=(format!("M{from:.1},{y:.1} Q{mid:.1},{bend:.1} {to:.1},{y:.1}"))
                            marker-end=(format!("url(#arrow-{})", pair.worst.class())) {}
                        text.label x=(format!("{mid:.1}")) y=(format!("{:.1}", (y + bend) / 2.0 + if forward { -6.0 } else { 14.0 }))
                            text-anchor="middle" { (pair.worst.symbol()) " " (label) }
                    }
                }
            }
            @for (i, region) in view.regions.iter().enumerate() {
                @let down = region.nodes.iter().filter(|n| !n.up).count();
                @let local = pairs.get(&(i, i)).map_or(0, |p| p.links);
                g.region {
                    rect x=(format!("{:.1}", x(i))) y=(box_top) width=(BOX_WIDTH) height=(BOX_HEIGHT) rx="8" {}
                    text.region-name x=(format!("{:.1}", x(i) + BOX_WIDTH / 2.0)) y=(box_top + 24.0) text-anchor="middle" {
                        (region.name)
                    }
                    text.region-nodes x=(format!("{:.1}", x(i) + BOX_WIDTH / 2.0)) y=(box_top + 44.0) text-anchor="middle" {
                        (region.nodes.len()) " node" @if region.nodes.len() != 1 { "s" }
                        @if down > 0 { " · " (down) " down ✕" }
                        @if local > 0 { " · " (local) " local" }
                    }
                }
            }
        }
    }
}
