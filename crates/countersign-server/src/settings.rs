//! Settings for `serve` and the storage subcommands, layered as `docs/settings.md` says:
//! flags, then `COUNTERSIGN_*` environment variables, then `countersign.toml` (in the
//! working directory, or the file `--config` / `COUNTERSIGN_CONFIG` names), then defaults.
//!
//! Raw values are parsed and checked once, here, into [`ServeConfig`] and
//! [`StorageConfig`], which are passed down; nothing later reads the environment or the
//! file. Every error names where the bad value came from (`--addr`, `COUNTERSIGN_ADDR`,
//! `countersign.toml: addr`) and never quotes a database URL's password.
//!
//! The file holds the same settings as the flags, in snake case:
//!
//! ```toml
//! addr = "0.0.0.0:8080"
//! data_dir = "/var/lib/countersign"   # relative paths are relative to this file
//! registration = "open"
//! session_idle = "30m"                # or a number of seconds
//! allowed_origins = ["https://app.example"]
//! public_url = ["https://auth.example"]
//! trusted_proxies = ["127.0.0.1/32"]
//! ```
//!
//! Keys are never read from the file: they come from `SECRET_KEY`, `SECRET_KEY_FILE` and
//! `SECRET_KEY_FALLBACKS` ([`crate::config`]).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use countersign::auth::{AuthConfig, ThrottlePolicy};
use countersign::jwt::{Issuance, Validation};
use countersign::password::{HashParams, OWASP_PARAMS};
use countersign::refresh::RefreshPolicy;
use countersign::session::SessionPolicy;
use serde::Deserialize;

use crate::cli::{
    LogFormat, Registration, Seconds, ServeArgs, StorageArgs, parse_seconds, parse_timeout,
};
use crate::config::Env;

mod forward;
mod login;
pub use forward::{ForwardSettings, rules_in};
pub use login::MAX_LOGIN_LIMIT;

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

/// Why the settings cannot be used. Each names where the value came from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The settings file could not be read.
    #[error("cannot read the settings file {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The settings file is not valid TOML or has an unknown or mistyped setting.
    #[error("the settings file {} is not valid: {source}", path.display())]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The parser's message (it quotes the offending line).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// One value is not acceptable.
    #[error("{origin}: {message}")]
    Invalid {
        /// Where it came from.
        origin: Origin,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A setting this version does not support yet.
    #[error("{origin}: {message}")]
    Unsupported {
        /// Where it came from.
        origin: Origin,
        /// What is not supported and what to do instead.
        message: String,
    },
}

/// Where a setting came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A key of the settings file.
    File(PathBuf, &'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(name) => write!(f, "--{name}"),
            Self::Env(name) => f.write_str(name),
            Self::File(path, key) => write!(f, "{}: {key}", path.display()),
        }
    }
}

/// A duration in the file: seconds, or text such as `15m`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum FileDuration {
    Secs(i64),
    Text(String),
}

/// A timeout in the file: seconds, or text such as `250ms`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum FileTimeout {
    Secs(u64),
    Text(String),
}

/// The settings file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileValues {
    addr: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    session_store: Option<String>,
    env: Option<String>,
    production: Option<bool>,
    insecure_cookies: Option<bool>,
    registration: Option<Registration>,
    registration_limit: Option<u64>,
    login_limit: Option<u64>,
    login_address_limit: Option<u64>,
    login_window: Option<FileDuration>,
    login_max_window: Option<FileDuration>,
    log_format: Option<LogFormat>,
    access_ttl: Option<FileDuration>,
    session_idle: Option<FileDuration>,
    session_absolute: Option<FileDuration>,
    cache_ttl: Option<FileDuration>,
    db_max_connections: Option<u32>,
    redis_prefix: Option<String>,
    redis_timeout: Option<FileTimeout>,
    redis_ca_file: Option<PathBuf>,
    hash_workers: Option<usize>,
    hash_queue: Option<usize>,
    allowed_origins: Option<Vec<String>>,
    public_url: Option<Vec<String>>,
    trusted_proxies: Option<Vec<String>>,
    flask: Option<crate::flask_settings::FlaskTable>,
    default_policy: Option<String>,
    access: Option<Vec<crate::access::RawRule>>,
    forward_auth_domains: Option<Vec<String>>,
    cookie_domain: Option<String>,
}

/// The settings file, if there is one.
#[derive(Debug, Default)]
pub struct SettingsFile {
    path: Option<PathBuf>,
    values: FileValues,
}

