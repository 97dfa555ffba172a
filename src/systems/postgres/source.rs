//! PostgreSQL: one JSON document per poll, from one prepared statement (one
//! round trip), whatever the node's role. The query is built for the server's
//! version so columns a version lacks are simply absent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement};

use super::lsn::Lsn;
use super::target::PostgresTarget;
use crate::model::{
    error_chain, next_sequence, scrub, FailureKind, Heartbeats, OpenPositionReader, PollFailure, PositionReader,
    Sampled, Source, SourcePosition,
};

/// Oldest server the query supports (`pg_current_wal_lsn` and friends).
const MIN_VERSION_NUM: u32 = 100_000;

/// Everything one poll learned about one PostgreSQL server.
#[derive(Debug, Clone, PartialEq)]
pub struct PgObservation {
    pub version: String,
    pub version_num: u32,
    pub in_recovery: bool,
    pub system_identifier: String,
    /// Primary: the timeline it writes; standby: the timeline it receives.
    pub timeline: Option<u32>,
    /// Primary only: `pg_current_wal_lsn()`.
    pub current_lsn: Option<Lsn>,
    /// The next transaction ID not yet completed (its current snapshot's
    /// xmax; on a standby, as replayed: what tells a promoted node's first
    /// writes), which moves when a transaction that wrote commits or
    /// aborts and not for WAL without one (checkpoints, standby snapshots):
    /// what tells data from housekeeping in the WAL (`SourcePosition::mark`).
    pub commit_mark: Option<u64>,
    /// Standby only.
    pub receive_lsn: Option<Lsn>,
    pub replay_lsn: Option<Lsn>,
    pub replay_paused: Option<bool>,
    /// `pg_last_xact_replay_timestamp()` as Unix seconds (the standby's clock).
    pub last_xact_replay_unix: Option<f64>,
    pub cluster_name: String,
    pub walsenders: Vec<WalSender>,
    pub slots: Vec<Slot>,
    pub wal_receiver: Option<WalReceiver>,
    /// Logical subscriptions this server has (as a subscriber).
    pub subscriptions: Vec<Subscription>,
    /// `wal_receiver_status_interval` in seconds: how often this server, as a
    /// standby or subscriber, sends its upstream a status reply (0: never
    /// unasked). None when the poll did not say.
    pub status_interval: Option<f64>,
    /// replag's heartbeats (`replag.heartbeat`), when enabled on this node.
    pub heartbeats: Heartbeats,
    /// A primary past timeline 1: where its timeline branched off its
    /// parent, from the timeline's history file (read once per timeline;
    /// None where the role may not read it).
    pub timeline_switch: Option<TimelineSwitch>,
}

/// The last line of a timeline's history file: the parent timeline and the
/// LSN where the new one began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineSwitch {
    pub parent: u32,
    pub at: Lsn,
}

/// Parse a timeline history file (`parentTLI<TAB>switchpoint<TAB>reason`
/// per line, comments and blank lines allowed): its last entry.
pub fn parse_timeline_history(text: &str) -> Option<TimelineSwitch> {
    text.lines()
        .rev()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let parent = fields.next()?.parse().ok()?;
            let at = fields.next()?.parse().ok()?;
            Some(TimelineSwitch { parent, at })
        })
        .next()
}

/// A `pg_subscription` row with its workers and statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub name: String,
    pub enabled: bool,
    /// The slot on the publisher (None if created with `slot_name = NONE`).
    pub slot_name: Option<String>,
    pub publications: Vec<String>,
    /// The apply worker (`pg_stat_subscription` row with `relid IS NULL`).
    pub apply_worker: Option<SubscriptionWorker>,
    /// Table synchronization workers running now.
    pub sync_workers: usize,
    /// PostgreSQL 15+ (`pg_stat_subscription_stats`).
    pub apply_error_count: Option<u64>,
    pub sync_error_count: Option<u64>,
    /// Tables per `pg_subscription_rel.srsubstate` (i, d, f, s, r).
    pub table_states: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionWorker {
    pub pid: i32,
    pub received_lsn: Option<Lsn>,
    /// Seconds since the publisher sent / this server received the last message (this server's clock).
    pub last_msg_send_age: Option<f64>,
    pub last_msg_receipt_age: Option<f64>,
}

