//! How the connection pools are sized and how long they wait.

use std::time::Duration;

/// Connection pool settings. The defaults suit one server on a small machine.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PoolOptions {
    /// PostgreSQL: the pool size (default 10). SQLite: how many connections read in
    /// parallel (default four per core, 4 to 16); writes always go through one
    /// connection, since SQLite runs one writer at a time anyway.
    pub max_connections: Option<u32>,
    /// Connections kept open while idle (default 0; the SQLite writer always stays open).
    pub min_connections: u32,
    /// How long an operation waits for a free connection before it fails as
    /// [`countersign::store::StoreError::Unavailable`] (default 5 s).
    pub acquire_timeout: Duration,
    /// SQLite: how long a write waits for another process's lock on the file, e.g. the
    /// admin CLI's, before it fails as unavailable (default 5 s).
    pub busy_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: None,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
        }
    }
}
