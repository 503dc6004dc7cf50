//! The SQLite store: the embedded default of `countersign serve`.
//!
//! WAL journal (readers never wait for the writer), `synchronous=NORMAL` (durable across a
//! process crash; a power loss may lose the last transactions, never corrupt the file),
//! foreign keys on, a busy timeout for the other processes on the same file (the admin CLI
//! while the server runs).
//!
//! Two pools over one file: a writer pool of exactly one connection, so writes queue in the
//! pool (a fair async wait) instead of spinning in SQLite's busy handler, and a reader pool
//! of a few `query_only` connections that read in parallel — `load_session`, on every
//! cookie-authenticated request, is one of those reads. An in-memory database (for tests)
//! has a single connection for both, since each connection would otherwise see its own.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};

use countersign::redact::redacted_url;

use crate::SqlError;
use crate::migrate::{Dialect, migrator};
use crate::options::PoolOptions;

type Db = Sqlite;

/// The file `SqliteStore::open_in` creates in the data directory.
pub const DB_FILE: &str = "countersign.db";

/// A SQLite database holding every table of the store traits.
#[derive(Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    /// Redacted.
    url: Arc<str>,
}

impl SqliteStore {
    /// Open the database at `url` (`sqlite://path?mode=rwc`, `sqlite:path`,
    /// `sqlite::memory:`; without `mode=rwc` the file must exist). Does not migrate.
    ///
    /// # Errors
    /// [`SqlError::InvalidUrl`], or [`SqlError::Connect`] when the file cannot be opened.
    pub async fn connect(url: &str, opts: &PoolOptions) -> Result<Self, SqlError> {
        let shown = redacted_url(url);
        let options =
            SqliteConnectOptions::from_str(url).map_err(|source| SqlError::InvalidUrl {
                url: shown.clone(),
                source,
            })?;
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        Self::open_with(options, memory, shown, opts).await
    }

    /// Open (creating it if needed) `<data_dir>/countersign.db`, creating `data_dir` too.
    /// Does not migrate.
    ///
    /// # Errors
    /// [`SqlError::DataDir`] or [`SqlError::Connect`].
    pub async fn open_in(data_dir: &Path, opts: &PoolOptions) -> Result<Self, SqlError> {
        tokio::fs::create_dir_all(data_dir)
            .await
            .map_err(|source| SqlError::DataDir {
                path: data_dir.to_owned(),
                source,
            })?;
        let path = data_dir.join(DB_FILE);
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let shown = format!("sqlite://{}", path.display());
        Self::open_with(options, false, shown, opts).await
    }

    async fn open_with(
        options: SqliteConnectOptions,
        memory: bool,
        url: String,
        opts: &PoolOptions,
    ) -> Result<Self, SqlError> {
        // No `journal_mode` here: see `switch_to_wal`.
        let options = options
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(opts.busy_timeout);
        let connect_err = |source| SqlError::Connect {
            url: url.clone(),
            source,
        };
        // The writer first: it creates the file and switches it to WAL; connections opened
        // afterwards find the file in WAL mode (a property of the file, not the connection).
        let write = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await
            .map_err(connect_err)?;
        if !memory {
            switch_to_wal(&write, opts.busy_timeout)
                .await
                .map_err(connect_err)?;
        }
        let read = if memory {
            write.clone()
        } else {
            let max = opts.max_connections.unwrap_or_else(default_readers).max(1);
            SqlitePoolOptions::new()
                // sqlx pings a connection on every acquire by default: a second hand-off
                // to the connection's thread per query, for a local file that does not
                // drop connections.
                .test_before_acquire(false)
                .max_connections(max)
                .min_connections(opts.min_connections.min(max))
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(options.pragma("query_only", "ON"))
                .await
                .map_err(connect_err)?
        };
        tracing::debug!(url = %url, "opened the SQLite store");
        Ok(Self {
            read,
            write,
            url: url.into(),
        })
    }

    /// Bring the schema up to date. Safe to run from several processes at once: the
    /// migrator runs inside `BEGIN IMMEDIATE`, so a second one waits for the first and then
    /// finds nothing to do.
    ///
    /// # Errors
    /// [`SqlError::Migrate`].
    pub async fn migrate(&self) -> Result<(), SqlError> {
        let err = |source| SqlError::Migrate {
            url: self.url.to_string(),
            source,
        };
        let migrator = migrator(Dialect::Sqlite).await.map_err(err)?;
        let mut tx = self
            .write
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| err(e.into()))?;
        // `run_direct` is what `run` calls; `run` itself makes the future not `Send` for
        // every lifetime (sqlx's "implementation of `Acquire` is not general enough"),
        // which would keep callers from spawning it.
        migrator.run_direct(&mut *tx).await.map_err(err)?;
        tx.commit().await.map_err(|e| err(e.into()))
    }

    /// The database URL, redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Close every connection (checkpointing the WAL), waiting for those in use.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// The readers' pool (`query_only` connections; the writer's pool for an in-memory
    /// database), for reads outside the store traits.
    pub fn read_pool(&self) -> &SqlitePool {
        &self.read
    }

    /// The pool of the one writer connection, for writes outside the store traits (keep
    /// them short: every write of the store waits for this connection).
    pub fn write_pool(&self) -> &SqlitePool {
        &self.write
    }

    fn reader(&self) -> &SqlitePool {
        &self.read
    }

    fn writer(&self) -> &SqlitePool {
        &self.write
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock before the first read,
    /// so what the transaction read cannot change before it writes (a deferred `BEGIN`
    /// would fail with `SQLITE_BUSY_SNAPSHOT` instead of waiting).
    async fn begin_write(&self) -> Result<Transaction<'static, Db>, sqlx::Error> {
        self.write.begin_with("BEGIN IMMEDIATE").await
    }
}

/// Put the database file in WAL mode (it stays so). Done by hand with retries rather than
/// as a connect option: leaving another journal mode needs an exclusive lock that SQLite's
/// busy timeout does not wait for, so two processes opening a new file at once would have
/// one fail with "database is locked". On a file already in WAL mode this is a no-op.
async fn switch_to_wal(pool: &SqlitePool, patience: Duration) -> Result<(), sqlx::Error> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL")
            .fetch_one(pool)
            .await
        {
            Ok(mode) => {
                if !mode.eq_ignore_ascii_case("wal") {
                    // E.g. a file system without shared memory: the store still works,
                    // with readers and the writer waiting for each other.
                    tracing::warn!(%mode, "SQLite refused WAL mode; reads will wait for writes");
                }
                return Ok(());
            }
            Err(sqlx::Error::Database(e))
                if is_busy(e.code().as_deref()) && started.elapsed() < patience =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}

/// `SQLITE_BUSY`, or one of its extended codes.
fn is_busy(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| c & 0xff == 5)
}

/// Readers: four per core, between 4 and 16. Each sqlx SQLite connection is a thread that a
/// query reaches over a channel, so more reads in flight than cores hide those hand-offs:
/// on 2 cores, 64 concurrent `load_session` callers made about 23k/s with 2 readers, 33k/s
/// with 4, 39k/s with 8 and no more with 16.
fn default_readers() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    u32::try_from(cores.saturating_mul(4)).map_or(16, |n| n.clamp(4, 16))
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("url", &self.url)
            .field("readers", &self.read.size())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

crate::store_impl::impl_stores!(crate::sqlite::SqliteStore, crate::sqlite::Db);
