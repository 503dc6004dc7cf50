//! The periodic sweep. Redis expiry frees every record by itself; what it cannot do is
//! trim the two "by expiry" sorted sets the sweep walks, and drop records whose deadline
//! passed by the servers' clock but not yet by Redis's (or families revoked before their
//! deadline). Run [`spawn_sweeper`] (every minute is plenty) in each server; concurrent
//! sweeps from several servers are safe, each batch is one atomic script.

use std::sync::Arc;
use std::time::Duration;

use countersign::clock::{Clock, UnixTime};
use countersign::store::{RefreshStore as _, SessionStore as _, StoreResult};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::RedisStore;

/// The report of one sweep pass ([`RedisStore::sweep`]). Denylisted `jti`s and throttle
/// counters are not in it: Redis drops them itself when they end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepReport {
    /// Sessions removed.
    pub sessions: u64,
    /// Ended or revoked refresh families removed (with their tokens).
    pub families: u64,
}

impl RedisStore {
    /// Remove the sessions and refresh families that ended by `now`, in batches of
    /// [`RedisOptions::sweep_batch`](crate::RedisOptions::sweep_batch).
    ///
    /// # Errors
    /// The store's errors; what was removed before a failure stays removed.
    pub async fn sweep(&self, now: UnixTime) -> StoreResult<SweepReport> {
        Ok(SweepReport {
            sessions: self.sweep_sessions(now).await?,
            families: self.sweep_families(now).await?,
        })
    }
}

/// Sweep `store` every `every` in the background, reading the time from `clock`. Failures
/// (Redis down) are logged and retried at the next tick. Abort the handle to stop.
pub fn spawn_sweeper(store: RedisStore, every: Duration, clock: Arc<dyn Clock>) -> JoinHandle<()> {
    let every = every.max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match store.sweep(clock.now()).await {
                Ok(report) => tracing::debug!(?report, "swept expired Redis records"),
                Err(e) => tracing::warn!(
                    error = %chain(&e),
                    "sweeping Redis failed; retrying at the next tick"
                ),
            }
        }
    })
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
