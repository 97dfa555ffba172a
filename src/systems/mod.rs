//! The systems replag watches, one folder each, and the one place that
//! lists them.
//!
//! A system's folder knows everything about it: how to reach a node from its
//! config entry, how to poll it, how observations become links, what a
//! snapshot shows beyond links, and its metric families. This file is the
//! small interface the generic core (config, poller, engine, snapshot,
//! server) sees: each enum here has one variant per system, and each
//! function one arm per system, that calls into the system's folder. Adding
//! a system is a folder plus an arm in each of them (see
//! docs/architecture.md, "Adding a system").

mod http;
pub mod postgres;
pub mod redis;
pub mod seaweedfs;

use std::collections::HashMap;
use std::ops::Deref;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::exposition::Families;
use crate::lag::{Histories, Member, StreamKey};
use crate::model::config::{ConfigError, RawNode};
use crate::model::{
    Heartbeat, Heartbeats, Identity, LinkView, Node, NodeIndex, OpenPositionReader, PollFailure, RoleFact, Sampled,
    Source, SourcePosition, System,
};

/// How to reach a node, per system.
#[derive(Debug, Clone)]
pub enum Target {
    Postgres(postgres::PostgresTarget),
    /// A Patroni cluster's REST API: its members join as PostgreSQL nodes.
    Patroni(postgres::patroni::PatroniTarget),
    Redis(redis::RedisTarget),
    Seaweedfs(seaweedfs::SeaweedTarget),
}

impl Target {
    /// The target a `[[regions.R.SYSTEM]]` entry describes; `key` names the
    /// entry in errors.
    pub fn from_config(
        system: System,
        key: &str,
        raw: &RawNode,
        env: &HashMap<String, String>,
    ) -> Result<Target, ConfigError> {
        Ok(match system {
            System::Postgres if raw.role.as_deref() == Some("patroni") => {
                Target::Patroni(postgres::patroni::from_config(key, raw, env)?)
            }
            System::Postgres => Target::Postgres(postgres::from_config(key, raw, env)?),
            System::Redis => Target::Redis(redis::from_config(key, raw, env)?),
            System::Seaweedfs => Target::Seaweedfs(seaweedfs::from_config(key, raw, env)?),
        })
    }

    /// Write and read replag's heartbeat on this node (`heartbeat = true`).
    pub fn with_heartbeat(mut self, key: &str, heartbeat: Heartbeat) -> Result<Target, ConfigError> {
        match &mut self {
            Target::Postgres(t) => t.heartbeat = Some(heartbeat),
            Target::Patroni(t) => t.set_heartbeat(heartbeat),
            Target::Redis(t) => t.heartbeat = Some(heartbeat),
            Target::Seaweedfs(t) => {
                t.set_heartbeat(heartbeat)
                    .map_err(|problem| crate::model::config::key_error(format!("{key}.heartbeat"), problem))?;
            }
        }
        Ok(self)
    }

    pub fn system(&self) -> System {
        match self {
            Target::Postgres(_) | Target::Patroni(_) => postgres::SYSTEM,
            Target::Redis(_) => redis::SYSTEM,
            Target::Seaweedfs(_) => seaweedfs::SYSTEM,
        }
    }

    /// `(host, port)` pairs the node answers on, to recognise it as another
    /// node's upstream or in a master's replica list.
    pub fn addresses(&self) -> Vec<(String, u16)> {
        match self {
            Target::Postgres(t) => t.addresses(),
            // A Patroni entry is no server: its members join as their own nodes.
            Target::Patroni(_) => Vec::new(),
            // A Sentinel or Cluster entry is no server anyone replicates
            // from: a Cluster seed's server joins as its own node.
            Target::Redis(t) if t.role != redis::RedisRole::Server => Vec::new(),
            Target::Redis(t) => t.addresses(),
            Target::Seaweedfs(t) => t.addresses(),
        }
    }

    /// Other nodes this one's links need (they share its shard).
    pub fn peers(&self) -> Vec<&String> {
        match self {
            Target::Seaweedfs(t) => t.peers(),
            Target::Postgres(_) | Target::Patroni(_) | Target::Redis(_) => Vec::new(),
        }
    }