/// A `pg_stat_replication` row: a downstream this server streams to.
#[derive(Debug, Clone, PartialEq)]
pub struct WalSender {
    pub pid: i32,
    pub application_name: String,
    pub client_addr: Option<String>,
    pub state: String,
    pub sync_state: String,
    pub sent_lsn: Option<Lsn>,
    pub write_lsn: Option<Lsn>,
    pub flush_lsn: Option<Lsn>,
    pub replay_lsn: Option<Lsn>,
    /// PostgreSQL's own `write_lag`, `flush_lag`, `replay_lag` (NULL when idle).
    pub write_lag: Option<f64>,
    pub flush_lag: Option<f64>,
    pub replay_lag: Option<f64>,
    /// `reply_time` of the downstream's last status reply, as Unix seconds on
    /// the downstream's clock (PostgreSQL 12+): only compared with itself,
    /// to see that replies keep coming.
    pub reply_time: Option<f64>,
}

/// A `pg_replication_slots` row.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub name: String,
    pub slot_type: String,
    pub active: bool,
    pub active_pid: Option<i32>,
    pub restart_lsn: Option<Lsn>,
    pub confirmed_flush_lsn: Option<Lsn>,
    /// PostgreSQL 13+.
    pub wal_status: Option<String>,
    pub safe_wal_size: Option<i64>,
}

/// The standby's `pg_stat_wal_receiver` row.
#[derive(Debug, Clone, PartialEq)]
pub struct WalReceiver {
    pub status: String,
    pub received_tli: Option<u32>,
    pub flushed_lsn: Option<Lsn>,
    /// Seconds since the last message from the upstream, on the standby's clock.
    pub last_msg_receipt_age: Option<f64>,
    pub slot_name: Option<String>,
    /// PostgreSQL 11+.
    pub sender_host: Option<String>,
    pub sender_port: Option<u16>,
}

impl PgObservation {
    /// The walsender with this pid serves a logical slot (a subscription,
    /// not a standby).
    pub fn is_logical_walsender(&self, pid: i32) -> bool {
        self.slots.iter().any(|s| s.slot_type == "logical" && s.active_pid == Some(pid))
    }

    pub fn role(&self) -> &'static str {
        if self.in_recovery {
            "standby"
        } else {
            "primary"
        }
    }
}

// ---- the query ---------------------------------------------------------------

/// replag's heartbeat table. Created by the operator (docs/configuration.md,
/// "Heartbeats"); replag writes one row per (writer, source).
pub const HEARTBEAT_TABLE: &str = "replag.heartbeat";

/// A primary's commit mark and position alone, between polls (NULL once it
/// is a standby). The mark first: a transaction completes after its commit
/// is written, so a mark read before the position never runs ahead of it
/// (the poll query reads them in the same order).
const SAMPLE_QUERY: &str = "SELECT txid_snapshot_xmax(txid_current_snapshot()), \
     CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END";

/// Upsert this node's heartbeat: $1 writer, $2 source, $3 sequence.
const HEARTBEAT_WRITE: &str =
    "INSERT INTO replag.heartbeat (writer, source, seq, written_at) VALUES ($1, $2, $3, now()) \
     ON CONFLICT (writer, source) DO UPDATE SET seq = excluded.seq, written_at = excluded.written_at";

