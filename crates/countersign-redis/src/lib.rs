//! countersign's Redis store: sessions, refresh-token families, the `jti` denylist and
//! throttling counters (every trait of [`countersign::store::EphemeralStore`]; users stay
//! in SQL).
//!
//! ```no_run
//! # async fn run() -> Result<(), countersign_redis::RedisError> {
//! use countersign_redis::{RedisOptions, connect};
//! let store = connect("redis://127.0.0.1:6379/0", &RedisOptions::default()).await?;
//! # let _ = store; Ok(()) }
//! ```
//!
//! How it maps onto Redis:
//! - Every write that must be atomic (create unless it exists, touch unless gone, rotate a
//!   refresh token, revoke-all, count a failed login) is one Lua script, so
//!   concurrent servers sharing the Redis see each step whole.
//! - Records expire in Redis at the earlier of their deadlines plus a grace for clock
//!   differences (`PEXPIREAT`), so Redis is the garbage collector. The deadlines are also
//!   stored and checked against the `now` each call passes: the stored deadlines are the
//!   truth, Redis expiry only frees memory.
//! - Every key starts with [`RedisOptions::key_prefix`]; the layout is in `docs/redis.md`.
//! - A lost connection is re-made in the background with exponential backoff (redis-rs's
//!   `ConnectionManager`); meanwhile every operation fails within
//!   `connect_timeout + command_timeout` with `StoreError::Unavailable`, which the server
//!   answers with 503 and `Retry-After`.
//!
//! The choice of client crate and the operational notes are in `docs/redis.md`.
#![warn(missing_docs)]

mod error;
mod invalidations;
mod keys;
mod options;
mod redact;
mod refresh;
mod revocation;
mod scripts;
mod sessions;
mod store;
mod sweep;
mod throttle;
mod tls;

use std::collections::HashMap;

use countersign::clock::UnixTime;
use countersign::store::{StoreError, StoreResult, backend};

pub use error::RedisError;
pub use invalidations::listen;
pub use options::RedisOptions;
pub use redact::redact_url;
pub use store::{RedisStore, connect};

/// Seconds as Redis arguments are written: decimal.
fn secs(t: UnixTime) -> String {
    t.secs().to_string()
}

/// A hash read back from Redis, with typed field access.
struct Fields<'a> {
    record: &'static str,
    map: &'a HashMap<String, String>,
}

impl<'a> Fields<'a> {
    fn new(record: &'static str, map: &'a HashMap<String, String>) -> Self {
        Self { record, map }
    }

    fn corrupt(&self, field: &'static str) -> StoreError {
        corrupt(self.record, field)
    }

    fn str(&self, field: &'static str) -> StoreResult<&'a str> {
        self.map
            .get(field)
            .map(String::as_str)
            .ok_or_else(|| self.corrupt(field))
    }

    fn int(&self, field: &'static str) -> StoreResult<i64> {
        self.str(field)?.parse().map_err(|_| self.corrupt(field))
    }

    fn time(&self, field: &'static str) -> StoreResult<UnixTime> {
        self.int(field).map(UnixTime)
    }
}

/// A [`StoreError::Backend`] for a stored value this crate would not have written.
fn corrupt(record: &'static str, field: &'static str) -> StoreError {
    backend(RedisError::Corrupt { record, field })
}

/// A stored time, as a [`StoreError::Backend`] when it is not one.
fn parse_time(record: &'static str, field: &'static str, s: &str) -> StoreResult<UnixTime> {
    s.parse().map(UnixTime).map_err(|_| corrupt(record, field))
}
