//! Redis (and Valkey): `INFO replication` every poll, with `INFO server` and
//! `INFO stats` on a connection's first poll and every
//! `SERVER_FACTS_EVERY` polls, in one pipelined round trip, parsed into an
//! observation. Unknown fields are ignored; a malformed line or value is an
//! error for the node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError};

use super::target::RedisTarget;
use crate::model::{
    next_sequence, scrub, FailureKind, Heartbeats, OpenPositionReader, PollFailure, PositionReader, Sampled, Source,
    SourcePosition,
};

/// Everything one poll learned about one Redis server.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisObservation {
    pub version: String,
    pub run_id: String,
    /// The port the server listens on (`tcp_port`): what its master lists
    /// it under, whatever address replag reaches it by.
    pub tcp_port: Option<u16>,
    /// `master` or `replica` (INFO says `slave`).
    pub is_master: bool,
    pub replid: String,
    /// The previous replication ID after a promotion (`master_replid2`).
    pub replid2: Option<String>,
    /// The first offset not of `replid2`'s history (`second_repl_offset`):
    /// the stream branched off just before it.
    pub second_repl_offset: Option<u64>,
    /// The node's replication offset (`master_repl_offset`).
    pub master_repl_offset: u64,
    /// A master: the offset after the last write that was not one of its
    /// own replication pings (`SourcePosition::mark`); the offset itself
    /// until replag has read the master twice.
    pub data_mark: u64,
    pub backlog_size: Option<u64>,
    pub backlog_histlen: Option<u64>,
    /// Master side: replicas connected now.
    pub replicas: Vec<ConnectedReplica>,
    /// Replica side.
    pub replica: Option<ReplicaState>,
    pub sync_full: Option<u64>,
    pub sync_partial_ok: Option<u64>,
    pub sync_partial_err: Option<u64>,
    /// replag's heartbeats (the `replag:heartbeat:<writer>` hash), when enabled.
    pub heartbeats: Heartbeats,
}

/// The hash replag's heartbeats live in: field = source node, value = sequence.
pub fn heartbeat_key(writer: &str) -> String {
    format!("replag:heartbeat:{writer}")
}

/// A `slaveN:` line on a master.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectedReplica {
    pub ip: String,
    pub port: u16,
    pub state: String,
    pub offset: u64,
    /// Seconds since the replica's last ACK (what redis_exporter calls lag).
    pub ack_age: Option<u64>,
}

/// The replica's view of its link to its master.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaState {
    pub master_host: String,
    pub master_port: u16,
    pub link_up: bool,
    pub last_io_seconds_ago: Option<i64>,
    pub link_down_since_seconds: Option<i64>,
    pub sync_in_progress: bool,
    /// Offset applied by the replica (`slave_repl_offset`).
    pub offset: u64,
}

impl RedisObservation {
    pub fn role(&self) -> &'static str {
        if self.is_master {
            "master"
        } else {
            "replica"
        }
    }
}

fn malformed(what: impl Into<String>) -> PollFailure {
    PollFailure::new(FailureKind::Protocol, what.into())
}

/// The `key:value` fields of an INFO reply, in reply order, borrowed from
/// its text. A list, not a map: a poll reads a dozen of a hundred fields, and
/// hashing every key was a tenth of the CPU of a 2,000-node fleet.
#[derive(Debug)]
pub struct InfoFields<'a>(Vec<(&'a str, &'a str)>);

impl<'a> InfoFields<'a> {
    /// The value of `key`; of a key given twice, the last (as a map keeps).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.0.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.0.iter().copied()
    }
}

/// Split INFO text into fields. Comments (`# Section`) and blank lines are
/// skipped; any other line must be `key:value`.
pub fn parse_info(text: &str) -> Result<InfoFields<'_>, PollFailure> {
    let mut fields = Vec::with_capacity(64);
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(':').ok_or_else(|| {
            malformed(format!("INFO line without ':': {:?}", line.chars().take(60).collect::<String>()))
        })?;
        fields.push((key, value));
    }
    Ok(InfoFields(fields))
}

fn number<T: std::str::FromStr>(fields: &InfoFields<'_>, key: &str) -> Result<Option<T>, PollFailure> {
    fields
        .get(key)
        .map(|v| v.parse::<T>().map_err(|_| malformed(format!("INFO field {key} is not a number: {:?}", truncate(v)))))
        .transpose()
}

