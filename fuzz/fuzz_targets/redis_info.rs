//! Feeds Redis `INFO` text to `replag::systems::redis::decode` and
//! `parse_info`. The input is split on NUL bytes into the replies to
//! `INFO replication`, `INFO server` and `INFO stats` (missing parts are
//! empty). Checks: no panic; parsed fields keep the `key:value` line shape;
//! a decoded observation is self-consistent. The first two parts are also
//! fed as `CLUSTER INFO` and `CLUSTER NODES` replies: a decoded cluster view
//! has ordered slot ranges and names every master's shard.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replag::systems::redis::{decode, decode_cluster, parse_info};

fuzz_target!(|data: &[u8]| {
    // The redis client hands replag a String, so only UTF-8 can arrive.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, '\0');
    let replication = parts.next().unwrap_or("");
    let server = parts.next().unwrap_or("");
    let stats = parts.next().unwrap_or("");

    if let Ok(fields) = parse_info(replication) {
        for (key, value) in &fields {
            assert!(!key.contains(':'), "key {key:?} holds the separator");
            assert!(!key.starts_with('#'), "comment line {key:?} parsed as a field");
            assert!(!key.contains('\n') && !value.contains('\n'), "field spans lines: {key:?}:{value:?}");
        }
    }

    if let Ok(o) = decode(replication, server, stats) {
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
});
