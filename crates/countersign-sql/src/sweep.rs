//! The periodic sweep of expired rows.

use std::sync::Arc;
use std::time::Duration;

use countersign::clock::Clock;
use countersign::store::StoreResult;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::{SqlStore, SweepReport};

/// Every `every` (first after one period), remove what has expired at `clock.now()`:
/// sessions, ended and revoked refresh families with their tokens, denylisted `jti`s past
/// their expiry, ended throttle windows. Deletes go in batches of a few hundred rows, each
/// its own short statement, so requests never wait long behind a sweep; a failed pass is
/// logged and retried at the next tick. Abort the handle to stop. Several servers may sweep
/// one database: they only race to delete the same rows.
///
/// Must be called from within a Tokio runtime.
pub fn spawn_sweeper(store: SqlStore, every: Duration, clock: Arc<dyn Clock>) -> JoinHandle<()> {
    spawn_sweeper_reporting(store, every, clock, None)
}

/// [`spawn_sweeper`], sending the result of each pass to `reports` (for tests).
pub fn spawn_sweeper_reporting(
    store: SqlStore,
    every: Duration,
    clock: Arc<dyn Clock>,
    reports: Option<UnboundedSender<StoreResult<SweepReport>>>,
) -> JoinHandle<()> {
    let every = every.max(Duration::from_millis(1));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let result = store.sweep(clock.now()).await;
            match &result {
                Ok(report) => tracing::debug!(?report, "swept expired rows"),
                Err(e) => tracing::warn!(
                    error = %chain(e),
                    "sweeping expired rows failed; retrying at the next tick"
                ),
            }
            if let Some(reports) = &reports
                && reports.send(result).is_err()
            {
                return;
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