fn required<T: std::str::FromStr>(fields: &InfoFields<'_>, key: &str) -> Result<T, PollFailure> {
    number(fields, key)?.ok_or_else(|| malformed(format!("INFO has no {key}")))
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

/// `ip=10.0.0.2,port=6380,state=online,offset=123,lag=0`
fn parse_replica_line(value: &str) -> Result<ConnectedReplica, PollFailure> {
    // The last of a key given twice, as a map keeps.
    let field = |k: &str| value.rsplit(',').filter_map(|kv| kv.split_once('=')).find(|(key, _)| *key == k);
    let get = |k: &str| {
        field(k).map(|(_, v)| v).ok_or_else(|| malformed(format!("replica line lacks {k}: {:?}", truncate(value))))
    };
    let num = |k: &str| -> Result<u64, PollFailure> {
        get(k)?.parse().map_err(|_| malformed(format!("replica line field {k} is not a number: {:?}", truncate(value))))
    };
    Ok(ConnectedReplica {
        ip: get("ip")?.to_string(),
        port: u16::try_from(num("port")?).map_err(|_| malformed("replica port out of range"))?,
        state: get("state")?.to_string(),
        offset: num("offset")?,
        ack_age: field("lag").and_then(|(_, v)| v.parse().ok()),
    })
}

/// What `INFO server` and `INFO stats` tell replag: fixed for a server
/// process's life (version, run ID, port — a restart closes every
/// connection, and a new connection reads them again) or counters only
/// exported (resyncs served). Most of the three sections' text is theirs,
/// so they are not read on every poll.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerFacts {
    pub version: String,
    pub run_id: String,
    pub tcp_port: Option<u16>,
    pub sync_full: Option<u64>,
    pub sync_partial_ok: Option<u64>,
    pub sync_partial_err: Option<u64>,
}

/// `INFO server` and `INFO stats` read again every this many polls on one
/// connection (the resync counters then trail by up to that many polls).
pub const SERVER_FACTS_EVERY: u32 = 10;

/// Read the facts from `INFO server` and `INFO stats`.
pub fn decode_server(server: &str, stats: &str) -> Result<ServerFacts, PollFailure> {
    let srv = parse_info(server)?;
    let st = parse_info(stats)?;
    Ok(ServerFacts {
        version: srv.get("redis_version").or(srv.get("valkey_version")).map(|s| s.to_string()).unwrap_or_default(),
        run_id: srv.get("run_id").map(|s| s.to_string()).unwrap_or_default(),
        tcp_port: srv.get("tcp_port").and_then(|p| p.parse().ok()),
        sync_full: number(&st, "sync_full")?,
        sync_partial_ok: number(&st, "sync_partial_ok")?,
        sync_partial_err: number(&st, "sync_partial_err")?,
    })
}

/// Build an observation from the three INFO sections.
pub fn decode(replication: &str, server: &str, stats: &str) -> Result<RedisObservation, PollFailure> {
    decode_replication(replication, &decode_server(server, stats)?)
}