    /// A connection to poll the node with (not connected yet).
    pub fn source(&self, timeout: Duration, connect_timeout: Duration) -> AnySource {
        match self {
            Target::Postgres(t) => {
                AnySource::Postgres(Box::new(postgres::PostgresSource::new(t.clone(), timeout, connect_timeout)))
            }
            Target::Patroni(t) => {
                AnySource::Patroni(postgres::patroni::PatroniSource::new(t.clone(), timeout, connect_timeout))
            }
            Target::Redis(t) if t.role != redis::RedisRole::Server => {
                AnySource::RedisTopology(redis::TopologySource::new(t.clone(), timeout, connect_timeout))
            }
            Target::Redis(t) => AnySource::Redis(redis::RedisSource::new(t.clone(), timeout, connect_timeout)),
            Target::Seaweedfs(t) => {
                AnySource::Seaweedfs(seaweedfs::SeaweedSource::new(t.clone(), timeout, connect_timeout))
            }
        }
    }
}

/// One configured node: who it is (`Node`, which it derefs to) and how to
/// reach it.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub node: Node,
    pub target: Target,
}

impl Deref for NodeSpec {
    type Target = Node;

    fn deref(&self) -> &Node {
        &self.node
    }
}

impl NodeSpec {
    pub fn system(&self) -> System {
        self.node.system
    }

    /// The node to poll for a server this (Sentinel, Cluster or Patroni)
    /// node revealed: named `host:port` (a Patroni member: its name), placed
    /// by the entry's `node_regions` (else: a Patroni member in the entry's
    /// region, a Redis server in `unknown`), reached with the entry's
    /// credentials.
    pub fn revealed_member(&self, found: &crate::model::Revealed) -> Option<NodeSpec> {
        if let Target::Patroni(t) = &self.target {
            let region = t.regions.region_of(&found.host, found.port).unwrap_or(&self.region);
            let node = Node {
                name: found.name.clone().unwrap_or_else(|| format!("{}:{}", found.host, found.port)),
                region: region.to_string(),
                system: System::Postgres,
                upstream: None,
                publishers: Default::default(),
                group: Some(self.group.clone().unwrap_or_else(|| self.name.clone())),
            };
            return Some(NodeSpec { node, target: Target::Postgres(t.member(&found.host, found.port)) });
        }
        let Target::Redis(t) = &self.target else { return None };
        let region = t.region_of(&found.host, found.port).unwrap_or(crate::model::UNKNOWN_REGION);
        let node = Node {
            name: format!("{}:{}", found.host, found.port),
            region: region.to_string(),
            system: System::Redis,
            upstream: None,
            publishers: Default::default(),
            group: Some(found.group.clone().unwrap_or_else(|| self.group.clone().unwrap_or_else(|| self.name.clone()))),
        };
        Some(NodeSpec { node, target: Target::Redis(t.member(&found.host, found.port)) })
    }
}

/// The index of configured nodes by name and address.
pub fn node_index(specs: &[NodeSpec]) -> NodeIndex {
    NodeIndex::new(specs.iter().map(|s| (s.system(), s.name.as_str(), s.target.addresses())))
}

/// One successful poll of one node.
#[derive(Debug, Clone)]
pub enum Observation {
    Postgres(postgres::PgObservation),
    Redis(redis::RedisObservation),
    /// What a Redis Sentinel or Cluster entry knows of its servers.
    RedisTopology(redis::RedisTopology),
    /// What a Patroni cluster's REST API says of its members.
    Patroni(postgres::patroni::PatroniView),
    Seaweedfs(seaweedfs::SeaweedObservation),
}

impl Observation {
    /// Servers this observation names that should be polled too (a
    /// Sentinel's masters and replicas, a Cluster's nodes).
    pub fn revealed(&self) -> Vec<crate::model::Revealed> {
        match self {
            Observation::RedisTopology(t) => t.revealed(),
            Observation::Patroni(p) => p.revealed(),
            _ => Vec::new(),
        }
    }

    /// The positions a primary-like node contributes to source streams (one
    /// for a PostgreSQL primary or Redis master; one per direction for a
    /// filer.sync process).
    pub fn source_positions(&self) -> Vec<(StreamKey, SourcePosition)> {
        match self {
            Observation::Postgres(o) => postgres::source_position(o).into_iter().collect(),
            Observation::Redis(o) => redis::source_position(o).into_iter().collect(),
            Observation::RedisTopology(_) | Observation::Patroni(_) => Vec::new(),
            Observation::Seaweedfs(o) => seaweedfs::source_positions(o),
        }
    }

    /// replag's heartbeats this poll wrote and saw (empty when not enabled).
    pub fn heartbeats(&self) -> Option<&Heartbeats> {
        match self {
            Observation::Postgres(o) => Some(&o.heartbeats),
            Observation::Redis(o) => Some(&o.heartbeats),
            Observation::RedisTopology(_) | Observation::Patroni(_) => None,
            Observation::Seaweedfs(o) => seaweedfs::heartbeats(o),
        }
    }

