//! Settings for `serve` and the storage subcommands, layered as `docs/settings.md` says:
//! flags, then `COUNTERSIGN_*` environment variables, then `countersign.toml` (in the
//! working directory, or the file `--config` / `COUNTERSIGN_CONFIG` names), then defaults.
//!
//! Each setting is defined once, in [`SETTINGS`] ([`table`]): its flag, variable and file
//! key, its default and help, and the parser that reads and checks its value whichever
//! layer it comes from. The command line's flags ([`flags`]) and the settings reference in
//! `docs/settings.md` are made from that table, and one resolver ([`resolve`]) walks it
//! into [`ServeConfig`] and [`StorageConfig`], which are passed down; nothing later reads
//! the environment or the file. Every error names where the bad value came from (`--addr`,
//! `COUNTERSIGN_ADDR`, `countersign.toml: addr`) and never quotes a database URL's password.
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

mod config;
mod error;
mod file;
pub mod flags;
mod flask;
mod forward;
pub mod raw;
pub mod resolve;
pub mod table;

pub use config::{
    CONFIG_FILE, DEFAULT_ADDR, DEFAULT_DATA_DIR, DEFAULT_HASH_QUEUE, DEFAULT_REDIS_PREFIX,
    DEFAULT_REDIS_TIMEOUT, DatabaseUrl, LogFormat, MAX_DB_CONNECTIONS, MAX_HASH_POOL,
    MAX_LOGIN_LIMIT, MAX_REGISTRATION_LIMIT, RedisConfig, Registration, ServeConfig,
    SessionStoreConfig, StorageConfig,
};
pub use error::{Origin, Refusal, SettingsError};
pub use file::SettingsFile;
pub use forward::ForwardSettings;
pub use resolve::{access_check_rules, access_rules, rules_in};
pub use table::{SECTIONS, SETTINGS, Scope, Setting, Shown, Value};

#[cfg(test)]
mod tests;