/// The poll query for a server version. Every column a version lacks is left
/// out rather than failing the poll. With `heartbeat`, it also reads every
/// source's heartbeat of writer `$1`.
pub fn poll_query(version_num: u32, heartbeat: bool) -> String {
    let v = version_num;
    let heartbeats = if heartbeat {
        format!(
            "(SELECT coalesce(json_agg(json_build_object('source', source, 'seq', seq)), '[]'::json) \
             FROM {HEARTBEAT_TABLE} WHERE writer = $1::text)"
        )
    } else {
        "'[]'::json".to_string()
    };
    let reply_time = if v >= 120_000 { "extract(epoch from reply_time)" } else { "NULL" };
    let wal_status = if v >= 130_000 { "wal_status" } else { "NULL" };
    let safe_wal_size = if v >= 130_000 { "safe_wal_size" } else { "NULL" };
    let flushed = if v >= 130_000 { "flushed_lsn" } else { "received_lsn" };
    let sender = if v >= 110_000 { "sender_host, 'sender_port', sender_port" } else { "NULL, 'sender_port', NULL" };
    let (apply_errors, sync_errors) = if v >= 150_000 {
        (
            "(SELECT apply_error_count FROM pg_stat_subscription_stats x WHERE x.subid = s.oid)",
            "(SELECT sync_error_count FROM pg_stat_subscription_stats x WHERE x.subid = s.oid)",
        )
    } else {
        ("NULL", "NULL")
    };
    format!(
        r#"SELECT json_build_object(
  'version', current_setting('server_version'),
  'version_num', current_setting('server_version_num')::int,
  'in_recovery', pg_is_in_recovery(),
  'system_identifier', (SELECT system_identifier::text FROM pg_control_system()),
  'walfile', CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END,
  'commit_mark', txid_snapshot_xmax(txid_current_snapshot()),
  'current_lsn', CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END,
  'receive_lsn', pg_last_wal_receive_lsn()::text,
  'replay_lsn', pg_last_wal_replay_lsn()::text,
  'replay_paused', CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END,
  'last_xact_replay_unix', extract(epoch from pg_last_xact_replay_timestamp()),
  'cluster_name', current_setting('cluster_name'),
  'status_interval', (SELECT setting::float8 FROM pg_settings WHERE name = 'wal_receiver_status_interval'),
  'heartbeats', {heartbeats},
  'walsenders', (SELECT coalesce(json_agg(json_build_object(
      'pid', pid, 'application_name', application_name, 'client_addr', host(client_addr),
      'state', state, 'sync_state', sync_state,
      'sent_lsn', sent_lsn::text, 'write_lsn', write_lsn::text,
      'flush_lsn', flush_lsn::text, 'replay_lsn', replay_lsn::text,
      'write_lag', extract(epoch from write_lag), 'flush_lag', extract(epoch from flush_lag),
      'replay_lag', extract(epoch from replay_lag), 'reply_time', {reply_time})), '[]'::json)
    FROM pg_stat_replication),
  'slots', (SELECT coalesce(json_agg(json_build_object(
      'name', slot_name, 'slot_type', slot_type, 'active', active, 'active_pid', active_pid,
      'restart_lsn', restart_lsn::text, 'confirmed_flush_lsn', confirmed_flush_lsn::text,
      'wal_status', {wal_status}, 'safe_wal_size', {safe_wal_size})), '[]'::json)
    FROM pg_replication_slots),
  'wal_receiver', (SELECT json_build_object(
      'status', status, 'received_tli', received_tli, 'flushed_lsn', {flushed}::text,
      'last_msg_receipt_age', extract(epoch from now() - last_msg_receipt_time),
      'slot_name', slot_name, 'sender_host', {sender})
    FROM pg_stat_wal_receiver LIMIT 1),
  'subscriptions', (SELECT coalesce(json_agg(json_build_object(
      'name', s.subname, 'enabled', s.subenabled, 'slot_name', s.subslotname,
      'publications', s.subpublications,
      'workers', (SELECT coalesce(json_agg(json_build_object(
          'pid', w.pid, 'relid', w.relid::int8, 'received_lsn', w.received_lsn::text,
          'last_msg_send_age', extract(epoch from now() - w.last_msg_send_time),
          'last_msg_receipt_age', extract(epoch from now() - w.last_msg_receipt_time))), '[]'::json)
        FROM pg_stat_subscription w WHERE w.subid = s.oid AND w.pid IS NOT NULL),
      'apply_error_count', {apply_errors}, 'sync_error_count', {sync_errors},
      'table_states', (SELECT coalesce(json_object_agg(st, n), '{{}}'::json)
        FROM (SELECT r.srsubstate::text AS st, count(*) AS n FROM pg_subscription_rel r
              WHERE r.srsubid = s.oid GROUP BY 1) q))), '[]'::json)
    FROM pg_subscription s)
)::text"#
    )
}

// ---- decoding ------------------------------------------------------------------

#[derive(Deserialize)]
struct RawObservation {
    version: String,
    version_num: u32,
    in_recovery: bool,
    system_identifier: Option<String>,
    walfile: Option<String>,
    current_lsn: Option<String>,
    commit_mark: Option<u64>,
    receive_lsn: Option<String>,
    replay_lsn: Option<String>,
    replay_paused: Option<bool>,
    last_xact_replay_unix: Option<f64>,
    #[serde(default)]
    cluster_name: String,
    #[serde(default)]
    walsenders: Vec<RawWalSender>,
    #[serde(default)]
    slots: Vec<RawSlot>,
    wal_receiver: Option<RawWalReceiver>,
    #[serde(default)]
    subscriptions: Vec<RawSubscription>,
    status_interval: Option<f64>,
    #[serde(default)]
    heartbeats: Vec<RawHeartbeat>,
}