    pub fn identity(&self) -> Identity {
        match self {
            Observation::Postgres(o) => postgres::identity(o),
            Observation::Redis(o) => redis::identity(o),
            Observation::RedisTopology(t) => redis::topology_identity(t),
            Observation::Patroni(_) => Identity { role: "patroni".into(), version: None, labels: Vec::new() },
            Observation::Seaweedfs(o) => seaweedfs::identity(o),
        }
    }
}

/// Any system's connection, polled by the same poller loop.
pub enum AnySource {
    /// Boxed: it holds a client and prepared statements, twice the others' size.
    Postgres(Box<postgres::PostgresSource>),
    Redis(redis::RedisSource),
    RedisTopology(redis::TopologySource),
    Patroni(postgres::patroni::PatroniSource),
    Seaweedfs(seaweedfs::SeaweedSource),
}

impl Source for AnySource {
    type Observation = Observation;

    async fn poll(&mut self) -> Result<Sampled<Observation>, PollFailure> {
        match self {
            AnySource::Postgres(s) => Ok(s.poll().await?.map(Observation::Postgres)),
            AnySource::Redis(s) => Ok(s.poll().await?.map(Observation::Redis)),
            AnySource::RedisTopology(s) => Ok(s.poll().await?.map(Observation::RedisTopology)),
            AnySource::Patroni(s) => Ok(s.poll().await?.map(Observation::Patroni)),
            AnySource::Seaweedfs(s) => Ok(s.poll().await?.map(Observation::Seaweedfs)),
        }
    }

    fn is_connected(&self) -> bool {
        match self {
            AnySource::Postgres(s) => s.is_connected(),
            AnySource::Redis(s) => s.is_connected(),
            AnySource::RedisTopology(s) => s.is_connected(),
            AnySource::Patroni(s) => s.is_connected(),
            AnySource::Seaweedfs(s) => s.is_connected(),
        }
    }

    fn position_reader(&mut self) -> Option<OpenPositionReader> {
        match self {
            AnySource::Postgres(s) => s.position_reader(),
            AnySource::Redis(s) => s.position_reader(),
            AnySource::RedisTopology(_) | AnySource::Patroni(_) | AnySource::Seaweedfs(_) => None,
        }
    }

    fn reset(&mut self) {
        match self {
            AnySource::Postgres(s) => s.reset(),
            AnySource::Redis(s) => s.reset(),
            AnySource::RedisTopology(s) => s.reset(),
            AnySource::Patroni(s) => s.reset(),
            AnySource::Seaweedfs(s) => s.reset(),
        }
    }
}

/// What the engine knows of one node, as link rules read it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observed<'a> {
    /// The last successful poll, kept while the node is down.
    pub last_ok: Option<&'a Sampled<Observation>>,
    /// The node has reported at least once.
    pub polled: bool,
    pub failure: Option<&'a PollFailure>,
}

/// Everything the link rules of every system read: the configured nodes,
/// what was last observed of each, the source position histories.
pub struct FleetState<'a> {
    pub specs: &'a [NodeSpec],
    /// `specs`' nodes, as one slice.
    pub nodes: &'a [Node],
    /// By node index.
    pub observed: &'a [Observed<'a>],
    pub index: &'a NodeIndex,
    pub histories: &'a Histories,
    /// Every node has reported at least once: unclaimed rows and slots are
    /// really unconfigured replicas.
    pub discovery: bool,
    pub poll_interval: Duration,
}