impl SettingsFile {
    /// Read `flag` (`--config`), else `COUNTERSIGN_CONFIG`, else `countersign.toml` in the
    /// working directory when it exists. A file named explicitly must exist.
    ///
    /// # Errors
    /// [`SettingsError::ReadFile`], [`SettingsError::ParseFile`].
    pub fn load(flag: Option<&Path>, env: &dyn Env) -> Result<Self, SettingsError> {
        let named = flag
            .map(Path::to_path_buf)
            .or_else(|| env.var_os("COUNTERSIGN_CONFIG").map(PathBuf::from))
            .filter(|p| !p.as_os_str().is_empty());
        let path = match named {
            Some(path) => path,
            None => {
                let default = PathBuf::from(CONFIG_FILE);
                if !default.exists() {
                    return Ok(Self::default());
                }
                default
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| SettingsError::ReadFile {
            path: path.clone(),
            source,
        })?;
        Self::parse(&path, &text)
    }

    /// Parse `text` as if read from `path`.
    ///
    /// # Errors
    /// [`SettingsError::ParseFile`].
    pub fn parse(path: &Path, text: &str) -> Result<Self, SettingsError> {
        let values = toml::from_str(text).map_err(|source| SettingsError::ParseFile {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        Ok(Self {
            path: Some(path.to_owned()),
            values,
        })
    }

    fn origin(&self, key: &'static str) -> Origin {
        Origin::File(self.path.clone().unwrap_or_default(), key)
    }

    /// A path in the file, relative to the file's directory.
    fn path_value(&self, p: &Path) -> PathBuf {
        match self.path.as_deref().and_then(Path::parent) {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p.to_owned(),
        }
    }
}

/// Resolves one setting through the layers.
struct Layers<'a> {
    env: &'a dyn Env,
    file: &'a SettingsFile,
}

impl Layers<'_> {
    /// The environment variable's text, if set and not empty.
    fn env_text(&self, var: &'static str) -> Result<Option<String>, SettingsError> {
        match self.env.var_os(var) {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => v
                .into_string()
                .map(Some)
                .map_err(|_| SettingsError::Invalid {
                    origin: Origin::Env(var),
                    message: "not valid UTF-8".to_owned(),
                }),
        }
    }

    /// Flag, else environment (parsed with `parse`), else file (converted with `from_file`).
    fn pick<T, F>(
        &self,
        flag: (Option<T>, &'static str),
        var: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
        file: (Option<&F>, &'static str),
        from_file: impl Fn(&F) -> Result<T, String>,
    ) -> Result<Option<T>, SettingsError> {
        if let Some(v) = flag.0 {
            return Ok(Some(v));
        }
        if let Some(text) = self.env_text(var)? {
            return parse(&text)
                .map(Some)
                .map_err(|message| SettingsError::Invalid {
                    origin: Origin::Env(var),
                    message,
                });
        }
        match file.0 {
            Some(v) => from_file(v)
                .map(Some)
                .map_err(|message| SettingsError::Invalid {
                    origin: self.file.origin(file.1),
                    message,
                }),
            None => Ok(None),
        }
    }

    /// Where the value [`Self::pick`] returned came from, for later checks.
    fn origin_of(
        &self,
        flag_set: bool,
        flag: &'static str,
        var: &'static str,
        key: &'static str,
    ) -> Origin {
        if flag_set {
            Origin::Flag(flag)
        } else if self.env.var_os(var).is_some_and(|v| !v.is_empty()) {
            Origin::Env(var)
        } else {
            self.file.origin(key)
        }
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("expected true or false, got {s:?}")),
    }
}

fn parse_enum<T: clap::ValueEnum>(s: &str) -> Result<T, String> {
    T::from_str(s, true).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
            .collect();
        format!("expected one of {}, got {s:?}", names.join(", "))
    })
}

fn parse_count(s: &str) -> Result<usize, String> {
    s.parse()
        .map_err(|_| format!("expected a whole number, got {s:?}"))
}

fn file_duration(d: &FileDuration) -> Result<Seconds, String> {
    match d {
        FileDuration::Secs(n) if *n >= 0 => Ok(Seconds(*n)),
        FileDuration::Secs(n) => Err(format!("a duration cannot be negative, got {n}")),
        FileDuration::Text(t) => parse_seconds(t),
    }
}

fn file_timeout(t: &FileTimeout) -> Result<Duration, String> {
    match t {
        FileTimeout::Secs(n) => parse_timeout(&n.to_string()),
        FileTimeout::Text(t) => parse_timeout(t),
    }
}

/// The largest `--registration-limit`.
pub const MAX_REGISTRATION_LIMIT: u64 = 1_000_000;

fn registration_limit(n: u64) -> Result<u64, String> {
    if (1..=MAX_REGISTRATION_LIMIT).contains(&n) {
        Ok(n)
    } else {
        Err(format!("expected 1 to {MAX_REGISTRATION_LIMIT}, got {n}"))
    }
}

/// The largest `--db-max-connections`.
pub const MAX_DB_CONNECTIONS: u32 = 1000;

fn db_connections(n: u32) -> Result<u32, String> {
    if (1..=MAX_DB_CONNECTIONS).contains(&n) {
        Ok(n)
    } else {
        Err(format!("expected 1 to {MAX_DB_CONNECTIONS}, got {n}"))
    }
}

