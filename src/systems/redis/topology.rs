//! Polling a Sentinel or a Cluster node for the topology it knows: which
//! servers exist and who is whose master. The servers themselves are polled
//! like configured ones (INFO, one round trip each); this only says which.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use serde::Serialize;
use tokio::task::JoinSet;

use super::cluster::{self, ClusterView};
use super::sentinel::{parse_master, parse_replica, SentinelView};
use super::source::{connect, redis_failure};
use super::target::{RedisRole, RedisTarget};
use crate::model::{FailureKind, PollFailure, Revealed, Sampled, Source};

/// What a Sentinel or Cluster entry reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RedisTopology {
    Sentinel(SentinelView),
    Cluster(ClusterView),
}

impl RedisTopology {
    /// Every server this view names.
    pub fn revealed(&self) -> Vec<Revealed> {
        let mut out = Vec::new();
        match self {
            RedisTopology::Sentinel(s) => {
                for m in &s.masters {
                    let group = Some(m.name.clone());
                    out.push(Revealed { host: m.ip.clone(), port: m.port, group: group.clone(), name: None });
                    for r in &m.replicas {
                        out.push(Revealed { host: r.ip.clone(), port: r.port, group: group.clone(), name: None });
                    }
                }
            }
            RedisTopology::Cluster(c) => {
                for n in c.nodes.iter().filter(|n| n.reachable_address) {
                    out.push(Revealed { host: n.ip.clone(), port: n.port, group: None, name: None });
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
    /// The masters a Sentinel named at the last poll: asked about together
    /// with `SENTINEL MASTERS` at the next.
    known_masters: Vec<String>,
}

impl TopologySource {
    pub fn new(target: RedisTarget, timeout: Duration, connect_timeout: Duration) -> Self {
        Self { target, timeout, connect_timeout, connection: None, known_masters: Vec::new() }
    }

    /// A Sentinel's view in one round trip: `SENTINEL MASTERS` goes out
    /// together with `SENTINEL REPLICAS` and `CKQUORUM` for every master
    /// expected (configured in `masters`, else seen at the last poll). Only a
    /// master nobody expected (a new one, or the first poll without
    /// `masters`) costs a second round trip. Across a WAN a poll must fit
    /// its timeout: two round trips at 200 ms did not fit 400 ms.
    async fn sentinel(&mut self, c: &MultiplexedConnection, wanted: &[String]) -> Result<SentinelView, PollFailure> {
        let password = self.target.password().map(<[u8]>::to_vec);
        let fail = |e: redis::RedisError| redis_failure(&e, false, password.as_deref());
        let expected: Vec<String> = if wanted.is_empty() { self.known_masters.clone() } else { wanted.to_vec() };
        let mut pending = spawn_master_details(c, &expected);
        let listed: Vec<HashMap<String, String>> =
            redis::cmd("SENTINEL").arg("MASTERS").query_async(&mut c.clone()).await.map_err(&fail)?;
        let mut masters = Vec::new();
        let mut monitored = Vec::new();
        for fields in &listed {
            let master = parse_master(fields)?;
            monitored.push(master.name.clone());
            if wanted.is_empty() || wanted.contains(&master.name) {
                masters.push(master);
            }
        }
        // Asked about at the next poll even if this one runs out of time.
        self.known_masters = masters.iter().map(|m| m.name.clone()).collect();
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
        let mut details = collect_master_details(&mut pending).await;
        let unexpected: Vec<String> =
            masters.iter().map(|m| m.name.clone()).filter(|n| !details.contains_key(n)).collect();
        if !unexpected.is_empty() {
            details.extend(collect_master_details(&mut spawn_master_details(c, &unexpected)).await);
        }
        for m in &mut masters {
            let Some((replicas, quorum)) = details.remove(&m.name) else { continue };
            let listed = replicas.map_err(&fail)?;
            m.replicas = listed.iter().map(parse_replica).collect::<Result<_, _>>()?;
            m.replicas.sort_by(|a, b| (&a.ip, a.port).cmp(&(&b.ip, b.port)));
            (m.quorum_ok, m.quorum_message) = match quorum {
                Ok(text) => (true, text),
                // NOQUORUM is an answer, not a failed poll.
                Err(e) if e.code() == Some("NOQUORUM") => (false, e.detail().unwrap_or("NOQUORUM").to_string()),
                Err(e) => return Err(fail(e)),
            };
            m.quorum_message = m.quorum_message.chars().take(200).collect();
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

/// One master's `SENTINEL REPLICAS` and `SENTINEL CKQUORUM` replies.
type MasterDetails = (redis::RedisResult<Vec<HashMap<String, String>>>, redis::RedisResult<String>);

/// Send every named master's `REPLICAS` and `CKQUORUM` at once: on a
/// multiplexed connection, concurrent commands share the way out and back.
fn spawn_master_details(c: &MultiplexedConnection, names: &[String]) -> JoinSet<(String, MasterDetails)> {
    let mut set = JoinSet::new();
    for name in names {
        let (mut replicas_c, mut quorum_c, name) = (c.clone(), c.clone(), name.clone());
        set.spawn(async move {
            let (mut replicas, mut quorum) = (redis::cmd("SENTINEL"), redis::cmd("SENTINEL"));
            replicas.arg("REPLICAS").arg(&name);
            quorum.arg("CKQUORUM").arg(&name);
            let details = tokio::join!(replicas.query_async(&mut replicas_c), quorum.query_async(&mut quorum_c));
            (name, details)
        });
    }
    set
}

async fn collect_master_details(set: &mut JoinSet<(String, MasterDetails)>) -> HashMap<String, MasterDetails> {
    let mut out = HashMap::new();
    while let Some(done) = set.join_next().await {
        if let Ok((name, details)) = done {
            out.insert(name, details);
        }
    }
    out
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
        let result = match self.target.role.clone() {
            RedisRole::Sentinel { masters } => self.sentinel(&c, &masters).await.map(RedisTopology::Sentinel),
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