#[derive(Deserialize)]
struct RawHeartbeat {
    source: String,
    seq: i64,
}

#[derive(Deserialize)]
struct RawSubscription {
    name: String,
    enabled: bool,
    slot_name: Option<String>,
    #[serde(default)]
    publications: Vec<String>,
    #[serde(default)]
    workers: Vec<RawWorker>,
    apply_error_count: Option<u64>,
    sync_error_count: Option<u64>,
    #[serde(default)]
    table_states: std::collections::BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct RawWorker {
    pid: i32,
    /// An oid: cast to int8 in the query (json renders an oid as a string).
    relid: Option<i64>,
    received_lsn: Option<String>,
    last_msg_send_age: Option<f64>,
    last_msg_receipt_age: Option<f64>,
}

#[derive(Deserialize)]
struct RawWalSender {
    pid: i32,
    application_name: Option<String>,
    client_addr: Option<String>,
    state: Option<String>,
    sync_state: Option<String>,
    sent_lsn: Option<String>,
    write_lsn: Option<String>,
    flush_lsn: Option<String>,
    replay_lsn: Option<String>,
    write_lag: Option<f64>,
    flush_lag: Option<f64>,
    replay_lag: Option<f64>,
    reply_time: Option<f64>,
}

#[derive(Deserialize)]
struct RawSlot {
    name: String,
    slot_type: String,
    active: bool,
    active_pid: Option<i32>,
    restart_lsn: Option<String>,
    confirmed_flush_lsn: Option<String>,
    wal_status: Option<String>,
    safe_wal_size: Option<i64>,
}

#[derive(Deserialize)]
struct RawWalReceiver {
    status: Option<String>,
    received_tli: Option<u32>,
    flushed_lsn: Option<String>,
    last_msg_receipt_age: Option<f64>,
    slot_name: Option<String>,
    sender_host: Option<String>,
    sender_port: Option<i32>,
}

fn lsn(field: &str, text: Option<String>) -> Result<Option<Lsn>, PollFailure> {
    text.map(|t| t.parse::<Lsn>().map_err(|e| PollFailure::new(FailureKind::Protocol, format!("{field}: {e}"))))
        .transpose()
}

/// Timeline from a WAL file name: its first 8 hex digits.
fn timeline_of_walfile(name: &str) -> Option<u32> {
    name.get(..8).and_then(|h| u32::from_str_radix(h, 16).ok())
}

/// Decode the poll query's JSON document. Malformed input is an error, never a panic.
pub fn decode(json: &str) -> Result<PgObservation, PollFailure> {
    let raw: RawObservation = serde_json::from_str(json)
        .map_err(|e| PollFailure::new(FailureKind::Protocol, format!("unexpected poll result: {e}")))?;
    let walsenders = raw
        .walsenders
        .into_iter()
        .map(|w| {
            Ok(WalSender {
                pid: w.pid,
                application_name: w.application_name.unwrap_or_default(),
                client_addr: w.client_addr,
                state: w.state.unwrap_or_default(),
                sync_state: w.sync_state.unwrap_or_default(),
                sent_lsn: lsn("sent_lsn", w.sent_lsn)?,
                write_lsn: lsn("write_lsn", w.write_lsn)?,
                flush_lsn: lsn("flush_lsn", w.flush_lsn)?,
                replay_lsn: lsn("replay_lsn", w.replay_lsn)?,
                write_lag: w.write_lag,
                flush_lag: w.flush_lag,
                replay_lag: w.replay_lag,
                reply_time: w.reply_time,
            })
        })
        .collect::<Result<Vec<_>, PollFailure>>()?;
    let slots = raw
        .slots
        .into_iter()
        .map(|s| {
            Ok(Slot {
                name: s.name,
                slot_type: s.slot_type,
                active: s.active,
                active_pid: s.active_pid,
                restart_lsn: lsn("restart_lsn", s.restart_lsn)?,
                confirmed_flush_lsn: lsn("confirmed_flush_lsn", s.confirmed_flush_lsn)?,
                wal_status: s.wal_status,
                safe_wal_size: s.safe_wal_size,
            })
        })
        .collect::<Result<Vec<_>, PollFailure>>()?;
    let wal_receiver = raw
        .wal_receiver
        .map(|r| {
            Ok::<_, PollFailure>(WalReceiver {
                status: r.status.unwrap_or_default(),
                received_tli: r.received_tli,
                flushed_lsn: lsn("flushed_lsn", r.flushed_lsn)?,
                last_msg_receipt_age: r.last_msg_receipt_age,
                slot_name: r.slot_name,
                sender_host: r.sender_host,
                sender_port: r.sender_port.and_then(|p| u16::try_from(p).ok()),
            })
        })
        .transpose()?;
    let subscriptions = raw
        .subscriptions
        .into_iter()
        .map(|sub| {
            let apply = sub.workers.iter().find(|w| w.relid.is_none());
            Ok(Subscription {
                apply_worker: apply
                    .map(|w| {
                        Ok::<_, PollFailure>(SubscriptionWorker {
                            pid: w.pid,
                            received_lsn: lsn("received_lsn", w.received_lsn.clone())?,
                            last_msg_send_age: w.last_msg_send_age,
                            last_msg_receipt_age: w.last_msg_receipt_age,
                        })
                    })
                    .transpose()?,
                sync_workers: sub.workers.iter().filter(|w| w.relid.is_some()).count(),
                name: sub.name,
                enabled: sub.enabled,
                slot_name: sub.slot_name,
                publications: sub.publications,
                apply_error_count: sub.apply_error_count,
                sync_error_count: sub.sync_error_count,
                table_states: sub.table_states.into_iter().collect(),
            })
        })
        .collect::<Result<Vec<_>, PollFailure>>()?;
    let timeline = match (&raw.walfile, &wal_receiver) {
        (Some(walfile), _) => timeline_of_walfile(walfile),
        (None, Some(receiver)) => receiver.received_tli,
        (None, None) => None,
    };
    Ok(PgObservation {
        version: raw.version,
        version_num: raw.version_num,
        in_recovery: raw.in_recovery,
        system_identifier: raw
            .system_identifier
            .ok_or_else(|| PollFailure::new(FailureKind::Protocol, "no system identifier"))?,
        timeline,
        current_lsn: lsn("current_lsn", raw.current_lsn)?,
        commit_mark: raw.commit_mark,
        receive_lsn: lsn("receive_lsn", raw.receive_lsn)?,
        replay_lsn: lsn("replay_lsn", raw.replay_lsn)?,
        replay_paused: raw.replay_paused,
        last_xact_replay_unix: raw.last_xact_replay_unix,
        cluster_name: raw.cluster_name,
        walsenders,
        slots,
        wal_receiver,
        subscriptions,
        status_interval: raw.status_interval.filter(|s| s.is_finite() && *s >= 0.0),
        heartbeats: Heartbeats {
            written: None,
            seen: raw.heartbeats.into_iter().filter(|h| h.seq >= 0).map(|h| (h.source, h.seq as u64)).collect(),
        },
        timeline_switch: None,
    })
}

// ---- the connection -------------------------------------------------------------

/// A client error as a poll failure, its kind from the SQLSTATE, the
/// password scrubbed from its text.
fn classify(error: &tokio_postgres::Error, connecting: bool, password: Option<&[u8]>) -> PollFailure {
    let kind = match error.code() {
        Some(c) if *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
            FailureKind::Auth
        }
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => FailureKind::Auth,
        Some(c) if *c == SqlState::QUERY_CANCELED => FailureKind::Timeout,
        Some(_) => FailureKind::Query,
        None if connecting => FailureKind::Connect,
        None => FailureKind::Query,
    };
    let message = match error.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error_chain(error),
    };
    PollFailure::new(kind, scrub(&message, password))
}

