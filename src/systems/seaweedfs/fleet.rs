//! The fleet as SeaweedFS' link rules read it, and the names they share.

use super::source::SeaweedObservation;
use super::target::SeaweedTarget;
use crate::model::{LinkView, System};

pub const SYSTEM: System = System::Seaweedfs;

/// The fleet as SeaweedFS' link rules see it.
pub type Fleet<'a> = crate::lag::Fleet<'a, SeaweedTarget, SeaweedObservation>;

/// A SeaweedFS volume link (no detail beyond the common fields).
pub type SeaweedLink = LinkView<()>;
