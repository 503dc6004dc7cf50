//! How to connect and where to put the keys.

use std::time::Duration;

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