/// One read of a primary's commit mark and position (`SAMPLE_QUERY`).
async fn read_position(
    client: &Client,
    statement: &Statement,
    password: Option<&[u8]>,
) -> Result<Option<Sampled<SourcePosition>>, PollFailure> {
    let started = Instant::now();
    let result = client.query_one(statement, &[]).await;
    let at = started + started.elapsed() / 2;
    let read = result.and_then(|row| Ok((row.try_get::<_, i64>(0)?, row.try_get::<_, Option<String>>(1)?)));
    let (mark, text) = read.map_err(|e| classify(&e, false, password))?;
    // NULL: a standby now; the next poll says so.
    let Some(text) = text else { return Ok(None) };
    let position =
        text.parse::<Lsn>().map_err(|e| PollFailure::new(FailureKind::Protocol, format!("current_lsn: {e}")))?;
    Ok(Some(Sampled { at, observation: SourcePosition { position: position.0, mark: mark as u64, mark_trails: true } }))
}

/// A connection to `target` whose queries the server itself ends after
/// `timeout`, so a stuck one holds no lock; `application_name` unless the
/// target sets its own.
async fn open_client(
    target: &PostgresTarget,
    timeout: Duration,
    connect_timeout: Duration,
    application_name: &str,
) -> Result<Client, PollFailure> {
    let mut config = target.config().clone();
    if config.get_application_name().is_none() {
        config.application_name(application_name);
    }
    let ms = timeout.as_millis().max(1);
    let options = format!(
        "{} -c statement_timeout={ms} -c lock_timeout={ms} -c idle_in_transaction_session_timeout={}",
        config.get_options().unwrap_or(""),
        ms * 10
    );
    config.options(options.trim());
    config.connect_timeout(connect_timeout);
    let fail = |e: tokio_postgres::Error| classify(&e, true, target.password());
    // The connection task ends when the client is dropped or the server
    // goes away; the next query then fails and the caller reconnects.
    let client = match &target.tls {
        None => {
            let (client, connection) = config.connect(NoTls).await.map_err(fail)?;
            tokio::spawn(connection);
            client
        }
        Some(tls) => {
            let tls_config = super::tls::client_config(tls).map_err(|e| PollFailure::new(FailureKind::Connect, e))?;
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config);
            let (client, connection) = config.connect(connector).await.map_err(fail)?;
            tokio::spawn(connection);
            client
        }
    };
    Ok(client)
}

