//! SQLite and PostgreSQL stores for countersign: every trait of [`countersign::store`]
//! (users, sessions, refresh families, revocation, throttling) over sqlx, with embedded
//! migrations.
//!
//! - [`connect`] opens a store from a URL (`sqlite://path?mode=rwc`, `sqlite:path`,
//!   `postgres://…`); [`SqlStore::open_sqlite_in`] opens the embedded default,
//!   `<data_dir>/countersign.db`. Neither migrates: call [`SqlStore::migrate`], which is safe
//!   to run from several processes at once.
//! - The stores implement [`countersign::sweep::Sweep`]: run
//!   [`countersign::sweep::continuously_delete_expired`] to remove expired rows in the
//!   background, in small batches.
//! - URLs are shown only redacted ([`redacted_url`]): in errors, logs, `Display` and `Debug`.
//!
//! The same statements serve both dialects where they can (`sql.rs`); the schemas
//! (`migrations/sqlite`, `migrations/postgres`) and how a write transaction begins differ.
//! Sessions and the other short-lived tables have no foreign key to `users`, so users can
//! live here while sessions live in Redis.
//!
//! # Examples
//! ```
//! use countersign::clock::UnixTime;
//! use countersign::password::PasswordHash;
//! use countersign::store::UserStore;
//! use countersign::user::{NewUser, Role, Username};
//! use countersign_sql::{PoolOptions, connect};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = connect("sqlite::memory:", &PoolOptions::default()).await?;
//! store.migrate().await?;
//! let alice = store
//!     .create_user(NewUser {
//!         username: Username::parse("alice")?,
//!         role: Role::admin(),
//!         password_hash: PasswordHash::from_phc("$argon2id$v=19$m=19456,t=2,p=1$…"),
//!         created_at: UnixTime(1_800_000_000),
//!     })
//!     .await?;
//! assert_eq!(store.user_by_name("alice").await?, Some(alice));
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

use std::fmt;
use std::path::Path;

use async_trait::async_trait;
use countersign::attempts::{AttemptLimit, AttemptWindow, Reservation, Settlement};
use countersign::clock::UnixTime;
use countersign::mfa::recovery::RecoveryHash;
use countersign::mfa::{Factor, FactorId, RecoveryCodeRecord};
use countersign::password::PasswordHash;
use countersign::refresh::{FamilyId, RefreshFamily, RefreshHash, RotateOutcome};
use countersign::session::{SessionKey, SessionRecord};
use countersign::store::{
    FactorStore, RefreshStore, RevocationStore, SessionStore, StoreResult, ThrottleStore,
    UserImport, UserStore,
};
use countersign::sweep::{Sweep, SweepReport};
use countersign::user::{NewUser, Role, User, UserId};

mod error;
mod invalidations;
mod migrate;
mod options;
mod postgres;
mod rows;
mod sql;
mod sqlite;
mod store_impl;

pub use countersign::redact::redacted_url;
pub use error::SqlError;
pub use invalidations::listen;
pub use options::PoolOptions;
pub use postgres::PgStore;
pub use sqlite::{DB_FILE, SqliteStore};
/// The sqlx this crate is built on, for the pools the stores expose.
pub use sqlx;

/// A SQL store: SQLite or PostgreSQL. Implements every store trait; cheap to clone (the
/// clones share the pools).
#[derive(Clone)]
#[non_exhaustive]
pub enum SqlStore {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

/// Open the store at `url`: `sqlite://path?mode=rwc` (created if missing), `sqlite:path`
/// (must exist), `sqlite::memory:`, or `postgres://user:password@host:port/db?…`
/// (`postgresql://` too). Does not migrate.
///
/// # Errors
/// [`SqlError::UnsupportedUrl`] for another scheme, [`SqlError::InvalidUrl`],
/// [`SqlError::Connect`]. The URL in them is redacted.
pub async fn connect(url: &str, opts: &PoolOptions) -> Result<SqlStore, SqlError> {
    if url.starts_with("sqlite:") {
        SqliteStore::connect(url, opts).await.map(SqlStore::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        PgStore::connect(url, opts).await.map(SqlStore::Postgres)
    } else {
        Err(SqlError::UnsupportedUrl {
            url: redacted_url(url),
        })
    }
}

impl SqlStore {
    /// Open (creating it if needed) the embedded default, `<data_dir>/countersign.db`
    /// ([`DB_FILE`]), creating `data_dir` too: WAL, `synchronous=NORMAL`, foreign keys on,
    /// busy timeout from `opts`. Does not migrate.
    ///
    /// # Errors
    /// [`SqlError::DataDir`], [`SqlError::Connect`].
    pub async fn open_sqlite_in(
        data_dir: impl AsRef<Path>,
        opts: &PoolOptions,
    ) -> Result<Self, SqlError> {
        SqliteStore::open_in(data_dir.as_ref(), opts)
            .await
            .map(Self::Sqlite)
    }

    /// Bring the schema up to date (embedded migrations). Safe to run from several
    /// processes at once against one database: the second waits, then finds nothing to do.
    ///
    /// # Errors
    /// [`SqlError::Migrate`].
    pub async fn migrate(&self) -> Result<(), SqlError> {
        match self {
            Self::Sqlite(s) => s.migrate().await,
            Self::Postgres(s) => s.migrate().await,
        }
    }

    /// The database URL, redacted.
    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite(s) => s.url(),
            Self::Postgres(s) => s.url(),
        }
    }