/// Build an observation from `INFO replication` and the server's facts as
/// last read.
pub fn decode_replication(replication: &str, facts: &ServerFacts) -> Result<RedisObservation, PollFailure> {
    let repl = parse_info(replication)?;
    let role = repl.get("role").ok_or_else(|| malformed("INFO replication has no role"))?;
    let is_master = match role {
        "master" => true,
        "slave" | "replica" => false,
        other => return Err(malformed(format!("unknown role {:?}", truncate(other)))),
    };
    let mut replicas = Vec::new();
    for (key, value) in repl.iter() {
        if key.strip_prefix("slave").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
            replicas.push(parse_replica_line(value)?);
        }
    }
    replicas.sort_by(|a, b| (&a.ip, a.port).cmp(&(&b.ip, b.port)));
    let replica = if is_master {
        None
    } else {
        Some(ReplicaState {
            master_host: repl
                .get("master_host")
                .map(|s| s.to_string())
                .ok_or_else(|| malformed("replica without master_host"))?,
            master_port: required(&repl, "master_port")?,
            link_up: repl.get("master_link_status") == Some("up"),
            last_io_seconds_ago: number(&repl, "master_last_io_seconds_ago")?,
            link_down_since_seconds: number(&repl, "master_link_down_since_seconds")?,
            sync_in_progress: repl.get("master_sync_in_progress") == Some("1"),
            offset: required(&repl, "slave_repl_offset")?,
        })
    };
    let replid2 = repl.get("master_replid2").filter(|v| v.bytes().any(|b| b != b'0')).map(|v| v.to_string());
    Ok(RedisObservation {
        version: facts.version.clone(),
        run_id: facts.run_id.clone(),
        tcp_port: facts.tcp_port,
        is_master,
        replid: repl
            .get("master_replid")
            .map(|s| s.to_string())
            .ok_or_else(|| malformed("INFO has no master_replid"))?,
        replid2,
        second_repl_offset: number::<i64>(&repl, "second_repl_offset")?.and_then(|o| u64::try_from(o).ok()),
        master_repl_offset: required(&repl, "master_repl_offset")?,
        data_mark: required(&repl, "master_repl_offset")?,
        backlog_size: number(&repl, "repl_backlog_size")?,
        backlog_histlen: number(&repl, "repl_backlog_histlen")?,
        replicas,
        replica,
        sync_full: facts.sync_full,
        sync_partial_ok: facts.sync_partial_ok,
        sync_partial_err: facts.sync_partial_err,
        heartbeats: Heartbeats::default(),
    })
}

/// A Redis client error as a poll failure, with the password scrubbed.
pub(super) fn redis_failure(error: &RedisError, connecting: bool, password: Option<&[u8]>) -> PollFailure {
    let code = error.code().unwrap_or("");
    let kind = match error.kind() {
        ErrorKind::AuthenticationFailed => FailureKind::Auth,
        _ if matches!(code, "NOPERM" | "WRONGPASS" | "NOAUTH") => FailureKind::Auth,
        _ if error.is_timeout() => FailureKind::Timeout,
        ErrorKind::IoError if connecting => FailureKind::Connect,
        _ if error.is_connection_refusal() || error.is_connection_dropped() => FailureKind::Connect,
        ErrorKind::ResponseError | ErrorKind::ExtensionError => FailureKind::Query,
        _ if connecting => FailureKind::Connect,
        _ => FailureKind::Query,
    };
    PollFailure::new(kind, scrub(&error.to_string(), password))
}

/// A polled Redis node: one multiplexed connection.
pub struct RedisSource {
    target: RedisTarget,
    timeout: Duration,
    connect_timeout: Duration,
    connection: Option<MultiplexedConnection>,
    /// The last heartbeat sequence written (0: none yet).
    last_sequence: u64,
    /// The node was a master at the last poll: heartbeats are written there.
    was_master: bool,
    /// Its replication ID then: a sample of another ID belongs to no stream
    /// replag knows yet.
    replid: String,
    /// The master's last offset read, and its data mark then; shared with
    /// the position reads between polls.
    last_offset: Arc<Mutex<Option<(u64, u64)>>>,
    /// `INFO server` and `INFO stats` as last read on this connection, and
    /// the polls since (`SERVER_FACTS_EVERY`).
    facts: Option<(ServerFacts, u32)>,
}

/// What a master's replication ping (`*1\r\n$4\r\nPING\r\n`, every
/// `repl-ping-replica-period`) adds to its stream. No write command is that
/// short, so a stream that grew by exactly this much since the last reading
/// grew by a ping: housekeeping, not data.
const PING_BYTES: u64 = 14;

impl RedisSource {
    pub fn new(target: RedisTarget, timeout: Duration, connect_timeout: Duration) -> Self {
        Self {
            target,
            timeout,
            connect_timeout,
            connection: None,
            last_sequence: 0,
            was_master: false,
            replid: String::new(),
            last_offset: Arc::default(),
            facts: None,
        }
    }

    fn failure(&self, error: &RedisError, connecting: bool) -> PollFailure {
        redis_failure(error, connecting, self.target.password())
    }
}

