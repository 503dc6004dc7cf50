//! The store's connection: made and checked at startup, shared by the clones, and how one
//! command runs (within the operation timeout, its errors mapped to the store's kinds).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use countersign::store::{StoreError, StoreResult, backend, unavailable};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, ServerErrorKind};

use crate::error::RedisError;
use crate::keys::Keys;
use crate::options::RedisOptions;
use crate::redact::redact_url;
use crate::scripts::Scripts;
use crate::tls;

/// The Redis store. Cheap to clone: clones share one multiplexed connection.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) inner: Arc<Inner>,
}

/// What the clones of a store share.
pub(crate) struct Inner {
    conn: ConnectionManager,
    /// Makes the pub/sub connection of [`listen`](crate::listen).
    pub(crate) client: redis::Client,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) reconnect_max_delay: Duration,
    keys: Keys,
    scripts: Scripts,
    op_timeout: Duration,
    pub(crate) sweep_batch: usize,
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

    pub(crate) fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    pub(crate) fn scripts(&self) -> &Scripts {
        &self.inner.scripts
    }

    pub(crate) fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// Run one Redis call, bounded by the operation timeout, with its error mapped to the
    /// store's kinds.
    pub(crate) async fn run<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> StoreResult<T> {
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
