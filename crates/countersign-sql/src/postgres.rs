//! The PostgreSQL store: for several `countersign serve` instances that act as one.
//!
//! One pool; write transactions are plain `BEGIN` (read committed): every check that
//! matters under concurrency is a conditional `UPDATE` whose row count decides, which
//! PostgreSQL re-evaluates after waiting for a concurrent writer of the same row.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, Transaction};

use countersign::redact::{is_secret_param, redacted_url};

use crate::SqlError;
use crate::migrate::{Dialect, migrator};
use crate::options::PoolOptions;

type Db = Postgres;

/// The default pool size.
const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// A PostgreSQL database holding every table of the store traits.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Redacted.
    url: Arc<str>,
}

impl PgStore {
    /// Connect to `url` (`postgres://user:password@host:port/db?…`, every parameter libpq
    /// knows that sqlx supports, e.g. `sslmode`, `options[search_path]=…`). Opens one
    /// connection to check that the server answers. Does not migrate.
    ///
    /// # Errors
    /// [`SqlError::InvalidUrl`], or [`SqlError::Connect`] when the server cannot be reached
    /// or refuses the login.
    pub async fn connect(url: &str, opts: &PoolOptions) -> Result<Self, SqlError> {
        let shown = redacted_url(url);
        // sqlx logs the value of every query parameter it does not know, in clear: a URL
        // with `sslpassword=…`, or a misspelt `passwd=…`, would put a secret in the log.
        // `password` is the one such parameter sqlx takes.
        let query = url.split_once('?').map_or("", |(_, q)| q);
        if query
            .split('&')
            .filter_map(|pair| pair.split('=').next())
            .any(|name| is_secret_param(name) && name != "password")
        {
            return Err(SqlError::SecretParameter { url: shown });
        }
        let options = PgConnectOptions::from_str(url).map_err(|source| SqlError::InvalidUrl {
            url: shown.clone(),
            source,
        })?;
        let connect_err = |source| crate::error::connect_error(shown.clone(), source);
        // One connection by hand first: the pool retries a refused connection until its
        // acquire timeout and then reports only "pool timed out", where this reports
        // "connection refused", "password authentication failed", "database … does not
        // exist", at once.
        PgConnection::connect_with(&options)
            .await
            .map_err(connect_err)?
            .close()
            .await
            .map_err(connect_err)?;
        let pool = PgPoolOptions::new()
            // sqlx pings a connection on every acquire by default: one more round trip
            // per query. Without it, a connection the server dropped (a restart) fails
            // its next query instead, as `Unavailable` (503), and is discarded; the pool
            // opens fresh ones.
            .test_before_acquire(false)
            .max_connections(
                opts.max_connections
                    .unwrap_or(DEFAULT_MAX_CONNECTIONS)
                    .max(1),
            )
            .min_connections(opts.min_connections)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(connect_err)?;
        tracing::debug!(url = %shown, "connected to PostgreSQL");
        Ok(Self {
            pool,
            url: shown.into(),
        })
    }

    /// Bring the schema up to date. Safe to run from several servers at once: sqlx's
    /// migrator holds `pg_advisory_lock` (keyed on the database name) while it works, so
    /// the others wait and then find nothing to do.
    ///
    /// # Errors
    /// [`SqlError::Migrate`].
    pub async fn migrate(&self) -> Result<(), SqlError> {
        let err = |source| SqlError::Migrate {
            url: self.url.to_string(),
            source,
        };
        let migrator = migrator(Dialect::Postgres).await.map_err(err)?;
        let mut conn = self.pool.acquire().await.map_err(|e| err(e.into()))?;
        // `run_direct` is what `run` calls; `run` itself makes the future not `Send` for
        // every lifetime (sqlx's "implementation of `Acquire` is not general enough"),
        // which would keep callers from spawning it.
        match migrator.run_direct(&mut *conn).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // A failed run returns without unlocking; the advisory lock belongs to the
                // session, so end the session rather than give a locked one back to the
                // pool.
                let _ = conn.close().await;
                Err(err(e))
            }
        }
    }

    /// The database URL, redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Close every connection, waiting for those in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The pool, for queries outside the store traits.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Db>, sqlx::Error> {
        self.pool.begin().await
    }
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.url)
            .field("connections", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

crate::store_impl::impl_stores!(crate::postgres::PgStore, crate::postgres::Db);
