//! SeaweedFS over HTTP(S): one source type for every role. A master answers
//! `/cluster/status` (leader, peers), and the leader only `/dir/status`
//! (data centers, racks, nodes, slots, writable layouts) and `/vol/status`
//! (every volume replica); filers and filer.sync processes are polled by
//! `filer` and `filer_sync`. Go's `omitempty` drops zero fields, so
//! everything is optional; a malformed reply is a protocol failure for the
//! node, never a panic.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::filer::{self, FilerObservation};
use super::filer_sync::{self, SyncObservation};
use super::target::{SeaweedRole, SeaweedTarget};
use crate::model::{FailureKind, PollFailure, Sampled, Source};
use crate::systems::http::{fetch, parse};

/// One poll of a SeaweedFS server, by role.
#[derive(Debug, Clone, PartialEq)]
pub enum SeaweedObservation {
    Master(MasterObservation),
    Filer(FilerObservation),
    FilerSync(SyncObservation),
}

impl From<MasterObservation> for SeaweedObservation {
    fn from(master: MasterObservation) -> Self {
        SeaweedObservation::Master(master)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MasterObservation {
    pub version: String,
    pub is_leader: bool,
    /// The leader this master knows of (`host:port`, gRPC suffix removed).
    pub leader: Option<String>,
    pub peers: usize,
    pub max_volume_id: u64,
    /// Only from the leader.
    pub topology: Option<Topology>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Topology {
    pub datacenters: Vec<DataCenter>,
    pub layouts: Vec<Layout>,
    pub replicas: Vec<VolumeReplica>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DataCenter {
    pub id: String,
    pub data_nodes: usize,
    pub volumes: u64,
    pub max_volumes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub collection: String,
    pub replication: String,
    pub writables: usize,
}

/// Copies wanted in other data centers, other racks, and on other servers
/// of the same rack: placement code `xyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(default)]
pub struct Placement {
    #[serde(rename = "dc")]
    pub other_datacenters: u8,
    #[serde(rename = "rack")]
    pub other_racks: u8,
    #[serde(rename = "node")]
    pub same_rack: u8,
}

impl Placement {
    /// The `xyz` code, e.g. `100`.
    pub fn code(&self) -> String {
        format!("{}{}{}", self.other_datacenters, self.other_racks, self.same_rack)
    }

    /// Copies the placement wants in all: x + y + z + 1.
    pub fn copies(&self) -> usize {
        usize::from(self.other_datacenters) + usize::from(self.other_racks) + usize::from(self.same_rack) + 1
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VolumeReplica {
    pub id: u32,
    pub collection: String,
    pub placement: Placement,
    pub datacenter: String,
    pub rack: String,
    pub server: String,
    pub size: u64,
    pub file_count: u64,
    pub modified_at: i64,
    pub read_only: bool,
}

// ---- replies as sent ---------------------------------------------------------

/// Go sends a nil slice or map as `null`: read it as empty.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawClusterStatus {
    #[serde(default)]
    is_leader: bool,
    #[serde(default)]
    leader: String,
    #[serde(default, deserialize_with = "nullable")]
    peers: Vec<serde_json::Value>,
    #[serde(default)]
    max_volume_id: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawDirStatus {
    topology: RawTopology,
    #[serde(default)]
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawTopology {
    #[serde(default, deserialize_with = "nullable")]
    data_centers: Vec<RawDataCenter>,
    #[serde(default, deserialize_with = "nullable")]
    layouts: Vec<RawLayout>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawDataCenter {
    id: String,
    #[serde(default, deserialize_with = "nullable")]
    racks: Vec<RawRack>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawRack {
    #[serde(default, deserialize_with = "nullable")]
    data_nodes: Vec<RawDataNode>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawDataNode {
    #[serde(default)]
    volumes: u64,
    #[serde(default)]
    max: u64,
}

#[derive(Deserialize)]
struct RawLayout {
    #[serde(default)]
    replication: String,
    #[serde(default)]
    collection: String,
    #[serde(default, deserialize_with = "nullable")]
    writables: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawVolStatus {
    volumes: RawVolumes,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawVolumes {
    /// data center → rack → server → replicas
    #[serde(default, deserialize_with = "nullable")]
    data_centers: HashMap<String, HashMap<String, HashMap<String, Vec<RawVolume>>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawVolume {
    id: u32,
    #[serde(default)]
    collection: String,
    #[serde(default)]
    replica_placement: Placement,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    file_count: u64,
    #[serde(default)]
    modified_at_second: i64,
    #[serde(default)]
    read_only: bool,
}

/// Decode `/cluster/status`, and `/dir/status` + `/vol/status` when given.
pub fn decode(cluster: &[u8], dir_and_vol: Option<(&[u8], &[u8])>) -> Result<MasterObservation, PollFailure> {
    let c: RawClusterStatus = parse("/cluster/status", cluster)?;
    // "127.0.0.1:9333.19333": HTTP address, then the gRPC port.
    let leader = (!c.leader.is_empty()).then(|| match c.leader.rsplit_once('.') {
        Some((addr, grpc)) if grpc.bytes().all(|b| b.is_ascii_digit()) && addr.contains(':') => addr.to_string(),
        _ => c.leader.clone(),
    });
    let mut observation = MasterObservation {
        version: String::new(),
        is_leader: c.is_leader,
        leader,
        peers: c.peers.len(),
        max_volume_id: c.max_volume_id,
        topology: None,
    };
    if let Some((dir, vol)) = dir_and_vol {
        let d: RawDirStatus = parse("/dir/status", dir)?;
        let v: RawVolStatus = parse("/vol/status", vol)?;
        observation.version = d.version;
        let datacenters = d
            .topology
            .data_centers
            .into_iter()
            .map(|dc| {
                let nodes: Vec<&RawDataNode> = dc.racks.iter().flat_map(|r| &r.data_nodes).collect();
                DataCenter {
                    data_nodes: nodes.len(),
                    volumes: nodes.iter().map(|n| n.volumes).sum(),
                    max_volumes: nodes.iter().map(|n| n.max).sum(),
                    id: dc.id,
                }
            })
            .collect();
        let layouts = d
            .topology
            .layouts
            .into_iter()
            .map(|l| Layout { collection: l.collection, replication: l.replication, writables: l.writables.len() })
            .collect();
        let mut replicas = Vec::new();
        for (datacenter, racks) in v.volumes.data_centers {
            for (rack, servers) in racks {
                for (server, volumes) in servers {
                    replicas.extend(volumes.into_iter().map(|vol| VolumeReplica {
                        id: vol.id,
                        collection: vol.collection,
                        placement: vol.replica_placement,
                        datacenter: datacenter.clone(),
                        rack: rack.clone(),
                        server: server.clone(),
                        size: vol.size,
                        file_count: vol.file_count,
                        modified_at: vol.modified_at_second,
                        read_only: vol.read_only,
                    }));
                }
            }
        }
        replicas.sort_by(|a, b| (a.id, &a.datacenter, &a.server).cmp(&(b.id, &b.datacenter, &b.server)));
        observation.topology = Some(Topology { datacenters, layouts, replicas });
    }
    Ok(observation)
}

/// A polled SeaweedFS server over HTTP(S).
pub struct SeaweedSource {
    target: SeaweedTarget,
    timeout: Duration,
    connect_timeout: Duration,
    client: Option<reqwest::Client>,
    /// The last heartbeat sequence this filer wrote.
    last_heartbeat: u64,
}

impl SeaweedSource {
    pub fn new(target: SeaweedTarget, timeout: Duration, connect_timeout: Duration) -> Self {
        Self { target, timeout, connect_timeout, client: None, last_heartbeat: 0 }
    }

    fn client(&mut self) -> Result<reqwest::Client, PollFailure> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.connect_timeout + self.timeout)
            .pool_max_idle_per_host(2)
            .redirect(reqwest::redirect::Policy::limited(3));
        if let Some(pem) = &self.target.ca_pem {
            let certificate = reqwest::Certificate::from_pem(pem)
                .map_err(|e| PollFailure::new(FailureKind::Connect, format!("ca_file: {e}")))?;
            builder = builder.tls_built_in_root_certs(false).add_root_certificate(certificate);
        }
        let client = builder.build().map_err(|e| PollFailure::new(FailureKind::Connect, e.to_string()))?;
        self.client = Some(client.clone());
        Ok(client)
    }

    async fn fetch(client: &reqwest::Client, base: &str, path: &str) -> Result<Vec<u8>, PollFailure> {
        fetch(client.get(format!("{base}{path}")), path).await?.ok_or_else(|| {
            PollFailure::new(FailureKind::Query, format!("{path}: HTTP {}", reqwest::StatusCode::NOT_FOUND))
        })
    }

    async fn poll_master(&mut self) -> Result<Sampled<MasterObservation>, PollFailure> {
        let client = self.client()?;
        let base = self.target.base_url.clone();
        let started = Instant::now();
        let cluster = Self::fetch(&client, &base, "/cluster/status").await?;
        let leader = parse::<RawClusterStatus>("/cluster/status", &cluster)?.is_leader;
        let topology = if leader {
            let (dir, vol) =
                tokio::join!(Self::fetch(&client, &base, "/dir/status"), Self::fetch(&client, &base, "/vol/status"));
            Some((dir?, vol?))
        } else {
            None
        };
        let at = started + started.elapsed() / 2;
        let observation = decode(&cluster, topology.as_ref().map(|(d, v)| (d.as_slice(), v.as_slice())))?;
        Ok(Sampled { at, observation })
    }
}

impl Source for SeaweedSource {
    type Observation = SeaweedObservation;

    async fn poll(&mut self) -> Result<Sampled<SeaweedObservation>, PollFailure> {
        match self.target.role.clone() {
            SeaweedRole::Master => Ok(self.poll_master().await?.map(SeaweedObservation::Master)),
            SeaweedRole::Filer { heartbeat, heartbeat_path, .. } => {
                let client = self.client()?;
                let sampled = filer::poll(
                    &client,
                    &self.target.base_url,
                    heartbeat.as_ref().map(|h| (h, heartbeat_path.as_str())),
                    &mut self.last_heartbeat,
                )
                .await?;
                Ok(sampled.map(SeaweedObservation::Filer))
            }
            SeaweedRole::FilerSync { .. } => {
                let client = self.client()?;
                Ok(filer_sync::poll(&client, &self.target.base_url).await?.map(SeaweedObservation::FilerSync))
            }
        }
    }

    fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    fn reset(&mut self) {
        self.client = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CLUSTER: &str = include_str!("../../../tests/fixtures/seaweedfs/cluster_status.json");
    const DIR: &str = include_str!("../../../tests/fixtures/seaweedfs/dir_status.json");
    const VOL: &str = include_str!("../../../tests/fixtures/seaweedfs/vol_status.json");

    #[test]
    fn decodes_recorded_replies() {
        let o = decode(CLUSTER.as_bytes(), Some((DIR.as_bytes(), VOL.as_bytes()))).unwrap();
        assert!(o.is_leader);
        assert_eq!(o.leader.as_deref(), Some("127.0.0.1:19333"));
        let t = o.topology.unwrap();
        let mut dcs: Vec<&str> = t.datacenters.iter().map(|d| d.id.as_str()).collect();
        dcs.sort();
        assert_eq!(dcs, ["eu-west", "us-east"]);
        assert_eq!(t.replicas.len(), 12, "6 volumes x 2 data centers");
        assert!(t.replicas.iter().all(|r| r.placement.code() == "100" && r.placement.copies() == 2));
        assert_eq!(t.layouts[0].replication, "100");
        assert_eq!(t.layouts[0].writables, 6);
    }

    #[test]
    fn damaged_replies_are_errors() {
        let cases: Vec<(String, String, String)> = vec![
            (CLUSTER[..CLUSTER.len() / 2].into(), DIR.into(), VOL.into()),
            (CLUSTER.into(), DIR[..DIR.len() - 10].into(), VOL.into()),
            (CLUSTER.into(), DIR.into(), VOL.replace("\"Id\":", "\"Id\":\"x\",\"Old\":")),
            (CLUSTER.into(), DIR.replace("\"Topology\"", "\"Topo\""), VOL.into()),
            (CLUSTER.into(), DIR.into(), VOL.replace("\"Size\":", "\"Size\":-")),
            (CLUSTER.replace("true", "\"yes\""), DIR.into(), VOL.into()),
            (CLUSTER.into(), DIR.into(), "[]".into()),
        ];
        for (c, d, v) in cases {
            let err = decode(c.as_bytes(), Some((d.as_bytes(), v.as_bytes()))).unwrap_err();
            assert_eq!(err.kind, FailureKind::Protocol, "{err}");
        }
    }

    #[test]
    fn a_datacenter_whose_servers_died_has_null_data_nodes() {
        // What a real master sends after a data center's only volume server dies.
        let dir = br#"{"Topology":{"Max":5,"Free":0,"DataCenters":[{"Id":"eu-west","Racks":[{"Id":"DefaultRack","DataNodes":null}]},
            {"Id":"us-east","Racks":[{"Id":"DefaultRack","DataNodes":[{"Url":"127.0.0.1:22380","Volumes":5,"Max":5}]}]}],
            "Layouts":[{"replication":"100","writables":null,"collection":""}]},"Version":"4.48"}"#;
        let o = decode(CLUSTER.as_bytes(), Some((dir, br#"{"Volumes":{"DataCenters":null}}"#))).unwrap();
        let t = o.topology.unwrap();
        let eu = t.datacenters.iter().find(|d| d.id == "eu-west").unwrap();
        assert_eq!(eu.data_nodes, 0);
        assert_eq!(t.layouts[0].writables, 0);
    }

    #[test]
    fn omitted_fields_default() {
        let o = decode(b"{}", Some((br#"{"Topology":{}}"#, br#"{"Volumes":{}}"#))).unwrap();
        assert!(!o.is_leader && o.leader.is_none());
        assert_eq!(o.topology.unwrap(), Topology::default());
        let p: Placement = serde_json::from_str("{}").unwrap();
        assert_eq!((p.code().as_str(), p.copies()), ("000", 1));
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(a in prop::collection::vec(any::<u8>(), 0..200), cut in 0usize..4000) {
            let _ = decode(&a, Some((&a, &a)));
            let cut = cut.min(VOL.len());
            let _ = decode(CLUSTER.as_bytes(), Some((DIR.as_bytes(), &VOL.as_bytes()[..cut])));
        }
    }
}
