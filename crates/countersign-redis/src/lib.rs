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
mod redact;
mod refresh;
mod revocation;
mod scripts;
mod sessions;
mod sweep;
mod throttle;
mod tls;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use countersign::clock::UnixTime;
use countersign::store::{StoreError, StoreResult, backend, unavailable};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, ServerErrorKind};

pub use error::RedisError;
pub use invalidations::listen;
pub use redact::redact_url;

use keys::Keys;
use scripts::Scripts;

/// How to connect and where to put the keys.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let mut opts = countersign_redis::RedisOptions::default();
/// opts.key_prefix = "staging:countersign:".into();
/// opts.command_timeout = Duration::from_millis(250);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Prepended to every key, so several deployments (or test runs) can share one server.
    /// Default `countersign:`.
    pub key_prefix: String,
    /// How long one connection attempt may take. Default 1 s.
    pub connect_timeout: Duration,
    /// How long one command may wait for its answer. Default 1 s.
    pub command_timeout: Duration,
    /// How many times a lost connection is retried, with exponential backoff, before the
    /// waiting operations fail (the next operation starts a new round). Default 3.
    pub reconnect_retries: usize,
    /// The longest pause between two reconnection attempts. Default 2 s.
    pub reconnect_max_delay: Duration,
    /// How long past its deadline Redis keeps a record (the stored deadlines still decide;
    /// this only delays freeing the memory). It absorbs clock differences up to this much
    /// between the servers and Redis. Default 60 s.
    pub expiry_grace: Duration,
    /// How many expired records one sweep script looks at (a sweep runs as many batches
    /// as it needs; a smaller batch blocks the server for less time). Default 500.
    pub sweep_batch: usize,
    /// For `rediss://` URLs: a PEM file of the CA certificates to trust instead of the
    /// public roots (a managed service's or your own private CA). Default none.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            key_prefix: "countersign:".to_owned(),
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(1),
            reconnect_retries: 3,
            reconnect_max_delay: Duration::from_secs(2),
            expiry_grace: Duration::from_secs(60),
            sweep_batch: 500,
            ca_file: None,
        }
    }
}

impl RedisOptions {
    /// The bound on one store operation: a connection attempt plus the command.
    pub fn operation_timeout(&self) -> Duration {
        self.connect_timeout.saturating_add(self.command_timeout)
    }
}

/// The Redis store. Cheap to clone: clones share one multiplexed connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    /// Makes the pub/sub connection of [`listen`].
    client: redis::Client,
    connect_timeout: Duration,
    command_timeout: Duration,
    reconnect_max_delay: Duration,
    keys: Keys,
    scripts: Scripts,
    op_timeout: Duration,
    sweep_batch: usize,
    url: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.url)
            .field("key_prefix", &self.inner.keys.prefix())
            .finish_non_exhaustive()
    }
}

/// Connect to the Redis at `url` (`redis://[user:password@]host[:port][/db]`,
/// `unix:///path?db=N&pass=…`).
///
/// The first connection is made here, so a wrong host or password is reported at startup
/// rather than at the first request. Later losses are repaired in the background.
///
/// # Errors
/// [`RedisError::InvalidUrl`], [`RedisError::Connect`], [`RedisError::ConnectTimeout`], or
/// [`RedisError::UnsupportedServer`] for a server older than 7.0. The URL in any of them is
/// redacted.
pub async fn connect(url: &str, opts: &RedisOptions) -> Result<RedisStore, RedisError> {
    let redacted = redact_url(url);
    let client = tls::client(url, &redacted, opts)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(opts.connect_timeout))
        .set_response_timeout(Some(opts.command_timeout))
        .set_number_of_retries(opts.reconnect_retries)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(opts.reconnect_max_delay);
    // Each attempt is bounded by the connect timeout and followed by at most the longest
    // backoff pause; the whole first connection by all of them plus one command.
    let attempts = u32::try_from(opts.reconnect_retries)
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let first = opts
        .connect_timeout
        .saturating_add(opts.reconnect_max_delay)
        .saturating_mul(attempts)
        .saturating_add(opts.command_timeout);
    let mut conn = match tokio::time::timeout(
        first,
        ConnectionManager::new_with_config(client.clone(), config),
    )
    .await
    {
        Ok(Ok(conn)) => conn,
        Ok(Err(source)) => return Err(tls::connect_error(redacted, opts, source)),
        Err(_) => return Err(RedisError::ConnectTimeout { url: redacted }),
    };
    check_version(&mut conn, &redacted, opts.operation_timeout()).await?;
    Ok(RedisStore {
        inner: Arc::new(Inner {
            conn,
            client,
            connect_timeout: opts.connect_timeout,
            command_timeout: opts.command_timeout,
            reconnect_max_delay: opts.reconnect_max_delay,
            keys: Keys::new(&opts.key_prefix),
            scripts: Scripts::new(opts.expiry_grace),
            op_timeout: opts.operation_timeout(),
            sweep_batch: opts.sweep_batch.max(1),
            url: redacted,
        }),
    })
}

/// Refuse servers older than 7.0. A server that hides `INFO` (some managed services rename
/// it) is given the benefit of the doubt.
async fn check_version(
    conn: &mut ConnectionManager,
    url: &str,
    within: Duration,
) -> Result<(), RedisError> {
    let mut cmd = redis::cmd("INFO");
    cmd.arg("server");
    let info = match tokio::time::timeout(within, cmd.query_async::<String>(conn)).await {
        Ok(Ok(info)) => info,
        Ok(Err(e)) if e.is_io_error() => {
            return Err(RedisError::Connect {
                url: url.to_owned(),
                source: e,
            });
        }
        Ok(Err(_)) => return Ok(()),
        Err(_) => {
            return Err(RedisError::ConnectTimeout {
                url: url.to_owned(),
            });
        }
    };
    let Some(version) = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map(str::trim)
    else {
        return Ok(());
    };
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m < 7 => Err(RedisError::UnsupportedServer {
            url: url.to_owned(),
            version: version.to_owned(),
        }),
        _ => Ok(()),
    }
}

impl RedisStore {
    /// The URL this store connected to, password redacted (for logs).
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The prefix of every key this store writes.
    pub fn key_prefix(&self) -> &str {
        self.inner.keys.prefix()
    }

    fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    fn scripts(&self) -> &Scripts {
        &self.inner.scripts
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// Run one Redis call, bounded by the operation timeout, with its error mapped to the
    /// store's kinds.
    async fn run<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> StoreResult<T> {
        match tokio::time::timeout(self.inner.op_timeout, call).await {
            Ok(result) => result.map_err(store_error),
            Err(_) => Err(unavailable(RedisError::Timeout)),
        }
    }
}

/// Connection trouble and the server's "not now" answers are [`StoreError::Unavailable`]
/// (retry later: 503); anything else is [`StoreError::Backend`].
fn store_error(e: redis::RedisError) -> StoreError {
    let transient = e.is_io_error()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        );
    if transient {
        unavailable(e)
    } else {
        backend(e)
    }
}

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