impl<'a> FleetState<'a> {
    /// The fleet as one system sees it: its members with typed targets and
    /// observations.
    fn view<T, O>(
        &self,
        system: System,
        target: impl Fn(&'a Target) -> Option<&'a T>,
        observation: impl Fn(&'a Observation) -> Option<&'a O>,
    ) -> crate::lag::Fleet<'a, T, O> {
        let members = self
            .specs
            .iter()
            .zip(self.observed)
            .map(|(spec, seen)| {
                let target = target(&spec.target)?;
                let last_ok = seen.last_ok.and_then(|s| Some((observation(&s.observation)?, s.at)));
                Some(Member { target, last_ok, polled: seen.polled, failure: seen.failure })
            })
            .collect();
        crate::lag::Fleet {
            system,
            nodes: self.nodes,
            members,
            index: self.index,
            histories: self.histories,
            discovery: self.discovery,
            poll_interval: self.poll_interval,
        }
    }
}

/// What every system's link rules remember between snapshots.
#[derive(Debug, Default)]
pub struct Memory {
    postgres: postgres::PgMemory,
    redis: redis::RedisMemory,
    seaweedfs: seaweedfs::SeaweedMemory,
}

impl Memory {
    /// Every system's links (in system order) and details, and every
    /// node's role facts (PostgreSQL and Redis: the systems that fail over)
    /// for the failover part, read from the same views.
    pub fn derive(&mut self, fleet: &FleetState<'_>, now: Instant) -> (Vec<Link>, Details, Vec<RoleFact>) {
        let mut roles = Vec::new();
        let pg_view = fleet.view(
            postgres::SYSTEM,
            |t| if let Target::Postgres(t) = t { Some(t) } else { None },
            |o| if let Observation::Postgres(o) = o { Some(o) } else { None },
        );
        let patroni_view = fleet.view(
            postgres::SYSTEM,
            |t| if let Target::Patroni(t) = t { Some(t) } else { None },
            |o| if let Observation::Patroni(o) = o { Some(o) } else { None },
        );
        postgres::role_facts(&pg_view, &mut roles);
        postgres::patroni::annotate_switches(&patroni_view, &mut roles);
        let (pg_links, mut postgres) = postgres::derive(&mut self.postgres, pg_view, now);
        postgres.patroni = postgres::patroni::derive(&patroni_view, &postgres.servers);
        let redis_view = fleet.view(
            redis::SYSTEM,
            |t| if let Target::Redis(t) = t { Some(t).filter(|t| t.role == redis::RedisRole::Server) } else { None },
            |o| if let Observation::Redis(o) = o { Some(o) } else { None },
        );
        let topology_view = fleet.view(
            redis::SYSTEM,
            |t| if let Target::Redis(t) = t { Some(t).filter(|t| t.role != redis::RedisRole::Server) } else { None },
            |o| if let Observation::RedisTopology(o) = o { Some(o) } else { None },
        );
        redis::role_facts(&redis_view, &topology_view, &mut roles);
        let (redis_links, redis) = redis::derive(&mut self.redis, redis_view, topology_view, now);
        let seaweed_view = fleet.view(
            seaweedfs::SYSTEM,
            |t| if let Target::Seaweedfs(t) = t { Some(t) } else { None },
            |o| if let Observation::Seaweedfs(o) = o { Some(o) } else { None },
        );
        let (seaweed_links, seaweedfs) = seaweedfs::derive(&mut self.seaweedfs, seaweed_view, now);
        let links = pg_links
            .into_iter()
            .map(|l| l.map_detail(|postgres| LinkDetail { postgres, redis: None }))
            .chain(redis_links.into_iter().map(|l| l.map_detail(|redis| LinkDetail { postgres: None, redis })))
            .chain(seaweed_links.into_iter().map(|l| l.map_detail(|()| LinkDetail::default())))
            .collect();
        (links, Details { postgres, redis, seaweedfs }, roles)
    }
}

/// A position as people read it in `system`: an LSN (`0/5A3B2C10`) for
/// PostgreSQL, an offset for the others.
pub fn position_text(system: System, position: u64) -> String {
    match system {
        System::Postgres => postgres::Lsn(position).to_string(),
        System::Redis | System::Seaweedfs => position.to_string(),
    }
}

/// Each system's figures beyond links, as a snapshot holds them (serialized
/// under the system's name in /api/v1/status).
#[derive(Debug, Default, Serialize)]
pub struct Details {
    pub postgres: postgres::PgDetails,
    pub redis: redis::RedisDetails,
    pub seaweedfs: seaweedfs::SeaweedDetails,
}

/// What a link's system adds to it, under the system's name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LinkDetail {
    pub postgres: Option<postgres::PgLinkDetail>,
    pub redis: Option<redis::RedisLinkDetail>,
}

/// A link of any system, as a snapshot holds it.
pub type Link = LinkView<LinkDetail>;

/// Every system's own metric families.
pub fn render_metrics(f: &Families, links: &[Link], details: &Details) {
    let pg_links = links.iter().filter_map(|l| Some((&l.id, l.detail.postgres.as_ref()?)));
    postgres::render_metrics(f, pg_links, &details.postgres);
    let redis_links = links.iter().filter_map(|l| Some((&l.id, l.detail.redis.as_ref()?)));
    redis::render_metrics(f, redis_links, &details.redis);
    seaweedfs::render_metrics(f, &details.seaweedfs);
}
