//! Opening the stores a [`StorageConfig`] names: SQLite in the data directory by default,
//! or the database `--database-url` names (SQLite or PostgreSQL), migrated to the current
//! schema. The same store holds the users and (for now, the only session store) the
//! sessions, refresh families, denylist and throttling counters.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use countersign::clock::Clock;
use countersign::store::{EphemeralStore, UserStore};
use countersign_sql::{PoolOptions, SqlStore, connect};
use tokio::task::JoinHandle;

use crate::settings::StorageConfig;

/// How often expired sessions, families and counters are swept.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The open stores.
#[derive(Clone, Debug)]
pub struct Stores {
    sql: SqlStore,
}

impl Stores {
    /// Open the database `config` names and bring its schema up to date.
    ///
    /// # Errors
    /// When the data directory cannot be created, the database cannot be opened, or a
    /// migration fails. Messages show the database URL redacted.
    pub async fn open(config: &StorageConfig) -> anyhow::Result<Self> {
        let opts = PoolOptions::default();
        let sql = match &config.database_url {
            Some(url) => connect(url.expose(), &opts).await?,
            None => SqlStore::open_sqlite_in(&config.data_dir, &opts)
                .await
                .with_context(|| {
                    format!(
                        "cannot open the database in the data directory {}",
                        config.data_dir.display()
                    )
                })?,
        };
        sql.migrate().await?;
        Ok(Self { sql })
    }

    /// The database, redacted, for logs.
    pub fn describe(&self) -> &str {
        self.sql.url()
    }

    /// The user store.
    pub fn users(&self) -> Arc<dyn UserStore> {
        Arc::new(self.sql.clone())
    }

    /// The session store.
    pub fn sessions(&self) -> Arc<dyn EphemeralStore> {
        Arc::new(self.sql.clone())
    }

    /// Sweep expired rows every [`SWEEP_EVERY`] in the background.
    pub fn spawn_sweeper(&self, clock: Arc<dyn Clock>) -> JoinHandle<()> {
        countersign_sql::spawn_sweeper(self.sql.clone(), SWEEP_EVERY, clock)
    }

    /// Close the connections, waiting for those in use.
    pub async fn close(&self) {
        self.sql.close().await;
    }
}
