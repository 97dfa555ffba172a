//! What polling one node means, whatever the system: a connection that can
//! be polled repeatedly and turns each poll into a sampled observation.

use std::future::Future;
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
}