    /// Close every connection, waiting for those in use.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
            Self::Postgres(s) => s.close().await,
        }
    }
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(s) => f.debug_tuple("Sqlite").field(s).finish(),
            Self::Postgres(s) => f.debug_tuple("Postgres").field(s).finish(),
        }
    }
}

impl fmt::Display for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url())
    }
}

#[async_trait]
impl Sweep for SqlStore {
    async fn delete_expired(&self, now: UnixTime) -> StoreResult<SweepReport> {
        match self {
            Self::Sqlite(s) => s.delete_expired(now).await,
            Self::Postgres(s) => s.delete_expired(now).await,
        }
    }
}

/// `self.method(args)` on whichever store this is.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            SqlStore::Sqlite(s) => s.$method($($arg),*).await,
            SqlStore::Postgres(s) => s.$method($($arg),*).await,
        }
    };
}

#[async_trait]
impl FactorStore for SqlStore {
    async fn add_factor(&self, factor: &Factor) -> StoreResult<()> {
        dispatch!(self.add_factor(factor))
    }
    async fn factor(&self, id: &FactorId) -> StoreResult<Option<Factor>> {
        dispatch!(self.factor(id))
    }
    async fn user_factors(&self, user: UserId) -> StoreResult<Vec<Factor>> {
        dispatch!(self.user_factors(user))
    }
    async fn update_factor(&self, factor: &Factor) -> StoreResult<bool> {
        dispatch!(self.update_factor(factor))
    }
    async fn advance_factor(
        &self,
        user: UserId,
        id: &FactorId,
        counter: i64,
        now: UnixTime,
    ) -> StoreResult<bool> {
        dispatch!(self.advance_factor(user, id, counter, now))
    }
    async fn remove_factor(&self, user: UserId, id: &FactorId) -> StoreResult<bool> {
        dispatch!(self.remove_factor(user, id))
    }
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        hashes: &[RecoveryHash],
        now: UnixTime,
    ) -> StoreResult<()> {
        dispatch!(self.replace_recovery_codes(user, hashes, now))
    }
    async fn use_recovery_code(
        &self,
        user: UserId,
        hash: &RecoveryHash,
        now: UnixTime,
    ) -> StoreResult<bool> {
        dispatch!(self.use_recovery_code(user, hash, now))
    }
    async fn recovery_codes(&self, user: UserId) -> StoreResult<Vec<RecoveryCodeRecord>> {
        dispatch!(self.recovery_codes(user))
    }
    async fn remove_user_factors(&self, user: UserId) -> StoreResult<u64> {
        dispatch!(self.remove_user_factors(user))
    }
}

#[async_trait]
impl UserStore for SqlStore {
    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        dispatch!(self.create_user(user))
    }
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        dispatch!(self.user_by_name(username))
    }
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        dispatch!(self.user_by_id(id))
    }
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        dispatch!(self.list_users())
    }
    async fn password_hashes_after(
        &self,
        after: UserId,
        limit: u32,
        skip_prefix: &str,
    ) -> StoreResult<Vec<(UserId, PasswordHash)>> {
        dispatch!(self.password_hashes_after(after, limit, skip_prefix))
    }
    async fn set_password_hash(&self, id: UserId, hash: &PasswordHash) -> StoreResult<bool> {
        dispatch!(self.set_password_hash(id, hash))
    }
    async fn set_role(&self, id: UserId, role: &Role) -> StoreResult<bool> {
        dispatch!(self.set_role(id, role))
    }
    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        dispatch!(self.delete_user(id))
    }
    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool> {
        dispatch!(self.set_disabled(id, disabled))
    }
    async fn ping(&self) -> StoreResult<()> {
        dispatch!(self.ping())
    }
    async fn replace_password_hash(
        &self,
        id: UserId,
        old: &PasswordHash,
        new: &PasswordHash,
    ) -> StoreResult<bool> {
        dispatch!(self.replace_password_hash(id, old, new))
    }
    async fn begin_import(&self) -> StoreResult<Box<dyn UserImport + '_>> {
        dispatch!(self.begin_import())
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn create_session(&self, record: &SessionRecord) -> StoreResult<()> {
        dispatch!(self.create_session(record))
    }
    async fn load_session(
        &self,
        key: &SessionKey,
        now: UnixTime,
    ) -> StoreResult<Option<SessionRecord>> {
        dispatch!(self.load_session(key, now))
    }
    async fn touch_session(
        &self,
        key: &SessionKey,
        last_seen: UnixTime,
        idle_deadline: UnixTime,
    ) -> StoreResult<bool> {
        dispatch!(self.touch_session(key, last_seen, idle_deadline))
    }
    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        dispatch!(self.delete_session(key))
    }
    async fn list_user_sessions(
        &self,
        user: UserId,
        now: UnixTime,
    ) -> StoreResult<Vec<SessionRecord>> {
        dispatch!(self.list_user_sessions(user, now))
    }
    async fn delete_user_sessions(&self, user: UserId) -> StoreResult<u64> {
        dispatch!(self.delete_user_sessions(user))
    }
    async fn sweep_sessions(&self, now: UnixTime) -> StoreResult<u64> {
        dispatch!(self.sweep_sessions(now))
    }
    async fn ping_sessions(&self) -> StoreResult<()> {
        dispatch!(self.ping_sessions())
    }
    /// PostgreSQL `NOTIFY` ([`listen`] listens); SQLite has no channel.
    fn broadcast(&self) -> Option<std::sync::Arc<dyn countersign::invalidation::Broadcast>> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(pg) => Some(std::sync::Arc::new(pg.clone())),
        }
    }
}