/// A connection of its own for a primary's position reads (`SAMPLE_QUERY`).
async fn open_position_reader(
    target: PostgresTarget,
    timeout: Duration,
    connect_timeout: Duration,
) -> Result<PositionReader, PollFailure> {
    let client = Arc::new(open_client(&target, timeout, connect_timeout, "replag-sampler").await?);
    let password: Option<Arc<[u8]>> = target.password().map(Arc::from);
    let statement = client.prepare(SAMPLE_QUERY).await.map_err(|e| classify(&e, false, password.as_deref()))?;
    Ok(Arc::new(move || {
        let (client, statement, password) = (client.clone(), statement.clone(), password.clone());
        Box::pin(async move { read_position(&client, &statement, password.as_deref()).await })
    }))
}

/// A polled PostgreSQL node: one connection, one prepared statement.
pub struct PostgresSource {
    target: PostgresTarget,
    /// Server-side statement and lock timeout for the poll query.
    timeout: Duration,
    connect_timeout: Duration,
    session: Option<Session>,
    /// The last heartbeat sequence written (0: none yet).
    last_sequence: u64,
    /// The node was a primary at the last poll: heartbeats are written there.
    was_primary: bool,
    /// The timeline whose history file was read, and what it said: read
    /// once per timeline, so it costs nothing while nothing fails over.
    switch_of: Option<(u32, Option<TimelineSwitch>)>,
}

/// A connection and its prepared statements.
struct Session {
    client: Client,
    poll: Statement,
    /// With heartbeats on: the upsert.
    heartbeat: Option<Statement>,
}

impl PostgresSource {
    pub fn new(target: PostgresTarget, timeout: Duration, connect_timeout: Duration) -> Self {
        Self { target, timeout, connect_timeout, session: None, last_sequence: 0, was_primary: false, switch_of: None }
    }

    fn classify(&self, error: &tokio_postgres::Error, connecting: bool) -> PollFailure {
        classify(error, connecting, self.target.password())
    }

    /// A promoted primary's switch point, from its timeline's history file
    /// (`pg_read_file`: superuser, `pg_read_server_files` or a GRANT; without
    /// it the failover figures say they are estimates).
    async fn timeline_switch(&mut self, observation: &PgObservation) -> Option<TimelineSwitch> {
        let timeline = observation.timeline.filter(|t| *t > 1 && !observation.in_recovery)?;
        if let Some((read_for, switch)) = self.switch_of {
            if read_for == timeline {
                return switch;
            }
        }
        let session = self.session.as_ref()?;
        let path = format!("pg_wal/{timeline:08X}.history");
        let switch = match session.client.query_one("SELECT pg_read_file($1)", &[&path]).await {
            Ok(row) => row.try_get::<_, String>(0).ok().and_then(|text| parse_timeline_history(&text)),
            Err(e) => {
                let failure = self.classify(&e, false);
                tracing::info!(timeline, error = %failure, "cannot read the timeline history file; failover figures will be estimates");
                None
            }
        };
        self.switch_of = Some((timeline, switch));
        switch
    }

