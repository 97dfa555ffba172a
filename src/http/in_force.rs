//! The config in force, as requests read it besides the snapshot.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::config::ShardSettings;
use crate::gate::GateSpec;

/// The config in force, as requests read it besides the snapshot: the
/// named gates, this instance's shard, and how the last reload went.
#[derive(Debug, Clone, Default)]
pub struct InForce {
    pub named: BTreeMap<String, GateSpec>,
    /// `max_data_age` for ad-hoc gates that do not set it.
    pub default_max_data_age: Duration,
    /// The last SIGHUP reload: whether it was taken, and when.
    pub last_reload: Option<(bool, SystemTime)>,
    pub shard: Option<ShardSettings>,
}

impl InForce {
    pub fn of(config: &crate::config::Config, last_reload: Option<(bool, SystemTime)>) -> Self {
        InForce {
            named: config.gates.clone(),
            default_max_data_age: config.default_max_data_age(),
            last_reload,
            shard: config.shard,
        }
    }
}
