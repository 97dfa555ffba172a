//! Feeds SeaweedFS master replies to `replag::systems::seaweedfs::decode`.
//! The input is split on NUL bytes: `/cluster/status` alone (no NUL: a
//! follower's poll), or `/cluster/status`, `/dir/status` and `/vol/status`
//! (the leader's poll). Checks: no panic; a decoded observation is
//! self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replag::systems::seaweedfs::decode;

fuzz_target!(|data: &[u8]| {
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
        Err(e) => assert_eq!(e.kind, replag::model::FailureKind::Protocol, "{e}"),
    }
});