    async fn connect(&self) -> Result<Session, PollFailure> {
        let client = open_client(&self.target, self.timeout, self.connect_timeout, "replag").await?;
        let row = client.query_one("SHOW server_version_num", &[]).await.map_err(|e| self.classify(&e, false))?;
        let version_num: u32 = row
            .try_get::<_, String>(0)
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| PollFailure::new(FailureKind::Protocol, "unreadable server_version_num"))?;
        if version_num < MIN_VERSION_NUM {
            return Err(PollFailure::new(
                FailureKind::Query,
                format!("PostgreSQL server_version_num {version_num} is older than 10, which replag does not support"),
            ));
        }
        let heartbeat = self.target.heartbeat.is_some();
        let query = poll_query(version_num, heartbeat);
        let poll = client.prepare(&query).await.map_err(|e| self.classify(&e, false))?;
        let heartbeat = match heartbeat {
            false => None,
            true => {
                // A heartbeat must not wait for synchronous standbys (a cut one would hang it).
                client.batch_execute("SET synchronous_commit = local").await.map_err(|e| self.classify(&e, false))?;
                Some(client.prepare(HEARTBEAT_WRITE).await.map_err(|e| self.classify(&e, false))?)
            }
        };
        Ok(Session { client, poll, heartbeat })
    }
}

impl Source for PostgresSource {
    type Observation = PgObservation;

