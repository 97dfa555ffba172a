//! What polling one node means, whatever the system: a connection that can
//! be polled repeatedly and turns each poll into a sampled observation.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use super::failure::PollFailure;

/// An observation and the moment (monotonic) it describes: the midpoint of
/// the query round trip, not including connection set-up.
#[derive(Debug, Clone)]
pub struct Sampled<O> {
    pub at: Instant,
    pub observation: O,
}

impl<O> Sampled<O> {
    pub fn map<P>(self, f: impl FnOnce(O) -> P) -> Sampled<P> {
        Sampled { at: self.at, observation: f(self.observation) }
    }
}

/// A source's position in its stream, and a mark that moves whenever what
/// it wrote since the previous reading includes data (a commit, a write
/// command), not only housekeeping (a checkpoint or standby-snapshot record,
/// a master's replication ping). A replica that lacks only housekeeping is
/// behind in bytes, not in time: its data is current. Systems that cannot
/// tell the two apart use the position as the mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcePosition {
    pub position: u64,
    pub mark: u64,
    /// The mark may trail the position by one reading (PostgreSQL: a commit
    /// is in the WAL a moment before its transaction counts as completed),
    /// so an advance is housekeeping only once the next reading confirms
    /// it. Redis' mark is exact (judged from the offset alone): a ping is
    /// housekeeping at once.
    pub mark_trails: bool,
}

impl SourcePosition {
    /// A position whose every advance is data.
    pub fn all_data(position: u64) -> Self {
        SourcePosition { position, mark: position, mark_trails: false }
    }
}

/// A connection to one node that can be polled repeatedly. Implementations
/// keep their connection between polls and reconnect on the next poll after
/// a failure; the poller owns timing, timeouts and backoff.
pub trait Source: Send + 'static {
    type Observation;
    /// Poll once, connecting first if there is no connection.
    fn poll(&mut self) -> impl Future<Output = Result<Sampled<Self::Observation>, PollFailure>> + Send;
    /// A connection is established: the next poll is one round trip.
    fn is_connected(&self) -> bool;
    /// Drop the connection (after a timeout, the next poll reconnects).
    fn reset(&mut self);
    /// Opens reads of the node's own position as a replication source,
    /// between polls, by a query far smaller than a poll, so that when the
    /// source wrote is known to within the sampling interval, not the poll
    /// interval (docs/architecture.md, "Resolution"). Each opening is a
    /// connection of its own: a poll never waits behind reads, nor reads
    /// behind a poll. `None`: this kind of node is never sampled, or it is
    /// not a source now.
    fn position_reader(&mut self) -> Option<OpenPositionReader> {
        None
    }
}

/// One read of a source's position: `Ok(None)` when the node is no longer
/// the source its last poll saw.
pub type PositionRead = Pin<Box<dyn Future<Output = Result<Option<Sampled<SourcePosition>>, PollFailure>> + Send>>;

/// Reads a source's position, each read on its own: reads may overlap
/// (pipelined on the reader's connection), so a source across a WAN is
/// still read every sampling interval, not once per round trip.
pub type PositionReader = Arc<dyn Fn() -> PositionRead + Send + Sync>;

/// Connects a `PositionReader` (again, after a failure).
pub type OpenPositionReader =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<PositionReader, PollFailure>> + Send>> + Send + Sync>;
