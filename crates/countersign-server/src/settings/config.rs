//! What the settings resolve to: [`ServeConfig`] for `serve`, [`StorageConfig`] for every
//! command that opens the stores, with the defaults and limits of each setting.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use countersign::auth::AuthConfig;
use countersign::flask::bridge::FlaskBridge;
use countersign::password::{HashParams, OWASP_PARAMS};

use super::forward::ForwardSettings;
use crate::cli::SigningArgs;

/// The settings file looked for in the working directory.
pub const CONFIG_FILE: &str = "countersign.toml";

/// The default listening address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "data";

/// The default number of password hashes that may wait for a worker.
pub const DEFAULT_HASH_QUEUE: usize = 64;

/// The largest hashing pool or queue accepted (each running hash holds 19 MiB).
pub const MAX_HASH_POOL: usize = 4096;

/// The largest `--registration-limit`.
pub const MAX_REGISTRATION_LIMIT: u64 = 1_000_000;

/// The largest `--login-limit` and `--login-address-limit`.
pub const MAX_LOGIN_LIMIT: u64 = 1_000_000;

/// The largest `--db-max-connections`.
pub const MAX_DB_CONNECTIONS: u32 = 1000;

/// The default prefix of Redis keys.
pub const DEFAULT_REDIS_PREFIX: &str = "countersign:";

/// The default bound on one Redis connection attempt and on one command.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether `/register` is open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Registration {
    /// Anyone may create an account.
    Open,
    /// Only `countersign user add` creates accounts.
    #[default]
    Closed,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    #[default]
    Pretty,
}

/// A database URL. It may hold a password, so `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wrap a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL, for the driver only: never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseUrl([redacted])")
    }
}

/// Where accounts and sessions are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageConfig {
    /// The data directory (the SQLite database, the generated development key).
    pub data_dir: PathBuf,
    /// The database; `None` is SQLite in the data directory.
    pub database_url: Option<DatabaseUrl>,
    /// The database pool's size; `None` is the store's default (`countersign_sql::PoolOptions`).
    pub db_max_connections: Option<u32>,
    /// Where sessions, refresh families, the denylist and counters live.
    pub session_store: SessionStoreConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database_url: None,
            db_max_connections: None,
            session_store: SessionStoreConfig::Database,
        }
    }
}

/// Where sessions, refresh families, the denylist and counters live.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionStoreConfig {
    /// In the database (the default).
    #[default]
    Database,
    /// In Redis (users stay in the database).
    Redis(RedisConfig),
}

/// A Redis session store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://…` (may hold a password: `Debug` hides it).
    pub url: DatabaseUrl,
    /// Prefix of every key (`--redis-prefix`).
    pub key_prefix: String,
    /// Bound on one connection attempt and on one command (`--redis-timeout`).
    pub timeout: Duration,
    /// The CA certificates a `rediss://` server's certificate must chain to
    /// (`--redis-ca-file`); `None` is the public roots.
    pub ca_file: Option<PathBuf>,
}

impl RedisConfig {
    /// A store at `url`, with the default prefix and timeout.
    pub fn new(url: DatabaseUrl) -> Self {
        Self {
            url,
            key_prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            timeout: DEFAULT_REDIS_TIMEOUT,
            ca_file: None,
        }
    }
}

/// Everything `serve` runs with, checked.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// Where accounts and sessions are stored.
    pub storage: StorageConfig,
    /// Production mode: an explicit strong key is required, insecure cookies refused.
    pub production: bool,
    /// Cookies without `Secure` and the `__Host-` prefix (plain-HTTP development).
    pub insecure_cookies: bool,
    /// Whether `/register` is open.
    pub registration: Registration,
    /// How logs are written.
    pub log_format: LogFormat,
    /// The engine's configuration: token and session lifetimes (`--access-ttl`,
    /// `--session-idle`, `--session-absolute`), login and registration throttling
    /// (`--login-*`, `--registration-limit`), the hot-path cache (`--cache-ttl`).
    pub auth: AuthConfig,
    /// Hashes computed at once.
    pub hash_workers: usize,
    /// Hashes waiting for a worker before logins get 503.
    pub hash_queue: usize,
    /// Origins besides this server's own allowed to make cookie-authenticated changes.
    pub allowed_origins: Vec<String>,
    /// The origins of `--public-url`: where browsers reach this server.
    pub public_urls: Vec<String>,
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: countersign_axum::TrustedProxies,
    /// `--secret-key-file`, if given.
    pub secret_key_file: Option<PathBuf>,
    /// `--signing-key-file`, `--signing-key-dir`, `--hs256-tokens`, if given (over their
    /// environment variables, read with the keys: [`crate::signing`]).
    pub signing: SigningArgs,
    /// Forward authentication and single sign-on: access rules, return domains, cookie
    /// domain.
    pub forward: ForwardSettings,
    /// argon2id cost. Always [`OWASP_PARAMS`] from the command line; tests lower it.
    pub hash_params: HashParams,
    /// Largest request body accepted, bytes (413 past it).
    pub max_body_bytes: usize,
    /// The Flask bridge (`--flask-bridge`, `[flask]`), when on.
    pub flask: Option<FlaskBridge>,
    /// Roles whose users must sign in with a second factor (`--require-mfa`): until they
    /// do, they reach only the enrolment pages.
    pub require_mfa: Vec<countersign::user::Role>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            // The constant is a valid address literal.
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            storage: StorageConfig::default(),
            production: false,
            insecure_cookies: false,
            registration: Registration::Closed,
            log_format: LogFormat::Pretty,
            auth: AuthConfig::default(),
            hash_workers: default_workers(),
            hash_queue: DEFAULT_HASH_QUEUE,
            allowed_origins: Vec::new(),
            public_urls: Vec::new(),
            trusted_proxies: countersign_axum::TrustedProxies::none(),
            secret_key_file: None,
            signing: SigningArgs::default(),
            forward: ForwardSettings::default(),
            hash_params: OWASP_PARAMS,
            max_body_bytes: 64 * 1024,
            flask: None,
            require_mfa: Vec::new(),
        }
    }
}

/// One hashing worker per core.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}
