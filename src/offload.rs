//! CPU-heavy work on the async runtime (building a snapshot, rendering
//! `/metrics`, evaluating a gate over many links) without stalling it.
//!
//! replag runs two worker threads. Work that takes milliseconds on one of
//! them delays every task queued there — pollers' timers, other requests —
//! and a second request waiting for the same cached render would block the
//! other worker too. `block_in_place` hands the worker's queue to another
//! thread for the duration, so polling and cheap requests go on.

/// From this many links on, work over a snapshot (a gate, the status JSON or
/// page, the gates' track update) is heavy enough to move off the async
/// workers; below, it takes well under a millisecond.
pub const HEAVY_LINKS: usize = 256;

/// Run `work` here, letting the runtime's other tasks move to another thread.
pub fn heavy<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        // A current-thread runtime (unit tests) has nowhere to move tasks.
        _ => work(),
    }
}
