//! Removing what has expired: one trait for the stores that need a sweep, one loop that
//! runs it (the shape of tower-sessions' `ExpiredDeletion`).
//!
//! A store implements [`Sweep::delete_expired`]: one pass, in batches small enough that
//! requests never wait long behind it. [`continuously_delete_expired`] runs passes every
//! period in the background; a failed pass is logged and retried at the next tick.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use countersign::clock::{SystemClock, UnixTime};
//! use countersign::store::StoreResult;
//! use countersign::sweep::{Sweep, SweepReport, continuously_delete_expired};
//!
//! struct Nothing;
//!
//! #[async_trait::async_trait]
//! impl Sweep for Nothing {
//!     async fn delete_expired(&self, _now: UnixTime) -> StoreResult<SweepReport> {
//!         Ok(SweepReport::default())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let sweeper = tokio::spawn(continuously_delete_expired(
//!     Nothing,
//!     Duration::from_secs(60),
//!     Arc::new(SystemClock),
//! ));
//! // … serve …
//! sweeper.abort();
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::{Instant, MissedTickBehavior};

use crate::clock::{Clock, UnixTime};
use crate::store::StoreResult;

/// What one sweep pass removed. A store counts what it removes itself; what its backend
/// drops on its own (Redis expires denylisted `jti`s and throttle counters) stays zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepReport {
    /// Expired sessions removed.
    pub sessions: u64,
    /// Ended or revoked refresh families removed (with their tokens).
    pub families: u64,
    /// Denylisted `jti`s past their token's expiry removed.
    pub denied_jtis: u64,
    /// Throttle counters whose window ended removed.
    pub throttle_keys: u64,
}

/// A store that removes what has expired, in one pass.
#[async_trait]
pub trait Sweep: Send + Sync + 'static {
    /// Remove everything that has expired at `now`. Several servers may sweep one store at
    /// once: they only race to remove the same records.
    ///
    /// # Errors
    /// The first store error; what was removed before it stays removed.
    async fn delete_expired(&self, now: UnixTime) -> StoreResult<SweepReport>;
}

#[async_trait]
impl<S: Sweep + ?Sized> Sweep for Arc<S> {
    async fn delete_expired(&self, now: UnixTime) -> StoreResult<SweepReport> {
        (**self).delete_expired(now).await
    }
}

/// Every `period` (the first pass after one period), remove what has expired at
/// `clock.now()`. A pass is logged at debug level with its report; a failed one (the
/// store is down) at warn level, and retried at the next tick. Never returns: spawn it
/// and abort the task to stop.
pub async fn continuously_delete_expired(
    store: impl Sweep,
    period: Duration,
    clock: Arc<dyn Clock>,
) {
    let period = period.max(Duration::from_millis(1));
    let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match store.delete_expired(clock.now()).await {
            Ok(report) => tracing::debug!(?report, "swept expired records"),
            Err(e) => tracing::warn!(
                error = %chain(&e),
                "sweeping expired records failed; retrying at the next tick"
            ),
        }
    }
}

/// An error and its sources, `outer: inner: …`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::clock::ManualClock;
    use crate::store::unavailable;

    /// Fails its first pass, then reports each time it was asked at.
    struct Counting {
        passes: AtomicU64,
        seen: tokio::sync::mpsc::UnboundedSender<StoreResult<UnixTime>>,
    }

    #[async_trait]
    impl Sweep for Counting {
        async fn delete_expired(&self, now: UnixTime) -> StoreResult<SweepReport> {
            if self.passes.fetch_add(1, Ordering::SeqCst) == 0 {
                let _ = self
                    .seen
                    .send(Err(unavailable(std::io::Error::other("down"))));
                return Err(unavailable(std::io::Error::other("down")));
            }
            let _ = self.seen.send(Ok(now));
            Ok(SweepReport {
                sessions: 1,
                ..SweepReport::default()
            })
        }
    }

    // One thread: the clock moves between two passes, never during one.
    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_pass_is_retried_at_the_next_tick_with_the_clocks_time() {
        let (seen, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let clock = ManualClock::new(UnixTime(1_800_000_000));
        let store = Arc::new(Counting {
            passes: AtomicU64::new(0),
            seen,
        });
        let sweeper = tokio::spawn(continuously_delete_expired(
            Arc::clone(&store),
            Duration::from_millis(1),
            Arc::new(clock.clone()),
        ));
        assert!(rx.recv().await.unwrap().unwrap_err().is_unavailable());
        clock.advance(60);
        assert_eq!(rx.recv().await.unwrap().unwrap(), UnixTime(1_800_000_060));
        sweeper.abort();
        // A loaded machine may let the 1 ms ticker run once more before the abort; what
        // counts is that the retry came and carried the clock's time.
        assert!(store.passes.load(Ordering::SeqCst) >= 2);
    }
}