/// A master's data mark at `offset`, given its last reading (`None` when
/// there is none in this stream): kept when the stream grew by nothing or by
/// one ping since, else the offset itself. A reply overtaken by a newer one
/// (polls and reads come on two connections) changes nothing.
fn data_mark(last: &Mutex<Option<(u64, u64)>>, same_stream: bool, offset: u64) -> u64 {
    let mut last = last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mark = match *last {
        Some((previous, mark)) if same_stream && offset < previous => return mark.min(offset),
        Some((previous, mark)) if same_stream && (offset == previous || offset == previous + PING_BYTES) => mark,
        _ => offset,
    };
    *last = Some((offset, mark));
    mark
}

/// One read of a master's offset (`INFO replication`, what the poll's
/// permissions already allow): `None` if it is no longer the master of
/// `replid`.
async fn read_offset(
    mut connection: MultiplexedConnection,
    replid: &str,
    last: &Mutex<Option<(u64, u64)>>,
    password: Option<&[u8]>,
) -> Result<Option<Sampled<SourcePosition>>, PollFailure> {
    let started = Instant::now();
    let result = redis::cmd("INFO").arg("replication").query_async::<String>(&mut connection).await;
    let at = started + started.elapsed() / 2;
    let text = result.map_err(|e| redis_failure(&e, false, password))?;
    let fields = parse_info(&text)?;
    if fields.get("role") != Some("master") || fields.get("master_replid") != Some(replid) {
        return Ok(None);
    }
    let offset = required(&fields, "master_repl_offset")?;
    let mark = data_mark(last, true, offset);
    Ok(Some(Sampled { at, observation: SourcePosition { position: offset, mark, mark_trails: false } }))
}

/// One multiplexed connection to `target` (TLS with its CA when set).
pub(super) async fn connect(
    target: &RedisTarget,
    timeout: Duration,
    connect_timeout: Duration,
) -> Result<MultiplexedConnection, PollFailure> {
    let fail = |e: RedisError| redis_failure(&e, true, target.password());
    let client = match &target.ca_pem {
        Some(pem) => Client::build_with_tls(
            target.info.clone(),
            redis::TlsCertificates { client_tls: None, root_cert: Some(pem.clone()) },
        ),
        None => Client::open(target.info.clone()),
    }
    .map_err(fail)?;
    let config = AsyncConnectionConfig::new().set_connection_timeout(connect_timeout).set_response_timeout(timeout);
    client.get_multiplexed_async_connection_with_config(&config).await.map_err(fail)
}

impl Source for RedisSource {
    type Observation = RedisObservation;

    async fn poll(&mut self) -> Result<Sampled<RedisObservation>, PollFailure> {
        let had_connection = self.connection.is_some();
        match self.poll_once().await {
            // The server closed a connection that was fine at the last poll:
            // Sentinel kills clients when it reconfigures a server, and so
            // does a `timeout` or `CLIENT KILL`. One fresh connection before
            // calling the node down.
            Err(f) if had_connection && f.kind == FailureKind::Connect => self.poll_once().await,
            result => result,
        }
    }

    fn position_reader(&mut self) -> Option<OpenPositionReader> {
        if self.connection.is_none() || !self.was_master {
            return None;
        }
        let (target, timeout, connect_timeout) = (self.target.clone(), self.timeout, self.connect_timeout);
        let (replid, last) = (Arc::<str>::from(self.replid.as_str()), self.last_offset.clone());
        Some(Arc::new(move || {
            let (target, replid, last) = (target.clone(), replid.clone(), last.clone());
            Box::pin(async move {
                // A connection of its own: a poll never waits behind reads.
                let connection = connect(&target, timeout, connect_timeout).await?;
                let password: Option<Arc<[u8]>> = target.password().map(Arc::from);
                let reader: PositionReader = Arc::new(move || {
                    let (connection, replid, last, password) =
                        (connection.clone(), replid.clone(), last.clone(), password.clone());
                    Box::pin(async move { read_offset(connection, &replid, &last, password.as_deref()).await })
                });
                Ok(reader)
            })
        }))
    }

    fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    fn reset(&mut self) {
        self.connection = None;
    }
}

