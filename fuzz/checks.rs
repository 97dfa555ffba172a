//! What each fuzz target checks, in one place: the targets in
//! `fuzz_targets/` call these, and `tests/it/fuzz_inputs.rs` runs every seed
//! (`fuzz/seeds/<target>/`) and every input that once failed
//! (`fuzz/regressions/<target>/`) through the same functions on each
//! `cargo test`, so a known-bad input is checked deterministically, not
//! only when libFuzzer happens to find it again.
//!
//! The checks call replag's own code for everything they compare against
//! (e.g. the gate's query writer), so they cannot drift from it.
#![allow(dead_code)] // Each fuzz target uses one check.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use replag::config::{load_from, Source};
use replag::gate::breach::RETENTION;
use replag::gate::GateSpec;
use replag::model::{FailureKind, LinkKind, System};
use replag::systems::postgres::{decode as decode_postgres, Lsn};
use replag::systems::redis::{decode as decode_redis, decode_cluster, parse_info};
use replag::systems::seaweedfs::{decode as decode_seaweedfs, decode_filer_sync, decode_listing};

/// A fuzz target's check: panics on a finding.
pub type Check = fn(&[u8]);

/// Every target, by name (`fuzz/fuzz_targets/<name>.rs`), with its check.
pub const TARGETS: [(&str, Check); 7] = [
    ("config_env", config_env),
    ("config_toml", config_toml),
    ("gate_query", gate_query),
    ("lsn", lsn),
    ("postgres_json", postgres_json),
    ("redis_info", redis_info),
    ("seaweedfs_json", seaweedfs_json),
];

const DEFAULT_DATA_AGE: Duration = Duration::from_secs(10);

/// `/gate?…` query strings into `GateSpec::from_query`: no panic; an
/// accepted spec is within the documented limits; written back with the
/// product's own writer (`GateSpec::params`, then `GateParams::query`, what
/// `replag gate` sends), it parses to the same spec.
pub fn gate_query(data: &[u8]) {
    // hyper hands the query over as &str.
    let Ok(query) = std::str::from_utf8(data) else { return };
    let Ok(spec) = GateSpec::from_query(query, DEFAULT_DATA_AGE) else { return };

    assert!(spec.max_lag.is_none_or(|d| d <= Duration::from_secs(7 * 24 * 3600)));
    assert!(spec.max_lag_bytes.is_none_or(|b| b <= 1 << 50));
    assert!(spec.hold <= RETENTION);
    assert!(!spec.max_data_age.is_zero() && spec.max_data_age <= RETENTION.max(DEFAULT_DATA_AGE));
    let s = &spec.scope;
    for list in [&s.systems, &s.kinds, &s.source_regions, &s.replica_regions, &s.links, &s.groups] {
        for item in list {
            assert!(!item.is_empty() && !item.contains(',') && item.trim() == item, "list item {item:?}");
        }
    }
    // A shard's name lists slot ranges with commas: only trimmed and non-empty.
    assert!(s.shards.iter().all(|v| !v.is_empty() && v.trim() == v), "shards {:?}", s.shards);
    assert!(s.systems.iter().all(|v| System::ALL.iter().any(|k| k.as_str() == v)), "systems {:?}", s.systems);
    assert!(s.kinds.iter().all(|v| LinkKind::ALL.iter().any(|k| k.as_str() == v)), "kinds {:?}", s.kinds);

    let again = spec.params().query();
    match GateSpec::from_query(&again, DEFAULT_DATA_AGE) {
        Ok(round) => assert_eq!(round, spec, "{query:?} -> {again:?}"),
        Err(e) => panic!("{query:?} was accepted, but its normal form {again:?} is not: {e}"),
    }
}

