//! A Redis Cluster as one node sees it: `CLUSTER INFO` (state, slot
//! coverage) and `CLUSTER NODES` (every node, its role, master and slots),
//! in one pipelined round trip. `CLUSTER NODES` rather than `CLUSTER SHARDS`:
//! it answers on every version (SHARDS needs 7.0) with what replag needs.

use serde::Serialize;

use super::source::parse_info;
use crate::model::{FailureKind, PollFailure};

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterNode {
    pub id: String,
    pub ip: String,
    pub port: u16,
    pub is_master: bool,
    /// A replica's master's node id.
    pub master_id: Option<String>,
    /// `fail` or `fail?` (pfail): the cluster's own failure detection.
    pub failing: bool,
    /// No address yet, or still in handshake: not a node to poll.
    pub reachable_address: bool,
    /// Slot ranges served (masters), inclusive.
    pub slots: Vec<(u16, u16)>,
}

/// What one poll of a cluster node learned.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ClusterView {
    /// `cluster_state:ok`.
    pub state_ok: bool,
    pub slots_assigned: u32,
    pub slots_ok: u32,
    pub slots_pfail: u32,
    pub slots_fail: u32,
    pub current_epoch: u64,
    pub nodes: Vec<ClusterNode>,
}

impl ClusterView {
    /// A shard's name: its master's slot ranges (`0-5460`, `5461-10922,16000`),
    /// stable across failovers (the slots move with the shard, not the node)
    /// and readable; `none-<id>` for a master without slots.
    pub fn shard_of_master(&self, master: &ClusterNode) -> String {
        if master.slots.is_empty() {
            return format!("none-{}", master.id.chars().take(8).collect::<String>());
        }
        master
            .slots
            .iter()
            .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn node_by_id(&self, id: &str) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.id == id)
    }
}

fn malformed(what: impl Into<String>) -> PollFailure {
    PollFailure::new(FailureKind::Protocol, what.into())
}

fn short(line: &str) -> String {
    line.chars().take(60).collect()
}

/// `CLUSTER INFO` and `CLUSTER NODES` text into a view.
pub fn decode(info: &str, nodes: &str) -> Result<ClusterView, PollFailure> {
    let fields = parse_info(info)?;
    let num = |key: &str| -> Result<u64, PollFailure> {
        fields
            .get(key)
            .map_or(Ok(0), |v| v.parse().map_err(|_| malformed(format!("CLUSTER INFO {key} is not a number"))))
    };
    let state = fields.get("cluster_state").ok_or_else(|| malformed("CLUSTER INFO has no cluster_state"))?;
    let small = |key: &str| -> Result<u32, PollFailure> {
        u32::try_from(num(key)?).map_err(|_| malformed(format!("CLUSTER INFO {key} is out of range")))
    };
    let mut view = ClusterView {
        state_ok: state == "ok",
        slots_assigned: small("cluster_slots_assigned")?,
        slots_ok: small("cluster_slots_ok")?,
        slots_pfail: small("cluster_slots_pfail")?,
        slots_fail: small("cluster_slots_fail")?,
        current_epoch: num("cluster_current_epoch")?,
        nodes: Vec::new(),
    };
    for line in nodes.lines().map(str::trim).filter(|l| !l.is_empty()) {
        view.nodes.push(parse_node(line)?);
    }
    view.nodes.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(view)
}

/// `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`
fn parse_node(line: &str) -> Result<ClusterNode, PollFailure> {
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() < 8 {
        return Err(malformed(format!("CLUSTER NODES line with {} fields: {:?}", parts.len(), short(line))));
    }
    let address = parts[1].split([',', '@']).next().unwrap_or_default();
    let (ip, port) = address
        .rsplit_once(':')
        .ok_or_else(|| malformed(format!("CLUSTER NODES address without a port: {:?}", short(line))))?;
    let port: u16 = port.parse().map_err(|_| malformed(format!("CLUSTER NODES port: {:?}", short(line))))?;
    let flags: Vec<&str> = parts[2].split(',').collect();
    let mut slots = Vec::new();
    for slot in &parts[8..] {
        // `[slot->-id]` / `[slot-<-id]`: a migration in progress, not ownership.
        if slot.starts_with('[') {
            continue;
        }
        let (a, b) = slot.split_once('-').unwrap_or((slot, slot));
        let parse =
            |s: &str| s.parse::<u16>().ok().filter(|n| *n < 16384).ok_or_else(|| malformed(format!("slot {slot:?}")));
        let (a, b) = (parse(a)?, parse(b)?);
        if a > b {
            return Err(malformed(format!("slot range {slot:?} runs backwards")));
        }
        slots.push((a, b));
    }
    Ok(ClusterNode {
        id: parts[0].to_string(),
        ip: ip.trim_start_matches('[').trim_end_matches(']').to_string(),
        port,
        is_master: flags.contains(&"master"),
        master_id: Some(parts[3]).filter(|m| *m != "-").map(str::to_string),
        failing: flags.iter().any(|f| *f == "fail" || *f == "fail?"),
        reachable_address: !flags.iter().any(|f| *f == "noaddr" || *f == "handshake") && port != 0 && !ip.is_empty(),
        slots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const INFO: &str = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n\
        cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:6\r\ncluster_size:3\r\n\
        cluster_current_epoch:6\r\n";
    const NODES: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@40004 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@40002,db2.example master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@40003 master - 0 1426238318243 3 connected 10923-16383 [16000->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@40005 slave,fail 67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 0 1426238316232 5 connected
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
a0 :0@0 master,noaddr - 0 0 0 disconnected
";

    #[test]
    fn decodes_info_and_nodes() {
        let v = decode(INFO, NODES).unwrap();
        assert!(v.state_ok);
        assert_eq!((v.slots_assigned, v.current_epoch, v.nodes.len()), (16384, 6, 6));
        let m = v.node_by_id("67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1").unwrap();
        assert!(m.is_master && m.port == 30002 && m.ip == "127.0.0.1");
        assert_eq!(v.shard_of_master(m), "5461-10922");
        let migrating = v.node_by_id("292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f").unwrap();
        assert_eq!(migrating.slots, [(10923, 16383)], "a migration is not ownership");
        let failed = v.node_by_id("6ec23923021cf3ffec47632106199cb7f496ce01").unwrap();
        assert!(failed.failing && !failed.is_master);
        assert_eq!(failed.master_id.as_deref(), Some("67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1"));
        assert!(!v.node_by_id("a0").unwrap().reachable_address);
    }

    #[test]
    fn refuses_malformed_replies() {
        assert!(decode("cluster_slots_ok:1\r\n", NODES).is_err(), "no state");
        assert!(decode(INFO, "abc 127.0.0.1:x@1 master - 0 0 1 connected").is_err());
        assert!(decode(INFO, "abc 127.0.0.1:1@1 master - 0 0 1 connected 99999").is_err());
        assert!(decode(INFO, "too few fields").is_err());
        assert!(decode(INFO, "abc 127.0.0.1:1@1 master - 0 0 1 connected 100-50").is_err(), "backwards range");
    }

    proptest! {
        #[test]
        fn never_panics(info in "(?s).{0,200}", nodes in "(?s).{0,400}") {
            let _ = decode(&info, &nodes);
            let _ = decode(INFO, &nodes);
        }
    }
}
