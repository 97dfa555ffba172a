//! Polling a Sentinel or a Cluster node for the topology it knows: which
//! servers exist and who is whose master. The servers themselves are polled
//! like configured ones (INFO, one round trip each); this only says which.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use serde::Serialize;

use super::cluster::{self, ClusterView};
use super::sentinel::{parse_master, parse_replica, SentinelView};
use super::source::{connect, redis_failure};
use super::target::{RedisRole, RedisTarget};
use crate::model::{FailureKind, PollFailure, Sampled, Source};

/// What a Sentinel or Cluster entry reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RedisTopology {
    Sentinel(SentinelView),
    Cluster(ClusterView),
}

/// A server the topology names, to be polled.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Revealed {
    pub host: String,
    pub port: u16,
    /// The Sentinel master name it belongs to (a Cluster's members belong to the entry).
    pub group: Option<String>,
}

impl RedisTopology {
    /// Every server this view names.
    pub fn revealed(&self) -> Vec<Revealed> {
        let mut out = Vec::new();
        match self {
            RedisTopology::Sentinel(s) => {
                for m in &s.masters {
                    let group = Some(m.name.clone());
                    out.push(Revealed { host: m.ip.clone(), port: m.port, group: group.clone() });
                    for r in &m.replicas {
                        out.push(Revealed { host: r.ip.clone(), port: r.port, group: group.clone() });
                    }
                }
            }
            RedisTopology::Cluster(c) => {
                for n in c.nodes.iter().filter(|n| n.reachable_address) {
                    out.push(Revealed { host: n.ip.clone(), port: n.port, group: None });
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    pub fn role(&self) -> &'static str {
        match self {
            RedisTopology::Sentinel(_) => "sentinel",
            RedisTopology::Cluster(_) => "cluster",
        }
    }
}

/// A polled Sentinel or Cluster node.
pub struct TopologySource {
    target: RedisTarget,
    timeout: Duration,
    connect_timeout: Duration,
    connection: Option<MultiplexedConnection>,
}

impl TopologySource {
    pub fn new(target: RedisTarget, timeout: Duration, connect_timeout: Duration) -> Self {
        Self { target, timeout, connect_timeout, connection: None }
    }

    async fn sentinel(&self, c: &mut MultiplexedConnection, wanted: &[String]) -> Result<SentinelView, PollFailure> {
        let fail = |e: redis::RedisError| redis_failure(&e, false, self.target.password());
        let listed: Vec<HashMap<String, String>> =
            redis::cmd("SENTINEL").arg("MASTERS").query_async(c).await.map_err(fail)?;
        let mut masters = Vec::new();
        let mut monitored = Vec::new();
        for fields in &listed {
            let master = parse_master(fields)?;
            monitored.push(master.name.clone());
            if wanted.is_empty() || wanted.contains(&master.name) {
                masters.push(master);
            }
        }
        // A name in `masters` this Sentinel does not monitor is a mistake to
        // say out loud (a typo would otherwise just never show a group).
        if let Some(missing) = wanted.iter().find(|w| !monitored.contains(w)) {
            monitored.sort();
            return Err(PollFailure::new(
                FailureKind::Query,
                format!(
                    "this Sentinel monitors no master named {} (it monitors: {})",
                    crate::model::quoted(missing),
                    if monitored.is_empty() { "none".to_string() } else { monitored.join(", ") }
                ),
            ));
        }
        if masters.is_empty() {
            return Ok(SentinelView { masters });
        }
        // Every master's replicas and quorum check in one round trip: the
        // connection is multiplexed, so concurrent commands share a write.
        let mut pipe = redis::pipe();
        for m in &masters {
            pipe.cmd("SENTINEL").arg("REPLICAS").arg(&m.name);
        }
        let mut checks = tokio::task::JoinSet::new();
        for (i, m) in masters.iter().enumerate() {
            let (mut c, name) = (c.clone(), m.name.clone());
            checks.spawn(async move {
                (i, redis::cmd("SENTINEL").arg("CKQUORUM").arg(name).query_async::<String>(&mut c).await)
            });
        }
        let replicas: Vec<Vec<HashMap<String, String>>> = pipe.query_async(c).await.map_err(fail)?;
        for (m, listed) in masters.iter_mut().zip(&replicas) {
            m.replicas = listed.iter().map(parse_replica).collect::<Result<_, _>>()?;
            m.replicas.sort_by(|a, b| (&a.ip, a.port).cmp(&(&b.ip, b.port)));
        }
        while let Some(done) = checks.join_next().await {
            let Ok((i, answer)) = done else { continue };
            let (ok, message) = match answer {
                Ok(text) => (true, text),
                // NOQUORUM is an answer, not a failed poll.
                Err(e) if e.code() == Some("NOQUORUM") => (false, e.detail().unwrap_or("NOQUORUM").to_string()),
                Err(e) => return Err(fail(e)),
            };
            masters[i].quorum_ok = ok;
            masters[i].quorum_message = message.chars().take(200).collect();
        }
        masters.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(SentinelView { masters })
    }

    async fn cluster(&self, c: &mut MultiplexedConnection) -> Result<ClusterView, PollFailure> {
        let (info, nodes): (String, String) = redis::pipe()
            .cmd("CLUSTER")
            .arg("INFO")
            .cmd("CLUSTER")
            .arg("NODES")
            .query_async(c)
            .await
            .map_err(|e| redis_failure(&e, false, self.target.password()))?;
        cluster::decode(&info, &nodes)
    }
}

impl Source for TopologySource {
    type Observation = RedisTopology;

    async fn poll(&mut self) -> Result<Sampled<RedisTopology>, PollFailure> {
        let had_connection = self.connection.is_some();
        match self.poll_once().await {
            // Closed by the server since the last poll: one fresh connection.
            Err(f) if had_connection && f.kind == FailureKind::Connect => self.poll_once().await,
            result => result,
        }
    }

    fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    fn reset(&mut self) {
        self.connection = None;
    }
}

impl TopologySource {
    async fn poll_once(&mut self) -> Result<Sampled<RedisTopology>, PollFailure> {
        if self.connection.is_none() {
            self.connection = Some(connect(&self.target, self.timeout, self.connect_timeout).await?);
        }
        let Some(mut c) = self.connection.clone() else { unreachable!("connection was just set") };
        let started = Instant::now();
        let result = match &self.target.role {
            RedisRole::Sentinel { masters } => self.sentinel(&mut c, masters).await.map(RedisTopology::Sentinel),
            RedisRole::Cluster | RedisRole::Server => self.cluster(&mut c).await.map(RedisTopology::Cluster),
        };
        let at = started + started.elapsed() / 2;
        match result {
            Ok(observation) => Ok(Sampled { at, observation }),
            Err(failure) => {
                self.connection = None;
                Err(failure)
            }
        }
    }
}