fn positive(d: Seconds) -> Result<Seconds, String> {
    if d.0 > 0 {
        Ok(d)
    } else {
        Err("must be more than zero".to_owned())
    }
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

impl StorageConfig {
    /// Resolve `--data-dir`, `--database-url`, `--session-store` and the pool settings
    /// through the layers.
    ///
    /// # Errors
    /// A settings file that cannot be read or parsed, or a bad value.
    pub fn resolve(args: &StorageArgs, env: &dyn Env) -> Result<Self, SettingsError> {
        let file = SettingsFile::load(args.config.as_deref(), env)?;
        Self::from_layers(args, &Layers { env, file: &file })
    }

    fn from_layers(args: &StorageArgs, l: &Layers<'_>) -> Result<Self, SettingsError> {
        let data_dir = l
            .pick(
                (args.data_dir.clone(), "data-dir"),
                "COUNTERSIGN_DATA_DIR",
                |s| Ok(PathBuf::from(s)),
                (l.file.values.data_dir.as_ref(), "data_dir"),
                |p| Ok(l.file.path_value(p)),
            )?
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = l
            .pick(
                (args.database_url.clone(), "database-url"),
                "COUNTERSIGN_DATABASE_URL",
                |s| Ok(s.to_owned()),
                (l.file.values.database_url.as_ref(), "database_url"),
                |s| Ok(s.clone()),
            )?
            .filter(|s| !s.is_empty())
            .map(DatabaseUrl);
        let v = &l.file.values;
        let db_max_connections = match args.db_max_connections {
            Some(n) => Some(db_connections(n).map_err(|message| SettingsError::Invalid {
                origin: Origin::Flag("db-max-connections"),
                message,
            })?),
            None => l.pick(
                (None, "db-max-connections"),
                "COUNTERSIGN_DB_MAX_CONNECTIONS",
                |s| {
                    s.parse::<u32>()
                        .map_err(|_| format!("expected a whole number, got {s:?}"))
                        .and_then(db_connections)
                },
                (v.db_max_connections.as_ref(), "db_max_connections"),
                |n| db_connections(*n),
            )?,
        };
        let session_store = match l.pick(
            (args.session_store.clone(), "session-store"),
            "COUNTERSIGN_SESSION_STORE",
            |s| Ok(s.to_owned()),
            (v.session_store.as_ref(), "session_store"),
            |s| Ok(s.clone()),
        )? {
            None => SessionStoreConfig::Database,
            Some(url) => {
                let origin = l.origin_of(
                    args.session_store.is_some(),
                    "session-store",
                    "COUNTERSIGN_SESSION_STORE",
                    "session_store",
                );
                match session_store_kind(&url, origin)? {
                    StoreKind::Database => SessionStoreConfig::Database,
                    StoreKind::Redis => {
                        let key_prefix = l
                            .pick(
                                (args.redis_prefix.clone(), "redis-prefix"),
                                "COUNTERSIGN_REDIS_PREFIX",
                                |s| Ok(s.to_owned()),
                                (v.redis_prefix.as_ref(), "redis_prefix"),
                                |s| Ok(s.clone()),
                            )?
                            .unwrap_or_else(|| DEFAULT_REDIS_PREFIX.to_owned());
                        let timeout = l
                            .pick(
                                (args.redis_timeout, "redis-timeout"),
                                "COUNTERSIGN_REDIS_TIMEOUT",
                                parse_timeout,
                                (v.redis_timeout.as_ref(), "redis_timeout"),
                                file_timeout,
                            )?
                            .unwrap_or(DEFAULT_REDIS_TIMEOUT);
                        let ca_file = l.pick(
                            (args.redis_ca_file.clone(), "redis-ca-file"),
                            "COUNTERSIGN_REDIS_CA_FILE",
                            |s| Ok(PathBuf::from(s)),
                            (v.redis_ca_file.as_ref(), "redis_ca_file"),
                            |p| Ok(l.file.path_value(p)),
                        )?;
                        SessionStoreConfig::Redis(RedisConfig {
                            url: DatabaseUrl(url),
                            key_prefix,
                            timeout,
                            ca_file,
                        })
                    }
                }
            }
        };
        Ok(Self {
            data_dir,
            database_url,
            db_max_connections,
            session_store,
        })
    }
}

/// The default prefix of Redis keys.
pub const DEFAULT_REDIS_PREFIX: &str = "countersign:";

/// The default bound on one Redis connection attempt and on one command.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_secs(1);

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
    /// Access-token lifetime, seconds.
    pub access_ttl_secs: i64,
    /// Session idle timeout, seconds.
    pub session_idle_secs: i64,
    /// Session absolute lifetime, seconds.
    pub session_absolute_secs: i64,
    /// Hashes computed at once.
    pub hash_workers: usize,
    /// Hashes waiting for a worker before logins get 503.
    pub hash_queue: usize,
    /// Hot-path cache lifetime (see `countersign::auth`).
    pub cache_ttl: Duration,
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
    pub signing: crate::cli::SigningArgs,
    /// argon2id cost. Always [`OWASP_PARAMS`] from the command line; tests lower it.
    pub hash_params: HashParams,
    /// Failed-login and registration throttling (`--registration-limit` sets
    /// `registrations_per_address`; the rest are the engine's defaults).
    pub throttle: ThrottlePolicy,
    /// Largest request body accepted, bytes (413 past it).
    pub max_body_bytes: usize,
    /// The Flask bridge (`--flask-bridge`, `[flask]`), when on.
    pub flask: Option<countersign::flask::bridge::FlaskBridge>,
    /// Forward authentication and single sign-on: access rules, return domains, cookie
    /// domain.
    pub forward: ForwardSettings,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let sessions = SessionPolicy::default();
        Self {
            // The constant is a valid address literal.
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            storage: StorageConfig::default(),
            production: false,
            insecure_cookies: false,
            registration: Registration::Closed,
            log_format: LogFormat::Pretty,
            access_ttl_secs: Issuance::default().ttl_secs,
            session_idle_secs: sessions.idle_secs,
            session_absolute_secs: sessions.absolute_secs,
            hash_workers: default_workers(),
            hash_queue: DEFAULT_HASH_QUEUE,
            cache_ttl: AuthConfig::default().cache_ttl,
            allowed_origins: Vec::new(),
            public_urls: Vec::new(),
            trusted_proxies: countersign_axum::TrustedProxies::none(),
            secret_key_file: None,
            signing: crate::cli::SigningArgs::default(),
            hash_params: OWASP_PARAMS,
            throttle: ThrottlePolicy::default(),
            max_body_bytes: 64 * 1024,
            flask: None,
            forward: ForwardSettings::default(),
        }
    }
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

