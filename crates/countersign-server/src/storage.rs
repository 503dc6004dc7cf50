//! Opening the stores a [`StorageConfig`] names: SQLite in the data directory by default,
//! or the database `--database-url` names (SQLite or PostgreSQL), migrated to the current
//! schema; and the session store, which is that database or, with
//! `--session-store redis://…`, Redis.
//!
//! Users always live in the database. Sessions, refresh families, the `jti` denylist and the
//! failed-login counters live in the session store. URLs are only ever shown redacted
//! (`countersign_sql::redacted_url`, `countersign_redis::redact_url`): in logs, in errors
//! and in [`Stores::describe`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use countersign::clock::Clock;
use countersign::invalidation::Receiver;
use countersign::store::{EphemeralStore, UserStore};
use countersign::sweep::continuously_delete_expired;
use countersign_redis::{RedisOptions, RedisStore};
use countersign_sql::{PoolOptions, SqlStore, connect};
use tokio::task::JoinHandle;

use crate::settings::{RedisConfig, SessionStoreConfig, StorageConfig};

/// How often expired sessions, families and counters are swept.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The open stores.
#[derive(Clone, Debug)]
pub struct Stores {
    sql: SqlStore,
    redis: Option<RedisStore>,
}

impl Stores {
    /// Open the database `config` names and bring its schema up to date, then connect to
    /// the session store (Redis, when configured). Several processes may do this at once
    /// against one new database: the migrations take a lock (see `countersign_sql`).
    ///
    /// # Errors
    /// When the data directory cannot be created, the database cannot be opened, a
    /// migration fails, or Redis cannot be reached. Messages show URLs redacted.
    pub async fn open(config: &StorageConfig) -> anyhow::Result<Self> {
        let sql = open_database(config).await?;
        sql.migrate().await?;
        let redis = match &config.session_store {
            SessionStoreConfig::Database => None,
            SessionStoreConfig::Redis(r) => Some(open_redis(r).await?),
        };
        Ok(Self { sql, redis })
    }

    /// Open the database and bring its schema up to date, and nothing else (`countersign
    /// migrate`: Redis has no schema).
    ///
    /// # Errors
    /// As [`Self::open`], Redis aside.
    pub async fn migrate_only(config: &StorageConfig) -> anyhow::Result<Self> {
        let sql = open_database(config).await?;
        sql.migrate().await?;
        Ok(Self { sql, redis: None })
    }

    /// The database, redacted, for logs.
    pub fn describe(&self) -> &str {
        self.sql.url()
    }

    /// The session store, redacted, for logs: `database` or the Redis URL and key prefix.
    pub fn describe_sessions(&self) -> String {
        match &self.redis {
            None => "database".to_owned(),
            Some(r) => format!("{} (key prefix {:?})", r.url(), r.key_prefix()),
        }
    }

    /// The user store.
    pub fn users(&self) -> Arc<dyn UserStore> {
        Arc::new(self.sql.clone())
    }

    /// The session store: Redis when configured, else the database.
    pub fn sessions(&self) -> Arc<dyn EphemeralStore> {
        match &self.redis {
            Some(r) => Arc::new(r.clone()),
            None => Arc::new(self.sql.clone()),
        }
    }

    /// Sweep expired records every [`SWEEP_EVERY`] in the background: the database always
    /// (rows left from before a move to Redis go too), and Redis when it is the session
    /// store. Abort the handles to stop.
    pub fn spawn_sweepers(&self, clock: Arc<dyn Clock>) -> Vec<JoinHandle<()>> {
        let mut sweepers = vec![tokio::spawn(continuously_delete_expired(
            self.sql.clone(),
            SWEEP_EVERY,
            Arc::clone(&clock),
        ))];
        if let Some(redis) = &self.redis {
            sweepers.push(tokio::spawn(continuously_delete_expired(
                redis.clone(),
                SWEEP_EVERY,
                clock,
            )));
        }
        sweepers
    }

    /// Listen for the session store's invalidations in the background and deliver them to
    /// `receiver` (the engine), when the session store has a channel: Redis pub/sub, or
    /// PostgreSQL `LISTEN` when the sessions are in PostgreSQL. Until the listener is
    /// subscribed, and whenever it is not, the engine reads the store for every request.
    /// `None` on SQLite: one process, nothing to hear. Abort the handle to stop.
    pub fn spawn_invalidation_listener(
        &self,
        receiver: Arc<dyn Receiver>,
    ) -> Option<JoinHandle<()>> {
        match (&self.redis, &self.sql) {
            (Some(redis), _) => Some(tokio::spawn(countersign_redis::listen(
                redis.clone(),
                receiver,
            ))),
            (None, SqlStore::Postgres(pg)) => {
                Some(tokio::spawn(countersign_sql::listen(pg.clone(), receiver)))
            }
            (None, _) => None,
        }
    }

    /// Close the database connections, waiting for those in use. (The Redis connection
    /// closes when the last clone of the store drops.)
    pub async fn close(&self) {
        self.sql.close().await;
    }
}

async fn open_database(config: &StorageConfig) -> anyhow::Result<SqlStore> {
    let mut opts = PoolOptions::default();
    opts.max_connections = config.db_max_connections;
    Ok(match &config.database_url {
        Some(url) => connect(url.expose(), &opts).await?,
        None => SqlStore::open_sqlite_in(&config.data_dir, &opts)
            .await
            .with_context(|| {
                format!(
                    "cannot open the database in the data directory {}",
                    config.data_dir.display()
                )
            })?,
    })
}

async fn open_redis(config: &RedisConfig) -> anyhow::Result<RedisStore> {
    let mut opts = RedisOptions::default();
    opts.key_prefix.clone_from(&config.key_prefix);
    opts.connect_timeout = config.timeout;
    opts.command_timeout = config.timeout;
    opts.ca_file.clone_from(&config.ca_file);
    // The error names the URL redacted.
    Ok(countersign_redis::connect(config.url.expose(), &opts).await?)
}
