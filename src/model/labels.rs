//! The labels every series, JSON object and memory is keyed by: systems,
//! link kinds, and a link's identity.

use serde::{Deserialize, Serialize};

/// A replicated system replag knows. Each has a folder under `systems/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    Postgres,
    Redis,
    Seaweedfs,
}

impl System {
    pub const ALL: [System; 3] = [System::Postgres, System::Redis, System::Seaweedfs];

    pub fn as_str(self) -> &'static str {
        match self {
            System::Postgres => "postgres",
            System::Redis => "redis",
            System::Seaweedfs => "seaweedfs",
        }
    }

    pub fn from_name(name: &str) -> Option<System> {
        System::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// What kind of replication a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    Physical,
    Logical,
    Replica,
    Volume,
    /// SeaweedFS `weed filer.sync` between two clusters' filers.
    #[serde(rename = "filer_sync")]
    FilerSync,
}

impl LinkKind {
    pub const ALL: [LinkKind; 5] =
        [LinkKind::Physical, LinkKind::Logical, LinkKind::Replica, LinkKind::Volume, LinkKind::FilerSync];

    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Physical => "physical",
            LinkKind::Logical => "logical",
            LinkKind::Replica => "replica",
            LinkKind::Volume => "volume",
            LinkKind::FilerSync => "filer_sync",
        }
    }

    pub fn from_name(name: &str) -> Option<LinkKind> {
        LinkKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Region label for a replica found by discovery that no config names.
pub const UNKNOWN_REGION: &str = "unknown";

/// A link's identity: the six labels its series carry on /metrics, the
/// fields that open its JSON object in /api/v1/status and /gate, and how
/// gates, logs and the engine's memories key it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LinkId {
    pub system: System,
    pub kind: LinkKind,
    pub source: String,
    pub source_region: String,
    pub replica: String,
    pub replica_region: String,
}

impl LinkId {
    /// `(name, region)` of each end.
    pub fn new(system: System, kind: LinkKind, source: (String, String), replica: (String, String)) -> Self {
        LinkId {
            system,
            kind,
            source: source.0,
            source_region: source.1,
            replica: replica.0,
            replica_region: replica.1,
        }
    }

    /// `system/kind/source->replica`: how gates and logs name a link.
    pub fn path(&self) -> String {
        format!("{}/{}/{}->{}", self.system.as_str(), self.kind.as_str(), self.source, self.replica)
    }

    /// The label values in the order of [`LinkId::LABELS`].
    pub fn label_values(&self) -> [&str; 6] {
        [
            self.system.as_str(),
            self.kind.as_str(),
            &self.source,
            &self.source_region,
            &self.replica,
            &self.replica_region,
        ]
    }

    pub const LABELS: [&'static str; 6] = ["system", "kind", "source", "source_region", "replica", "replica_region"];
}
