//! Replicas found by discovery (named by the upstream's report), remembered
//! so that one that disappears shows as a down link for a while, not as a
//! vanished series.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::fleet::{label, Upstream};
use crate::model::{LinkKind, LinkView, Node, System, UNKNOWN_REGION};

/// A discovered (unconfigured) replica that disappears stays visible as a
/// down link this long, so it does not just vanish.
const DISCOVERED_RETENTION: Duration = Duration::from_secs(3600);
/// At most this many discovered links are remembered per system (a flapping
/// or hostile topology cannot grow memory without bound).
const DISCOVERED_MAX: usize = 1000;

/// Replicas found by discovery (named by the upstream's report), remembered
/// so that one that disappears shows as a down link for a while.
#[derive(Debug, Default)]
pub struct DiscoveredLinks {
    last_seen: HashMap<(usize, String), Instant>,
}

impl DiscoveredLinks {
    pub fn saw(&mut self, upstream: usize, name: &str, now: Instant) {
        let key = (upstream, name.to_string());
        if self.last_seen.len() < DISCOVERED_MAX || self.last_seen.contains_key(&key) {
            self.last_seen.insert(key, now);
        }
    }

    /// Nothing is remembered (the common case: every replica configured or revealed).
    pub fn is_empty(&self) -> bool {
        self.last_seen.is_empty()
    }

    /// A configured replica claimed this one: it is not a lost discovery.
    pub fn forget(&mut self, upstream: usize, name: &str) {
        self.last_seen.remove(&(upstream, name.to_string()));
    }

    /// Down links for remembered discoveries not in `current` (after
    /// forgetting expired ones); `why(upstream, link)` says why each is gone.
    pub fn vanished_links<D: Default>(
        &mut self,
        current: &HashSet<(usize, String)>,
        now: Instant,
        nodes: &[Node],
        (system, kind): (System, LinkKind),
        why: impl Fn(usize, &LinkView<D>) -> String,
    ) -> Vec<LinkView<D>> {
        self.last_seen.retain(|_, seen| now.saturating_duration_since(*seen) < DISCOVERED_RETENTION);
        let mut gone: Vec<_> = self
            .last_seen
            .iter()
            .filter(|(key, _)| !current.contains(*key))
            .map(|((u, name), seen)| (*u, name.clone(), *seen))
            .collect();
        gone.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        gone.into_iter()
            .map(|(u, name, last_seen)| {
                let replica = (name, UNKNOWN_REGION.to_string());
                let mut link = LinkView::new(system, kind, label(nodes, &Upstream::Node(u)), replica);
                link.state = "down".into();
                link.reason = Some(why(u, &link));
                link.data_age_seconds = Some(now.saturating_duration_since(last_seen).as_secs_f64());
                link
            })
            .collect()
    }

    /// `base`, or `base@addr`, or `base#n`: unique among `taken` on that upstream.
    pub fn unique_name(taken: &HashSet<(usize, String)>, upstream: usize, base: &str, addr: Option<&str>) -> String {
        let mut name = base.to_string();
        if taken.contains(&(upstream, name.clone())) {
            name = format!("{base}@{}", addr.unwrap_or("local"));
        }
        let mut n = 2;
        while taken.contains(&(upstream, name.clone())) {
            name = format!("{base}#{n}");
            n += 1;
        }
        name
    }
}
