//! The sweep. Redis expiry frees every record by itself; what it cannot do is trim the two
//! "by expiry" sorted sets the sweep walks, and drop records whose deadline passed by the
//! servers' clock but not yet by Redis's (or families revoked before their deadline). Run
//! [`countersign::sweep::continuously_delete_expired`] (every minute is plenty) in each
//! server; concurrent sweeps from several servers are safe, each batch is one atomic script.

use async_trait::async_trait;
use countersign::clock::UnixTime;
use countersign::store::{RefreshStore as _, SessionStore as _, StoreResult};
use countersign::sweep::{Sweep, SweepReport};

use crate::RedisStore;

/// Removes the sessions and refresh families that ended by `now`, in batches of
/// [`RedisOptions::sweep_batch`](crate::RedisOptions::sweep_batch). The report's
/// `denied_jtis` and `throttle_keys` stay zero: Redis drops those itself when they end.
#[async_trait]
impl Sweep for RedisStore {
    async fn delete_expired(&self, now: UnixTime) -> StoreResult<SweepReport> {
        let mut report = SweepReport::default();
        report.sessions = self.sweep_sessions(now).await?;
        report.families = self.sweep_families(now).await?;
        Ok(report)
    }
}