impl ServeConfig {
    /// Resolve `serve`'s flags through the layers and check them.
    ///
    /// # Errors
    /// A settings file that cannot be read or parsed, a bad value, or a setting not
    /// supported yet (TLS to Redis).
    pub fn resolve(args: &ServeArgs, env: &dyn Env) -> Result<Self, SettingsError> {
        let file = SettingsFile::load(args.storage.config.as_deref(), env)?;
        Self::resolve_with_file(args, env, &file)
    }

    /// As [`Self::resolve`], with the settings file already read.
    ///
    /// # Errors
    /// As [`Self::resolve`].
    pub fn resolve_with_file(
        args: &ServeArgs,
        env: &dyn Env,
        file: &SettingsFile,
    ) -> Result<Self, SettingsError> {
        let l = Layers { env, file };
        let v = &file.values;
        let d = Self::default();

        let addr = l
            .pick(
                (args.addr.clone(), "addr"),
                "COUNTERSIGN_ADDR",
                |s| Ok(s.to_owned()),
                (v.addr.as_ref(), "addr"),
                |s| Ok(s.clone()),
            )?
            .map(|text| {
                text.parse::<SocketAddr>()
                    .map_err(|_| SettingsError::Invalid {
                        origin: l.origin_of(
                            args.addr.is_some(),
                            "addr",
                            "COUNTERSIGN_ADDR",
                            "addr",
                        ),
                        message: format!("expected HOST:PORT such as 127.0.0.1:8080, got {text:?}"),
                    })
            })
            .transpose()?
            .unwrap_or(d.addr);

        let storage = StorageConfig::from_layers(&args.storage, &l)?;

        let production_env = l
            .env_text("COUNTERSIGN_ENV")?
            .map(|s| match s.to_ascii_lowercase().as_str() {
                "production" | "prod" => Ok(true),
                "development" | "dev" => Ok(false),
                _ => Err(SettingsError::Invalid {
                    origin: Origin::Env("COUNTERSIGN_ENV"),
                    message: format!("expected production or development, got {s:?}"),
                }),
            })
            .transpose()?;
        let production_file = match (&v.env, v.production) {
            (Some(e), _) => Some(match e.to_ascii_lowercase().as_str() {
                "production" | "prod" => true,
                "development" | "dev" => false,
                _ => {
                    return Err(SettingsError::Invalid {
                        origin: file.origin("env"),
                        message: format!("expected production or development, got {e:?}"),
                    });
                }
            }),
            (None, p) => p,
        };
        let production =
            args.production || production_env.or(production_file).unwrap_or(d.production);

        let insecure_cookies = args.insecure_cookies
            || l.pick(
                (None, "insecure-cookies"),
                "COUNTERSIGN_INSECURE_COOKIES",
                parse_bool,
                (v.insecure_cookies.as_ref(), "insecure_cookies"),
                |b| Ok(*b),
            )?
            .unwrap_or(d.insecure_cookies);
        if production && insecure_cookies {
            return Err(SettingsError::Invalid {
                origin: if args.insecure_cookies {
                    Origin::Flag("insecure-cookies")
                } else {
                    l.origin_of(
                        false,
                        "insecure-cookies",
                        "COUNTERSIGN_INSECURE_COOKIES",
                        "insecure_cookies",
                    )
                },
                message: "insecure cookies are for plain-HTTP development and are refused in \
                          production (serve over HTTPS, or behind a proxy that does)"
                    .to_owned(),
            });
        }

        let registration = l
            .pick(
                (args.registration, "registration"),
                "COUNTERSIGN_REGISTRATION",
                parse_enum::<Registration>,
                (v.registration.as_ref(), "registration"),
                |r| Ok(*r),
            )?
            .unwrap_or(d.registration);
        let registrations_per_address = match args.registration_limit {
            Some(n) => registration_limit(n).map_err(|message| SettingsError::Invalid {
                origin: Origin::Flag("registration-limit"),
                message,
            })?,
            None => l
                .pick(
                    (None, "registration-limit"),
                    "COUNTERSIGN_REGISTRATION_LIMIT",
                    |s| {
                        s.parse::<u64>()
                            .map_err(|_| format!("expected a whole number, got {s:?}"))
                            .and_then(registration_limit)
                    },
                    (v.registration_limit.as_ref(), "registration_limit"),
                    |n| registration_limit(*n),
                )?
                .unwrap_or(d.throttle.registrations_per_address),
        };
        let log_format = l
            .pick(
                (args.log_format, "log-format"),
                "COUNTERSIGN_LOG_FORMAT",
                parse_enum::<LogFormat>,
                (v.log_format.as_ref(), "log_format"),
                |f| Ok(*f),
            )?
            .unwrap_or(d.log_format);

        let ttl =
            |flag: Option<Seconds>, name, var, key, file: Option<&FileDuration>, default: i64| {
                l.pick(
                    (flag, name),
                    var,
                    |s| parse_seconds(s).and_then(positive),
                    (file, key),
                    |f| file_duration(f).and_then(positive),
                )
                .map(|o| o.map_or(default, |s| s.0))
            };
        let access_ttl_secs = ttl(
            args.access_ttl,
            "access-ttl",
            "COUNTERSIGN_ACCESS_TTL",
            "access_ttl",
            v.access_ttl.as_ref(),
            d.access_ttl_secs,
        )?;
        let session_idle_secs = ttl(
            args.session_idle,
            "session-idle",
            "COUNTERSIGN_SESSION_IDLE",
            "session_idle",
            v.session_idle.as_ref(),
            d.session_idle_secs,
        )?;
        let session_absolute_secs = ttl(
            args.session_absolute,
            "session-absolute",
            "COUNTERSIGN_SESSION_ABSOLUTE",
            "session_absolute",
            v.session_absolute.as_ref(),
            d.session_absolute_secs,
        )?;
        let cache_ttl = l
            .pick(
                (args.cache_ttl, "cache-ttl"),
                "COUNTERSIGN_CACHE_TTL",
                parse_seconds,
                (v.cache_ttl.as_ref(), "cache_ttl"),
                file_duration,
            )?
            .map_or(d.cache_ttl, |s| Duration::from_secs(s.0.unsigned_abs()));

        let count = |flag: Option<usize>, name, var, key, file: Option<&usize>, min: usize| {
            let check = move |n: usize| {
                if n < min || n > MAX_HASH_POOL {
                    Err(format!("expected {min} to {MAX_HASH_POOL}, got {n}"))
                } else {
                    Ok(n)
                }
            };
            if let Some(n) = flag {
                return check(n)
                    .map(Some)
                    .map_err(|message| SettingsError::Invalid {
                        origin: Origin::Flag(name),
                        message,
                    });
            }
            l.pick(
                (None, name),
                var,
                |s| parse_count(s).and_then(check),
                (file, key),
                |n| check(*n),
            )
        };
        let hash_workers = count(
            args.hash_workers,
            "hash-workers",
            "COUNTERSIGN_HASH_WORKERS",
            "hash_workers",
            v.hash_workers.as_ref(),
            1,
        )?
        .unwrap_or(d.hash_workers);
        let hash_queue = count(
            args.hash_queue,
            "hash-queue",
            "COUNTERSIGN_HASH_QUEUE",
            "hash_queue",
            v.hash_queue.as_ref(),
            0,
        )?
        .unwrap_or(d.hash_queue);

        let origins_flag = (!args.allowed_origins.is_empty()).then(|| args.allowed_origins.clone());
        let allowed_origins = l
            .pick(
                (origins_flag, "allowed-origin"),
                "COUNTERSIGN_ALLOWED_ORIGINS",
                |s| {
                    Ok(s.split(',')
                        .map(str::trim)
                        .filter(|o| !o.is_empty())
                        .map(str::to_owned)
                        .collect())
                },
                (v.allowed_origins.as_ref(), "allowed_origins"),
                |o| Ok(o.clone()),
            )?
            .unwrap_or_default();
        for origin in &allowed_origins {
            if !is_origin(origin) {
                return Err(SettingsError::Invalid {
                    origin: l.origin_of(
                        !args.allowed_origins.is_empty(),
                        "allowed-origin",
                        "COUNTERSIGN_ALLOWED_ORIGINS",
                        "allowed_origins",
                    ),
                    message: format!(
                        "expected an origin such as https://app.example (scheme, host, optional \
                         port; no path), got {origin:?}"
                    ),
                });
            }
        }

        let urls_flag = (!args.public_urls.is_empty()).then(|| args.public_urls.clone());
        let public_urls: Vec<String> = l
            .pick(
                (urls_flag, "public-url"),
                "COUNTERSIGN_PUBLIC_URL",
                |s| Ok(split_list(s)),
                (v.public_url.as_ref(), "public_url"),
                |o| Ok(o.clone()),
            )?
            .unwrap_or_default();
        let public_urls = public_urls
            .iter()
            .map(|url| {
                public_origin(url).ok_or_else(|| SettingsError::Invalid {
                    origin: l.origin_of(
                        !args.public_urls.is_empty(),
                        "public-url",
                        "COUNTERSIGN_PUBLIC_URL",
                        "public_url",
                    ),
                    message: format!(
                        "expected the URL browsers reach this server at, such as \
                         https://auth.example or http://127.0.0.1:8080 (scheme, host, optional \
                         port, optional path), got {url:?}"
                    ),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let proxies_flag = (!args.trusted_proxies.is_empty()).then(|| args.trusted_proxies.clone());
        let proxies: Vec<String> = l
            .pick(
                (proxies_flag, "trusted-proxies"),
                "COUNTERSIGN_TRUSTED_PROXIES",
                |s| Ok(split_list(s)),
                (v.trusted_proxies.as_ref(), "trusted_proxies"),
                |o| Ok(o.clone()),
            )?
            .unwrap_or_default();
        let trusted_proxies =
            countersign_axum::TrustedProxies::parse_all(&proxies).map_err(|e| {
                SettingsError::Invalid {
                    origin: l.origin_of(
                        !args.trusted_proxies.is_empty(),
                        "trusted-proxies",
                        "COUNTERSIGN_TRUSTED_PROXIES",
                        "trusted_proxies",
                    ),
                    message: e.to_string(),
                }
            })?;
        let forward = ForwardSettings::resolve(args, &l, &public_urls)?;

        Ok(Self {
            addr,
            storage,
            production,
            insecure_cookies,
            registration,
            log_format,
            access_ttl_secs,
            session_idle_secs,
            session_absolute_secs,
            hash_workers,
            hash_queue,
            cache_ttl,
            allowed_origins,
            public_urls,
            trusted_proxies,
            secret_key_file: args.keys.secret_key_file.clone(),
            forward,
            signing: args.keys.signing.clone(),
            flask: crate::flask_settings::resolve(
                args.flask_bridge,
                env,
                v.flask.as_ref(),
                |key| file.origin(key),
            )?,
            throttle: login::resolve(
                args,
                &l,
                ThrottlePolicy {
                    registrations_per_address,
                    ..d.throttle
                },
            )?,
            ..d
        })
    }

    /// The engine's configuration.
    pub fn auth_config(&self) -> AuthConfig {
        AuthConfig {
            validation: Validation::default(),
            issuance: Issuance {
                ttl_secs: self.access_ttl_secs,
                ..Issuance::default()
            },
            sessions: SessionPolicy {
                idle_secs: self.session_idle_secs,
                absolute_secs: self.session_absolute_secs,
                ..SessionPolicy::default()
            },
            refresh: RefreshPolicy::default(),
            throttle: self.throttle,
            cache_ttl: self.cache_ttl,
        }
    }
}

/// What `--session-store` names.
enum StoreKind {
    Database,
    Redis,
}

/// `--session-store`: `database`, or a Redis URL (`redis://`, `rediss://` for TLS,
/// `unix://`, `redis+unix://`). The messages never quote the URL (it may hold a
/// password).
fn session_store_kind(url: &str, origin: Origin) -> Result<StoreKind, SettingsError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("redis" | "rediss" | "unix" | "redis+unix") => Ok(StoreKind::Redis),
        _ if url.eq_ignore_ascii_case("database") => Ok(StoreKind::Database),
        _ => Err(SettingsError::Invalid {
            origin,
            message: "expected `database` (the default) or a redis:// URL".to_owned(),
        }),
    }
}

/// `scheme://host[:port]`, nothing after.
/// A comma-separated list, entries trimmed, empty ones dropped.
fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The origin of a public URL (`https://auth.example/base/` → `https://auth.example`),
/// lowercased; `None` for anything that is not an `http(s)` URL with a host.
fn public_origin(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next()?;
    let origin = format!("{scheme}://{}", authority.to_ascii_lowercase());
    is_origin(&origin).then_some(origin)
}

fn is_origin(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn serve_args(args: &[&str]) -> ServeArgs {
        let argv = ["countersign", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(a) => *a,
            _ => unreachable!(),
        }
    }

    fn env(vars: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
        vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }

    fn resolve(
        args: &[&str],
        vars: &[(&'static str, &str)],
        toml: &str,
    ) -> Result<ServeConfig, SettingsError> {
        let file = SettingsFile::parse(Path::new("/etc/cs/countersign.toml"), toml)?;
        ServeConfig::resolve_with_file(&serve_args(args), &env(vars), &file)
    }

    #[test]
    fn defaults() {
        let c = ServeConfig::resolve(&serve_args(&[]), &env(&[])).unwrap();
        assert_eq!(c.addr.to_string(), DEFAULT_ADDR);
        assert_eq!(c.storage.data_dir, PathBuf::from("data"));
        assert_eq!(c.storage.database_url, None);
        assert!(!c.production && !c.insecure_cookies);
        assert_eq!(c.registration, Registration::Closed);
        assert_eq!(c.access_ttl_secs, 900);
        assert_eq!(c.session_idle_secs, 1800);
        assert_eq!(c.session_absolute_secs, 43_200);
        assert_eq!(c.hash_queue, 64);
        assert_eq!(c.hash_params, OWASP_PARAMS);
        assert_eq!(c.cache_ttl, Duration::from_secs(1));
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let file = "addr = \"127.0.0.1:3\"\nregistration = \"open\"\nsession_idle = 60\n\
                    access_ttl = \"2m\"\nhash_queue = 5";
        let vars = [
            ("COUNTERSIGN_ADDR", "127.0.0.1:2"),
            ("COUNTERSIGN_ACCESS_TTL", "3m"),
        ];
        let c = resolve(&["--addr", "127.0.0.1:1"], &vars, file).unwrap();
        assert_eq!(c.addr.port(), 1);
        assert_eq!(c.access_ttl_secs, 180);
        assert_eq!(c.registration, Registration::Open);
        assert_eq!(c.session_idle_secs, 60);
        assert_eq!(c.hash_queue, 5);
        let c = resolve(&[], &vars, file).unwrap();
        assert_eq!(c.addr.port(), 2);
        let c = resolve(&["--access-ttl", "1h"], &[], file).unwrap();
        assert_eq!((c.addr.port(), c.access_ttl_secs), (3, 3600));
    }

    #[test]
    fn file_paths_are_relative_to_the_file() {
        let c = resolve(&[], &[], "data_dir = \"state\"").unwrap();
        assert_eq!(c.storage.data_dir, PathBuf::from("/etc/cs/state"));
        let c = resolve(
            &[],
            &[("COUNTERSIGN_DATA_DIR", "here")],
            "data_dir = \"state\"",
        )
        .unwrap();
        assert_eq!(c.storage.data_dir, PathBuf::from("here"));
    }

    #[test]
    fn errors_name_their_origin() {
        let e = resolve(&["--addr", "nope"], &[], "").unwrap_err();
        assert_eq!(e.to_string().split(':').next(), Some("--addr"), "{e}");
        let e = resolve(&[], &[("COUNTERSIGN_HASH_WORKERS", "0")], "").unwrap_err();
        assert!(
            e.to_string().starts_with("COUNTERSIGN_HASH_WORKERS: "),
            "{e}"
        );
        let e = resolve(&[], &[], "session_absolute = 0").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/etc/cs/countersign.toml: session_absolute"),
            "{e}"
        );
        let e = resolve(&[], &[("COUNTERSIGN_INSECURE_COOKIES", "maybe")], "").unwrap_err();
        assert!(e.to_string().contains("true or false"), "{e}");
        let e = resolve(&[], &[], "adr = \"x\"").unwrap_err();
        assert!(matches!(e, SettingsError::ParseFile { .. }), "{e}");
        assert!(e.to_string().contains("adr"), "{e}");
    }

    #[test]
    fn production_from_flag_env_or_file() {
        assert!(resolve(&["--production"], &[], "").unwrap().production);
        assert!(
            resolve(&[], &[("COUNTERSIGN_ENV", "production")], "")
                .unwrap()
                .production
        );
        assert!(
            resolve(&[], &[], "env = \"production\"")
                .unwrap()
                .production
        );
        assert!(
            !resolve(
                &[],
                &[("COUNTERSIGN_ENV", "development")],
                "env = \"production\""
            )
            .unwrap()
            .production
        );
        assert!(resolve(&[], &[("COUNTERSIGN_ENV", "staging")], "").is_err());
        let e = resolve(&["--production", "--insecure-cookies"], &[], "").unwrap_err();
        assert!(e.to_string().starts_with("--insecure-cookies: "), "{e}");
    }

    #[test]
    fn redis_session_store() {
        let c = resolve(
            &["--session-store", "redis://:hunter2@127.0.0.1:6379/0"],
            &[],
            "",
        )
        .unwrap();
        let SessionStoreConfig::Redis(r) = &c.storage.session_store else {
            panic!("{c:?}")
        };
        assert_eq!(r.url.expose(), "redis://:hunter2@127.0.0.1:6379/0");
        assert_eq!(r.key_prefix, DEFAULT_REDIS_PREFIX);
        assert_eq!(r.timeout, DEFAULT_REDIS_TIMEOUT);
        assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");

        // Prefix and timeout through the layers.
        let c = resolve(
            &["--redis-timeout", "250ms"],
            &[
                ("COUNTERSIGN_SESSION_STORE", "redis://cache:6379"),
                ("COUNTERSIGN_REDIS_PREFIX", "env:"),
            ],
            "redis_prefix = \"file:\"\nredis_timeout = 3",
        )
        .unwrap();
        let SessionStoreConfig::Redis(r) = &c.storage.session_store else {
            panic!("{c:?}")
        };
        assert_eq!(r.key_prefix, "env:");
        assert_eq!(r.timeout, Duration::from_millis(250));
        let c = resolve(
            &[],
            &[],
            "session_store = \"redis://cache\"\nredis_timeout = \"2s\"",
        )
        .unwrap();
        let SessionStoreConfig::Redis(r) = &c.storage.session_store else {
            panic!("{c:?}")
        };
        assert_eq!(r.timeout, Duration::from_secs(2));

        let c = resolve(
            &[
                "--session-store",
                "rediss://:hunter2@x",
                "--redis-ca-file",
                "ca.pem",
            ],
            &[],
            "",
        )
        .unwrap();
        let SessionStoreConfig::Redis(r) = &c.storage.session_store else {
            panic!("{c:?}")
        };
        assert_eq!(r.ca_file.as_deref(), Some(Path::new("ca.pem")));
        assert!(!format!("{c:?}").contains("hunter2"));
        let e = resolve(&["--session-store", "memcached://x"], &[], "").unwrap_err();
        assert!(matches!(e, SettingsError::Invalid { .. }), "{e}");
        let e = resolve(
            &[],
            &[("COUNTERSIGN_REDIS_TIMEOUT", "0")],
            "session_store = \"redis://x\"",
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("COUNTERSIGN_REDIS_TIMEOUT: "),
            "{e}"
        );
        let c = resolve(&["--session-store", "database"], &[], "").unwrap();
        assert_eq!(c.storage.session_store, SessionStoreConfig::Database);
    }

    #[test]
    fn db_max_connections() {
        assert_eq!(
            resolve(&[], &[], "").unwrap().storage.db_max_connections,
            None
        );
        let c = resolve(
            &["--db-max-connections", "7"],
            &[("COUNTERSIGN_DB_MAX_CONNECTIONS", "8")],
            "db_max_connections = 9",
        )
        .unwrap();
        assert_eq!(c.storage.db_max_connections, Some(7));
        let c = resolve(&[], &[("COUNTERSIGN_DB_MAX_CONNECTIONS", "8")], "").unwrap();
        assert_eq!(c.storage.db_max_connections, Some(8));
        let c = resolve(&[], &[], "db_max_connections = 9").unwrap();
        assert_eq!(c.storage.db_max_connections, Some(9));
        let e = resolve(&["--db-max-connections", "0"], &[], "").unwrap_err();
        assert!(e.to_string().starts_with("--db-max-connections: "), "{e}");
        let e = resolve(&[], &[("COUNTERSIGN_DB_MAX_CONNECTIONS", "x")], "").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("COUNTERSIGN_DB_MAX_CONNECTIONS: "),
            "{e}"
        );
    }

    #[test]
    fn origins() {
        let c = resolve(
            &[],
            &[(
                "COUNTERSIGN_ALLOWED_ORIGINS",
                "https://a.example, http://b.example:8080",
            )],
            "",
        )
        .unwrap();
        assert_eq!(
            c.allowed_origins,
            ["https://a.example", "http://b.example:8080"]
        );
        assert!(resolve(&["--allowed-origin", "https://a.example/path"], &[], "").is_err());
        assert!(resolve(&["--allowed-origin", "a.example"], &[], "").is_err());
    }

    #[test]
    fn public_urls_through_the_layers() {
        let c = resolve(&[], &[], "").unwrap();
        assert!(c.public_urls.is_empty());
        let c = resolve(
            &[
                "--public-url",
                "HTTPS://Auth.Example/",
                "--public-url",
                "http://127.0.0.1:8080/base",
            ],
            &[("COUNTERSIGN_PUBLIC_URL", "https://env.example")],
            "",
        )
        .unwrap();
        assert_eq!(
            c.public_urls,
            ["https://auth.example", "http://127.0.0.1:8080"]
        );
        let c = resolve(
            &[],
            &[(
                "COUNTERSIGN_PUBLIC_URL",
                "https://a.example, https://b.example",
            )],
            "",
        )
        .unwrap();
        assert_eq!(c.public_urls, ["https://a.example", "https://b.example"]);
        let c = resolve(&[], &[], "public_url = [\"https://file.example\"]").unwrap();
        assert_eq!(c.public_urls, ["https://file.example"]);
        let e = resolve(&["--public-url", "auth.example"], &[], "").unwrap_err();
        assert!(e.to_string().starts_with("--public-url: "), "{e}");
        let e = resolve(&[], &[("COUNTERSIGN_PUBLIC_URL", "ftp://x.example")], "").unwrap_err();
        assert!(e.to_string().starts_with("COUNTERSIGN_PUBLIC_URL: "), "{e}");
    }

    #[test]
    fn trusted_proxies_through_the_layers() {
        let c = resolve(&[], &[], "").unwrap();
        assert!(c.trusted_proxies.is_empty(), "none by default");
        let c = resolve(&["--trusted-proxies", "127.0.0.1/32,10.0.0.0/8"], &[], "").unwrap();
        assert_eq!(c.trusted_proxies.blocks().len(), 2);
        assert!(c.trusted_proxies.contains("10.9.8.7".parse().unwrap()));
        let c = resolve(
            &[],
            &[("COUNTERSIGN_TRUSTED_PROXIES", "::1, 127.0.0.1")],
            "",
        )
        .unwrap();
        assert_eq!(c.trusted_proxies.blocks().len(), 2);
        let c = resolve(&[], &[], "trusted_proxies = [\"192.0.2.0/24\"]").unwrap();
        assert!(c.trusted_proxies.contains("192.0.2.9".parse().unwrap()));
        let e = resolve(&["--trusted-proxies", "127.0.0.1/40"], &[], "").unwrap_err();
        assert!(e.to_string().starts_with("--trusted-proxies: "), "{e}");
        assert!(e.to_string().contains("127.0.0.1/40"), "{e}");
        let e = resolve(&[], &[("COUNTERSIGN_TRUSTED_PROXIES", "everyone")], "").unwrap_err();
        assert!(
            e.to_string().starts_with("COUNTERSIGN_TRUSTED_PROXIES: "),
            "{e}"
        );
    }

    #[test]
    fn registration_limit_through_the_layers() {
        let c = resolve(&[], &[], "").unwrap();
        assert_eq!(c.throttle, ThrottlePolicy::default());
        assert_eq!(c.throttle.registrations_per_address, 10);
        let vars = [("COUNTERSIGN_REGISTRATION_LIMIT", "4")];
        let file = "registration_limit = 5";
        let c = resolve(&["--registration-limit", "3"], &vars, file).unwrap();
        assert_eq!(c.throttle.registrations_per_address, 3);
        assert_eq!(c.auth_config().throttle.registrations_per_address, 3);
        let c = resolve(&[], &vars, file).unwrap();
        assert_eq!(c.throttle.registrations_per_address, 4);
        let c = resolve(&[], &[], file).unwrap();
        assert_eq!(c.throttle.registrations_per_address, 5);
        // The other limits keep their defaults.
        assert_eq!(
            c.throttle.per_account,
            ThrottlePolicy::default().per_account
        );

        let e = resolve(&["--registration-limit", "0"], &[], "").unwrap_err();
        assert!(e.to_string().starts_with("--registration-limit: "), "{e}");
        let e = resolve(&[], &[("COUNTERSIGN_REGISTRATION_LIMIT", "many")], "").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("COUNTERSIGN_REGISTRATION_LIMIT: "),
            "{e}"
        );
        let e = resolve(&[], &[], "registration_limit = 0").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/etc/cs/countersign.toml: registration_limit"),
            "{e}"
        );
    }

    #[test]
    fn database_url_is_never_shown() {
        let c = resolve(&["--database-url", "postgres://u:hunter2@db/x"], &[], "").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(
            c.storage.database_url.unwrap().expose(),
            "postgres://u:hunter2@db/x"
        );
    }
}
