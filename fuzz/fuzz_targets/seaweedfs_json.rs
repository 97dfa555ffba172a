//! Feeds SeaweedFS replies to `replag::systems::seaweedfs::decode` (a
//! master's), and the whole input to `decode_listing` (a filer's directory
//! listing) and `decode_filer_sync` (filer.sync's `/metrics`). For masters the
//! input is split on NUL bytes: `/cluster/status` alone (no NUL: a
//! follower's poll), or `/cluster/status`, `/dir/status` and `/vol/status`
//! (the leader's poll). Checks: no panic; a decoded observation is
//! self-consistent; errors are protocol errors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replag::model::FailureKind;
use replag::systems::seaweedfs::{decode, decode_filer_sync, decode_listing};

fuzz_target!(|data: &[u8]| {
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

    match decode(cluster, rest) {
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
});