/// Text into `Lsn`'s `FromStr` (LSNs arrive as text, e.g. `16/B374D848`):
/// it accepts exactly `1-8 hex digits '/' 1-8 hex digits`; parse(display(x))
/// == x, for what it parsed and for the first 8 input bytes as a u64.
pub fn lsn(data: &[u8]) {
    fn is_hex_half(s: &str) -> bool {
        (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
    }
    if let Some(bytes) = data.get(..8) {
        let n = Lsn(u64::from_le_bytes(bytes.try_into().unwrap()));
        assert_eq!(n.to_string().parse::<Lsn>(), Ok(n), "display of {n:?} does not parse back");
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = text.parse::<Lsn>();
    let valid = text.split_once('/').is_some_and(|(h, l)| is_hex_half(h) && is_hex_half(l));
    assert_eq!(parsed.is_ok(), valid, "{text:?} -> {parsed:?}");
    if let Ok(lsn) = parsed {
        let (h, l) = text.split_once('/').unwrap();
        let expected = (u64::from_str_radix(h, 16).unwrap() << 32) | u64::from_str_radix(l, 16).unwrap();
        assert_eq!(lsn, Lsn(expected));
        assert_eq!(lsn.to_string().parse::<Lsn>(), Ok(lsn));
        assert!(lsn.to_string().eq_ignore_ascii_case(&format!("{:X}/{:X}", expected >> 32, expected & 0xFFFF_FFFF)));
    }
}

/// The PostgreSQL poll's JSON document (one `text` column, so UTF-8) into
/// `decode`: every failure is a protocol failure; a decoded observation is
/// self-consistent.
pub fn postgres_json(data: &[u8]) {
    let Ok(json) = std::str::from_utf8(data) else { return };
    match decode_postgres(json) {
        Ok(o) => {
            assert_eq!(o.role(), if o.in_recovery { "standby" } else { "primary" });
            for s in &o.subscriptions {
                assert!(s.table_states.windows(2).all(|w| w[0].0 < w[1].0), "table states not sorted/unique");
            }
        }
        Err(e) => assert_eq!(e.kind, FailureKind::Protocol, "{e}"),
    }
}

/// Redis `INFO` text, split on NUL into the replies to `INFO replication`,
/// `INFO server` and `INFO stats`, into `parse_info` and `decode`; the first
/// two parts also as `CLUSTER INFO` and `CLUSTER NODES` into `decode_cluster`.
pub fn redis_info(data: &[u8]) {
    // The redis client hands replag a String, so only UTF-8 can arrive.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, '\0');
    let replication = parts.next().unwrap_or("");
    let server = parts.next().unwrap_or("");
    let stats = parts.next().unwrap_or("");

    if let Ok(fields) = parse_info(replication) {
        for (key, value) in fields.iter() {
            assert!(!key.contains(':'), "key {key:?} holds the separator");
            assert!(!key.starts_with('#'), "comment line {key:?} parsed as a field");
            assert!(!key.contains('\n') && !value.contains('\n'), "field spans lines: {key:?}:{value:?}");
        }
    }
    if let Ok(o) = decode_redis(replication, server, stats) {
        assert_eq!(o.is_master, o.replica.is_none(), "role and replica state disagree");
        assert_eq!(o.role(), if o.is_master { "master" } else { "replica" });
        assert!(o.replicas.windows(2).all(|w| (&w[0].ip, w[0].port) <= (&w[1].ip, w[1].port)), "replicas not sorted");
        if let Some(id) = &o.replid2 {
            assert!(id.bytes().any(|b| b != b'0'), "all-zero replid2 kept");
        }
    }
    if let Ok(view) = decode_cluster(replication, server) {
        for node in &view.nodes {
            assert!(node.slots.iter().all(|(a, b)| a <= b && *b < 16384), "slot range out of order: {node:?}");
            if node.is_master {
                assert!(!view.shard_of_master(node).is_empty());
            }
        }
    }
}

/// SeaweedFS replies: the whole input as a filer's listing and as
/// filer.sync's `/metrics`; split on NUL as a master's `/cluster/status`
/// (alone: a follower's poll) or with `/dir/status` and `/vol/status` (the
/// leader's). Errors are protocol errors; decoded views are self-consistent.
pub fn seaweedfs_json(data: &[u8]) {
    match decode_listing(data) {
        Ok((_, seen)) => assert!(seen.iter().all(|(name, _)| !name.is_empty() && !name.contains('/'))),
        Err(e) => assert_eq!(e.kind, FailureKind::Protocol, "{e}"),
    }
    match decode_filer_sync(data) {
        Ok(sync) => {
            assert!(sync.directions.len() <= 64, "directions unbounded");
            for d in &sync.directions {
                assert!(d.events_failed <= d.events_done, "failed events are done events");
            }
        }
        Err(e) => assert_eq!(e.kind, FailureKind::Protocol, "{e}"),
    }

    let mut parts = data.splitn(3, |&b| b == 0);
    let cluster = parts.next().unwrap_or(&[]);
    let rest = parts.next().map(|dir| (dir, parts.next().unwrap_or(&[])));
    match decode_seaweedfs(cluster, rest) {
        Ok(o) => {
            assert_eq!(o.topology.is_some(), rest.is_some(), "topology without /dir and /vol, or lost");
            if let Some(leader) = &o.leader {
                assert!(!leader.is_empty(), "empty leader kept");
            }
            if let Some(t) = &o.topology {
                assert!(
                    t.replicas
                        .windows(2)
                        .all(|w| (w[0].id, &w[0].datacenter, &w[0].server) <= (w[1].id, &w[1].datacenter, &w[1].server)),
                    "replicas not sorted"
                );
                for r in &t.replicas {
                    assert!(r.placement.copies() >= 1);
                }
            }
        }
        Err(e) => assert_eq!(e.kind, FailureKind::Protocol, "{e}"),
    }
}

/// TOML text into the config loader (`Source::File`, a per-process scratch
/// file, empty environment): no panic. Inputs naming devices or FIFOs are
/// skipped (see `is_safe_path`).
pub fn config_toml(data: &[u8]) {
    fn scratch() -> &'static PathBuf {
        static PATH: OnceLock<PathBuf> = OnceLock::new();
        PATH.get_or_init(|| std::env::temp_dir().join(format!("replag-fuzz-config-{}.toml", std::process::id())))
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if !toml_is_safe(text) {
            return;
        }
    } // Not UTF-8: the loader cannot read it as TOML; still worth a run.
    let path = scratch();
    std::fs::write(path, data).expect("write scratch config");
    let _ = load_from(Source::File(path), &HashMap::new());
}

/// `NAME=value` lines as the environment of a start without a file (the
/// seeds' `REGION`, `DATABASE_URL`, … and `REPLAG_<KEY>__<KEY>` overrides):
/// no panic.
pub fn config_env(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let env: HashMap<String, String> =
        text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if !env.values().all(|v| is_safe_path(v)) {
        return;
    }
    let _ = load_from(Source::SeedEnvironment, &env);
}

/// The loader reads `password_file`, `ca_file` and certificate paths named
/// in its input, so an input naming a device or FIFO (`/dev/zero`,
/// `/dev/stdin`) would hang or exhaust memory instead of testing replag.
/// Refuse a string that names something other than a small regular file or
/// a directory (both of which the loader handles with an ordinary error).
fn is_safe_path(text: &str) -> bool {
    if text.contains('\0') {
        return true; // Not a path the OS accepts: open() fails.
    }
    match std::fs::symlink_metadata(Path::new(text)).and_then(|_| std::fs::metadata(Path::new(text))) {
        Ok(m) => m.is_dir() || (m.is_file() && m.len() <= 1 << 20 && !text.contains("/proc/")),
        Err(_) => true, // Does not exist (or cannot be reached): a read error.
    }
}

/// Every string in a TOML document, anywhere, is a safe path (or the text
/// is not TOML at all, in which case the loader rejects it before reading
/// any file: it uses the same `toml` release).
fn toml_is_safe(text: &str) -> bool {
    fn walk(v: &toml::Value) -> bool {
        match v {
            toml::Value::String(s) => is_safe_path(s),
            toml::Value::Array(a) => a.iter().all(walk),
            toml::Value::Table(t) => t.iter().all(|(k, v)| is_safe_path(k) && walk(v)),
            // Numbers, booleans and dates become relative paths like "1" or
            // "true", looked up in the fuzz directory: harmless.
            _ => true,
        }
    }
    match text.parse::<toml::Table>() {
        Ok(table) => table.iter().all(|(k, v)| is_safe_path(k) && walk(v)),
        Err(_) => true,
    }
}