#[async_trait]
impl RefreshStore for SqlStore {
    async fn create_family(&self, family: &RefreshFamily, first: &RefreshHash) -> StoreResult<()> {
        dispatch!(self.create_family(family, first))
    }
    async fn peek_family(
        &self,
        presented: &[RefreshHash],
        now: UnixTime,
    ) -> StoreResult<Option<RefreshFamily>> {
        dispatch!(self.peek_family(presented, now))
    }
    async fn rotate(
        &self,
        presented: &[RefreshHash],
        next: &RefreshHash,
        idle_secs: i64,
        now: UnixTime,
    ) -> StoreResult<RotateOutcome> {
        dispatch!(self.rotate(presented, next, idle_secs, now))
    }
    async fn revoke_by_token(&self, presented: &[RefreshHash]) -> StoreResult<bool> {
        dispatch!(self.revoke_by_token(presented))
    }
    async fn revoke_family(&self, id: &FamilyId) -> StoreResult<bool> {
        dispatch!(self.revoke_family(id))
    }
    async fn revoke_user_families(&self, user: UserId) -> StoreResult<u64> {
        dispatch!(self.revoke_user_families(user))
    }
    async fn sweep_families(&self, now: UnixTime) -> StoreResult<u64> {
        dispatch!(self.sweep_families(now))
    }
}

#[async_trait]
impl RevocationStore for SqlStore {
    async fn deny_jti(&self, jti: &str, until: UnixTime) -> StoreResult<()> {
        dispatch!(self.deny_jti(jti, until))
    }
    async fn is_jti_denied(&self, jti: &str, now: UnixTime) -> StoreResult<bool> {
        dispatch!(self.is_jti_denied(jti, now))
    }
    async fn revoke_issued_before(&self, user: UserId, before: UnixTime) -> StoreResult<()> {
        dispatch!(self.revoke_issued_before(user, before))
    }
    async fn issued_before(&self, user: UserId) -> StoreResult<Option<UnixTime>> {
        dispatch!(self.issued_before(user))
    }
}

#[async_trait]
impl ThrottleStore for SqlStore {
    async fn hit(
        &self,
        key: &str,
        window_secs: i64,
        now: UnixTime,
    ) -> StoreResult<(u64, UnixTime)> {
        dispatch!(self.hit(key, window_secs, now))
    }
    async fn peek(&self, key: &str, now: UnixTime) -> StoreResult<(u64, UnixTime)> {
        dispatch!(self.peek(key, now))
    }
    async fn clear(&self, key: &str) -> StoreResult<()> {
        dispatch!(self.clear(key))
    }
    async fn reserve_attempt(
        &self,
        limits: &[AttemptLimit<'_>],
        window: AttemptWindow,
        now: UnixTime,
    ) -> StoreResult<Reservation> {
        dispatch!(self.reserve_attempt(limits, window, now))
    }
    async fn settle_attempt(
        &self,
        settlements: &[(AttemptLimit<'_>, Settlement)],
        window: AttemptWindow,
        now: UnixTime,
    ) -> StoreResult<()> {
        dispatch!(self.settle_attempt(settlements, window, now))
    }
    async fn record_attempt(
        &self,
        settlements: &[(AttemptLimit<'_>, Settlement)],
        window: AttemptWindow,
        now: UnixTime,
    ) -> StoreResult<Reservation> {
        dispatch!(self.record_attempt(settlements, window, now))
    }
}