    async fn poll(&mut self) -> Result<Sampled<PgObservation>, PollFailure> {
        if self.session.is_none() {
            self.session = Some(self.connect().await?);
        }
        let Some(session) = &self.session else { unreachable!("session was just set") };
        // On a primary, the heartbeat write follows the poll in the same round
        // trip (the client pipelines what is asked together). After, not
        // before: the poll's position is that before the write (the next
        // position sample has it).
        let heartbeat = self.target.heartbeat.as_ref();
        let write = heartbeat.zip(session.heartbeat.as_ref()).filter(|_| self.was_primary);
        let sequence = next_sequence(self.last_sequence);
        let started = Instant::now();
        let (written, result) = match (write, heartbeat) {
            (Some((hb, upsert)), _) => {
                let sequence = sequence as i64;
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&hb.writer, &hb.source, &sequence];
                let reader: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&hb.writer];
                let (polled, written) = tokio::join!(
                    session.client.query_one(&session.poll, &reader),
                    session.client.execute(upsert, &params)
                );
                (Some(written), polled)
            }
            (None, Some(hb)) => (None, session.client.query_one(&session.poll, &[&hb.writer]).await),
            (None, None) => (None, session.client.query_one(&session.poll, &[]).await),
        };
        let at = started + started.elapsed() / 2;
        match result {
            Ok(row) => {
                let json: String = row
                    .try_get(0)
                    .map_err(|e| PollFailure::new(FailureKind::Protocol, format!("unexpected poll result: {e}")))?;
                let mut observation = decode(&json)?;
                match written {
                    Some(Ok(_)) => {
                        self.last_sequence = sequence;
                        let source = heartbeat.map(|h| h.source.clone()).unwrap_or_default();
                        observation.heartbeats.written = Some((source, sequence));
                    }
                    // Demoted since the last poll: nothing to write here any more.
                    Some(Err(e)) if e.code() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION) => {}
                    Some(Err(e)) => {
                        let failure = self.classify(&e, false);
                        return Err(PollFailure::new(failure.kind, format!("heartbeat write: {}", failure.message)));
                    }
                    None => {}
                }
                self.was_primary = !observation.in_recovery;
                observation.timeline_switch = self.timeline_switch(&observation).await;
                Ok(Sampled { at, observation })
            }
            Err(e) => {
                let failure = self.classify(&e, false);
                self.session = None;
                Err(failure)
            }
        }
    }

    fn position_reader(&mut self) -> Option<OpenPositionReader> {
        if self.session.is_none() || !self.was_primary {
            return None;
        }
        let (target, timeout, connect_timeout) = (self.target.clone(), self.timeout, self.connect_timeout);
        Some(Arc::new(move || Box::pin(open_position_reader(target.clone(), timeout, connect_timeout))))
    }

    fn is_connected(&self) -> bool {
        self.session.is_some()
    }

    fn reset(&mut self) {
        self.session = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIMARY: &str = r#"{"version":"15.18","version_num":150018,"in_recovery":false,
      "system_identifier":"7710755292850694928","walfile":"000000020000000000000003",
      "current_lsn":"0/3000E08","receive_lsn":null,"replay_lsn":null,"replay_paused":null,
      "last_xact_replay_unix":null,"cluster_name":"",
      "walsenders":[{"pid":2982,"application_name":"walreceiver","client_addr":"127.0.0.1",
        "state":"streaming","sync_state":"async","sent_lsn":"0/3000E08","write_lsn":"0/3000E08",
        "flush_lsn":"0/3000E08","replay_lsn":"0/3000D00","write_lag":0.0064,"flush_lag":null,
        "replay_lag":null,"reply_age":0.5}],
      "slots":[{"name":"s1","slot_type":"physical","active":true,"active_pid":2982,
        "restart_lsn":"0/3000E08","confirmed_flush_lsn":null,"wal_status":"reserved","safe_wal_size":null}],
      "wal_receiver":null,
      "subscriptions":[{"name":"from_eu","enabled":true,"slot_name":"from_eu","publications":["pub"],
        "workers":[{"pid":77,"relid":null,"received_lsn":"0/3000E08","last_msg_send_age":0.2,"last_msg_receipt_age":0.1},
                   {"pid":78,"relid":16400,"received_lsn":null,"last_msg_send_age":null,"last_msg_receipt_age":null}],
        "apply_error_count":3,"sync_error_count":0,"table_states":{"r":2,"d":1}}]}"#;

    #[test]
    fn a_timeline_history_file_says_where_its_timeline_began() {
        let text = "1\t0/3006B60\tno recovery target specified\n\n2\t0/5000000\tat restore point \"x\"\n";
        assert_eq!(parse_timeline_history(text), Some(TimelineSwitch { parent: 2, at: Lsn(0x5000000) }));
        assert_eq!(parse_timeline_history("# comment only\n"), None);
        assert_eq!(parse_timeline_history("garbage\n1 not-an-lsn\n"), None);
    }

    #[test]
    fn decodes_a_primary() {
        let obs = decode(PRIMARY).unwrap();
        assert!(!obs.in_recovery);
        assert_eq!(obs.timeline, Some(2));
        assert_eq!(obs.current_lsn, Some(Lsn(0x3000E08)));
        assert_eq!(obs.walsenders[0].replay_lsn, Some(Lsn(0x3000D00)));
        assert_eq!(obs.walsenders[0].flush_lag, None);
        assert_eq!(obs.slots[0].wal_status.as_deref(), Some("reserved"));
        let sub = &obs.subscriptions[0];
        assert_eq!(sub.apply_worker.as_ref().unwrap().pid, 77);
        assert_eq!(sub.sync_workers, 1);
        assert_eq!(sub.apply_error_count, Some(3));
        assert_eq!(sub.table_states, [("d".to_string(), 1), ("r".to_string(), 2)]);
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        for bad in [
            "",
            "null",
            "{",
            "[]",
            r#"{"version":"15","version_num":"x","in_recovery":false}"#,
            &PRIMARY.replace("0/3000E08", "zzz"),
            &PRIMARY.replace(r#""system_identifier":"7710755292850694928","#, ""),
            &PRIMARY.replace(r#""pid":2982"#, r#""pid":"many""#),
            &PRIMARY.replace(r#""received_lsn":"0/3000E08""#, r#""received_lsn":"nope""#),
            &PRIMARY.replace(r#""apply_error_count":3"#, r#""apply_error_count":-3"#),
        ] {
            let err = decode(bad).unwrap_err();
            assert_eq!(err.kind, FailureKind::Protocol, "{bad}");
        }
    }

    #[test]
    fn query_leaves_out_what_old_versions_lack() {
        assert!(poll_query(150_000, false).contains("'safe_wal_size', safe_wal_size"));
        assert!(poll_query(120_000, false).contains("'safe_wal_size', NULL"));
        assert!(poll_query(120_000, false).contains("received_lsn::text"));
        assert!(poll_query(100_000, false).contains("'reply_time', NULL"), "no reply_time column before 12");
        assert!(poll_query(120_000, false).contains("extract(epoch from reply_time)"));
        assert!(poll_query(100_000, false).contains("'sender_host', NULL"));
        assert!(poll_query(150_000, false).contains("pg_stat_subscription_stats"));
        assert!(!poll_query(140_000, false).contains("pg_stat_subscription_stats"));
    }
}