impl RedisSource {
    async fn poll_once(&mut self) -> Result<Sampled<RedisObservation>, PollFailure> {
        if self.connection.is_none() {
            self.connection = Some(connect(&self.target, self.timeout, self.connect_timeout).await?);
            // Perhaps another server process now: read what it is.
            self.facts = None;
        }
        let Some(connection) = self.connection.as_mut() else { unreachable!("connection was just set") };
        let heartbeat = self.target.heartbeat.as_ref();
        let facts_due = self.facts.as_ref().is_none_or(|(_, polls)| polls + 1 >= SERVER_FACTS_EVERY);
        let mut pipe = redis::pipe();
        pipe.cmd("INFO").arg("replication");
        if facts_due {
            pipe.cmd("INFO").arg("server").cmd("INFO").arg("stats");
        }
        if let Some(hb) = heartbeat {
            pipe.cmd("HGETALL").arg(heartbeat_key(&hb.writer));
        }
        // On a master, the heartbeat write follows INFO on the same
        // connection: one round trip for both. After, not before: the poll's
        // offset is that before the write (the next position sample has it).
        let sequence = next_sequence(self.last_sequence);
        let mut writer = connection.clone();
        let write = async {
            match heartbeat.filter(|_| self.was_master) {
                Some(hb) => Some(
                    redis::cmd("HSET")
                        .arg(heartbeat_key(&hb.writer))
                        .arg(&hb.source)
                        .arg(sequence)
                        .query_async::<i64>(&mut writer)
                        .await,
                ),
                None => None,
            }
        };
        let started = Instant::now();
        let (result, written) = tokio::join!(pipe.query_async::<Vec<redis::Value>>(connection), write);
        let at = started + started.elapsed() / 2;
        let replies = result.and_then(|replies| {
            let mut replies = replies.into_iter();
            let mut next = || replies.next().ok_or_else(|| RedisError::from((ErrorKind::TypeError, "reply missing")));
            let replication: String = redis::from_redis_value(&next()?)?;
            let facts = if facts_due {
                let (server, stats): (String, String) =
                    (redis::from_redis_value(&next()?)?, redis::from_redis_value(&next()?)?);
                Some((server, stats))
            } else {
                None
            };
            let seen: HashMap<String, u64> =
                if heartbeat.is_some() { redis::from_redis_value(&next()?)? } else { HashMap::new() };
            Ok((replication, facts, seen))
        });
        match replies {
            Ok((replication, facts, seen)) => {
                if let Some((server, stats)) = facts {
                    self.facts = Some((decode_server(&server, &stats)?, 0));
                } else if let Some((_, polls)) = &mut self.facts {
                    *polls += 1;
                }
                let Some((facts, _)) = &self.facts else { unreachable!("read on a connection's first poll") };
                let mut observation = decode_replication(&replication, facts)?;
                observation.heartbeats.seen = seen.into_iter().collect();
                observation.heartbeats.seen.sort();
                match written {
                    Some(Ok(_)) => {
                        self.last_sequence = sequence;
                        let source = heartbeat.map(|h| h.source.clone()).unwrap_or_default();
                        observation.heartbeats.written = Some((source, sequence));
                    }
                    // A replica now (failover): nothing to write here any more.
                    Some(Err(e)) if e.code() == Some("READONLY") => {}
                    Some(Err(e)) => {
                        let failure = self.failure(&e, false);
                        return Err(PollFailure::new(failure.kind, format!("heartbeat write: {}", failure.message)));
                    }
                    None => {}
                }
                if observation.is_master {
                    let same_stream = observation.replid == self.replid;
                    observation.data_mark = data_mark(&self.last_offset, same_stream, observation.master_repl_offset);
                }
                self.was_master = observation.is_master;
                self.replid.clone_from(&observation.replid);
                Ok(Sampled { at, observation })
            }
            Err(e) => {
                let failure = self.failure(&e, false);
                self.connection = None;
                Err(failure)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MASTER: &str = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
        slave0:ip=127.0.0.1,port=6380,state=online,offset=5000,lag=0\r\n\
        slave1:ip=10.0.0.7,port=6379,state=wait_bgsave,offset=0,lag=3\r\n\
        master_failover_state:no-failover\r\nmaster_replid:aaaa\r\n\
        master_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:5042\r\n\
        second_repl_offset:-1\r\nrepl_backlog_active:1\r\nrepl_backlog_size:1048576\r\n\
        repl_backlog_first_byte_offset:1\r\nrepl_backlog_histlen:5042\r\nsome_future_field:whatever\r\n";
    const REPLICA: &str = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:6379\r\n\
        master_link_status:down\r\nmaster_last_io_seconds_ago:-1\r\nmaster_sync_in_progress:0\r\n\
        slave_read_repl_offset:4000\r\nslave_repl_offset:4000\r\nmaster_link_down_since_seconds:12\r\n\
        slave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\nconnected_slaves:0\r\n\
        master_replid:aaaa\r\nmaster_replid2:0000000000000000000000000000000000000000\r\n\
        master_repl_offset:4000\r\n";
    const SERVER: &str = "# Server\r\nredis_version:7.0.15\r\nrun_id:abc\r\ntcp_port:6379\r\n";
    const STATS: &str = "# Stats\r\nsync_full:2\r\nsync_partial_ok:1\r\nsync_partial_err:0\r\n";

    #[test]
    fn a_ping_keeps_the_data_mark_and_an_overtaken_reply_changes_nothing() {
        let last = Mutex::new(None);
        assert_eq!(data_mark(&last, true, 100), 100);
        assert_eq!(data_mark(&last, true, 100 + PING_BYTES), 100, "a ping is housekeeping");
        // A reply read before the ping, handled after it (another connection).
        assert_eq!(data_mark(&last, true, 100), 100);
        assert_eq!(data_mark(&last, true, 100 + 2 * PING_BYTES), 100, "the next ping still follows the newest");
        assert_eq!(data_mark(&last, true, 200), 200, "a write is data");
        assert_eq!(data_mark(&last, true, 150), 150, "an overtaken reply's mark is never above its offset");
        assert_eq!(data_mark(&last, false, 10), 10, "another stream starts afresh");
    }

    #[test]
    fn decodes_a_master() {
        let o = decode(MASTER, SERVER, STATS).unwrap();
        assert!(o.is_master);
        assert_eq!(o.master_repl_offset, 5042);
        assert_eq!(o.replicas.len(), 2);
        let waiting = o.replicas.iter().find(|r| r.ip == "10.0.0.7").unwrap();
        assert_eq!((waiting.port, waiting.state.as_str(), waiting.ack_age), (6379, "wait_bgsave", Some(3)));
        assert_eq!(o.replicas.iter().find(|r| r.port == 6380).unwrap().offset, 5000);
        assert_eq!(o.replid2, None, "all-zero replid2 means none");
        assert_eq!(o.sync_full, Some(2));
        assert_eq!(o.version, "7.0.15");
    }

    #[test]
    fn decodes_a_replica_with_its_link_down() {
        let o = decode(REPLICA, SERVER, STATS).unwrap();
        let r = o.replica.unwrap();
        assert!(!r.link_up);
        assert_eq!(r.link_down_since_seconds, Some(12));
        assert_eq!(r.last_io_seconds_ago, Some(-1));
        assert_eq!(r.offset, 4000);
        assert_eq!((r.master_host.as_str(), r.master_port), ("127.0.0.1", 6379));
    }

    #[test]
    fn malformed_replies_are_errors() {
        for (repl, why) in [
            ("", "no role"),
            ("role:master\r\n", "no replid"),
            ("role:overlord\r\nmaster_replid:a\r\nmaster_repl_offset:1\r\n", "bad role"),
            (&MASTER.replace("master_repl_offset:5042", "master_repl_offset:lots"), "bad number"),
            (&MASTER.replace("offset=5000", "offset=-5"), "bad replica offset"),
            (&MASTER.replace("port=6380", "port=99999"), "bad port"),
            (&MASTER.replace("slave0:ip=127.0.0.1,", "slave0:"), "replica line lacks ip"),
            (&format!("{MASTER}garbage without colon\r\n"), "bad line"),
            (&REPLICA.replace("master_port:6379\r\n", ""), "replica lacks port"),
        ] {
            let err = decode(repl, SERVER, STATS).unwrap_err();
            assert_eq!(err.kind, FailureKind::Protocol, "{why}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_info(text in "(?s).{0,400}", cut in 0usize..600) {
            let _ = decode(&text, SERVER, STATS);
            let truncated: String = MASTER.chars().take(cut).collect();
            let _ = decode(&truncated, &text, &text);
        }
    }
}
