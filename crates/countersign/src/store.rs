//! The storage traits. One set of traits, several implementations (memory here; SQLite and
//! PostgreSQL in `countersign-sql`; Redis in `countersign-redis`), one conformance suite
//! (`conformance`, behind the feature of that name) run against all.
//!
//! The traits assume nothing of SQLite: every create is atomic (an existing id is a
//! [`StoreError::Conflict`], never an overwrite), deadlines are data the store can expire
//! by (Redis `PXAT`, an SQL sweep), and per-user indexes are explicit operations.

use std::error::Error as StdError;

use async_trait::async_trait;

use crate::attempts::{AttemptLimit, AttemptWindow, Reservation, Settlement};
use crate::clock::UnixTime;
use crate::mfa::recovery::RecoveryHash;
use crate::mfa::{Factor, FactorId, RecoveryCodeRecord};
use crate::password::PasswordHash;
use crate::refresh::{FamilyId, RefreshFamily, RefreshHash, RotateOutcome};
use crate::session::{SessionKey, SessionRecord};
use crate::user::{NewUser, Role, User, UserId, Username};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record to create already exists (a username, a session id, a family id).
    #[error("already exists")]
    Conflict,
    /// The backend cannot be reached (connection refused, pool timed out): the server
    /// answers 503 and tries again later.
    #[error("the store is unavailable")]
    Unavailable(#[source] Box<dyn StdError + Send + Sync>),
    /// Any other backend failure.
    #[error("the store failed")]
    Backend(#[source] Box<dyn StdError + Send + Sync>),
}

impl StoreError {
    /// Whether retrying later may succeed (the server's 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Second factors and recovery codes, kept with the users (a [`UserStore`] is one).
/// Removing a user removes its factors and codes.
#[async_trait]
pub trait FactorStore: Send + Sync + 'static {
    /// Add a factor. [`StoreError::Conflict`] when its id exists (for anyone).
    async fn add_factor(&self, factor: &Factor) -> StoreResult<()>;
    /// A factor by id, whoever's it is (a passwordless passkey login starts from the
    /// credential id).
    async fn factor(&self, id: &FactorId) -> StoreResult<Option<Factor>>;
    /// A user's factors, confirmed or not, oldest first.
    async fn user_factors(&self, user: UserId) -> StoreResult<Vec<Factor>>;
    /// Replace a factor's `name`, `data`, `confirmed` and `last_used_at` (found by id and
    /// user; `counter` is left to [`advance_factor`](Self::advance_factor)). False when gone.
    async fn update_factor(&self, factor: &Factor) -> StoreResult<bool>;
    /// Atomically, if the factor's counter is below `counter`: set it to `counter` and
    /// `last_used_at` to `now`, and return true. Otherwise change nothing and return false.
    /// A TOTP step is accepted once, whichever process sees the code.
    async fn advance_factor(
        &self,
        user: UserId,
        id: &FactorId,
        counter: i64,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Remove one factor of a user. False when there was none.
    async fn remove_factor(&self, user: UserId, id: &FactorId) -> StoreResult<bool>;
    /// Replace a user's recovery codes with a new set, in one step.
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        hashes: &[RecoveryHash],
        now: UnixTime,
    ) -> StoreResult<()>;
    /// Atomically mark an unused code of the user as used at `now`. False when the user
    /// has no such unused code. Of two concurrent calls with one code, one gets true.
    async fn use_recovery_code(
        &self,
        user: UserId,
        hash: &RecoveryHash,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// A user's recovery codes (used ones too, with when), in no particular order.
    async fn recovery_codes(&self, user: UserId) -> StoreResult<Vec<RecoveryCodeRecord>>;
    /// Remove every factor and recovery code of a user (`user mfa reset`). Returns how
    /// many factors went.
    async fn remove_user_factors(&self, user: UserId) -> StoreResult<u64>;
}

/// Users (SQL only: SQLite or PostgreSQL), with their second factors.
#[async_trait]
pub trait UserStore: FactorStore + Send + Sync + 'static {
    /// Create a user. [`StoreError::Conflict`] when the name is taken.
    async fn create_user(&self, user: NewUser) -> StoreResult<User>;
    /// A user by name.
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>>;
    /// A user by id.
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    /// Every user, by id.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Replace a password hash. False when there is no such user.
    async fn set_password_hash(&self, id: UserId, hash: &PasswordHash) -> StoreResult<bool>;
    /// Change a role. False when there is no such user.
    async fn set_role(&self, id: UserId, role: &Role) -> StoreResult<bool>;
    /// Remove a user. False when there is no such user.
    async fn delete_user(&self, id: UserId) -> StoreResult<bool>;
    /// Disable or enable an account. False when there is no such user.
    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool>;
    /// Whether the store answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;
    /// Replace a password hash only if it is still `old`, in one atomic step (the rehash
    /// at login: a password changed meanwhile is never overwritten by the old one's
    /// rehash). False when the user is gone or the hash changed. The default reads, then
    /// writes; stores that can do better override it.
    async fn replace_password_hash(
        &self,
        id: UserId,
        old: &PasswordHash,
        new: &PasswordHash,
    ) -> StoreResult<bool> {
        match self.user_by_id(id).await? {
            Some(user) if user.password_hash == *old => self.set_password_hash(id, new).await,
            _ => Ok(false),
        }
    }
    /// Start a bulk import ([`UserImport`]): one transaction, nothing visible until
    /// [`UserImport::commit`], everything discarded if it is dropped. The default refuses
    /// (a store without transactions cannot promise all-or-nothing).
    async fn begin_import(&self) -> StoreResult<Box<dyn UserImport + '_>> {
        Err(backend(ImportUnsupported))
    }
    /// Stored password hashes a page at a time, for the survey of the hash formats in use
    /// ([`crate::password::HashingPool::survey`]): up to `limit` users with an id above
    /// `after`, by id, as `(id, hash)`, leaving out the hashes that start with
    /// `skip_prefix` (countersign's own current argon2id, which need not be read). The
    /// default filters [`list_users`](Self::list_users); stores that can read one page
    /// override it.
    async fn password_hashes_after(
        &self,
        after: UserId,
        limit: u32,
        skip_prefix: &str,
    ) -> StoreResult<Vec<(UserId, PasswordHash)>> {
        let mut page: Vec<_> = self
            .list_users()
            .await?
            .into_iter()
            .filter(|u| u.id > after && !u.password_hash.as_str().starts_with(skip_prefix))
            .map(|u| (u.id, u.password_hash))
            .collect();
        page.sort_by_key(|(id, _)| *id);
        page.truncate(limit as usize);
        Ok(page)
    }
}

/// A user to import: a [`NewUser`], and the id the old application gave it when that id
/// is to be kept (so its sessions naming the id, and tokens naming it as `sub`, still
/// point at the same person).
#[derive(Clone, Debug)]
pub struct ImportedUser {
    /// The id to keep, if any; else the store picks one as for a new user.
    pub id: Option<UserId>,
    /// The user.
    pub user: NewUser,
}

/// A bulk import in progress: one transaction.
#[async_trait]
pub trait UserImport: Send {
    /// Add a batch of users. For each, in order: true when added, false when its username
    /// or its id is already taken (in the store, earlier in this import, or earlier in
    /// this batch). A taken name leaves the import usable.
    async fn insert(&mut self, batch: &[ImportedUser]) -> StoreResult<Vec<bool>>;
    /// Make every user added visible at once.
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}

/// The store keeps users without transactions, so it cannot import all-or-nothing.
#[derive(Debug, thiserror::Error)]
#[error("this user store cannot import in one transaction")]
pub struct ImportUnsupported;

/// Sessions and their per-user index.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Store a new session. [`StoreError::Conflict`] when the key exists.
    async fn create_session(&self, record: &SessionRecord) -> StoreResult<()>;
    /// A live session (expired ones are `None`, whether or not swept yet).
    async fn load_session(
        &self,
        key: &SessionKey,
        now: UnixTime,
    ) -> StoreResult<Option<SessionRecord>>;
    /// Record use: set `last_seen` and the idle deadline. False when gone.
    async fn touch_session(
        &self,
        key: &SessionKey,
        last_seen: UnixTime,
        idle_deadline: UnixTime,
    ) -> StoreResult<bool>;
    /// End one session. False when it did not exist.
    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool>;
    /// A user's live sessions, newest first.
    async fn list_user_sessions(
        &self,
        user: UserId,
        now: UnixTime,
    ) -> StoreResult<Vec<SessionRecord>>;
    /// End every session of a user (logout everywhere). Returns how many ended.
    async fn delete_user_sessions(&self, user: UserId) -> StoreResult<u64>;
    /// Remove expired sessions. Returns how many.
    async fn sweep_sessions(&self, now: UnixTime) -> StoreResult<u64>;
    /// Whether the store answers (for `/readyz`).
    async fn ping_sessions(&self) -> StoreResult<()>;
    /// The channel on which revocations are published to every process using this store
    /// ([`crate::invalidation`]), if it has one. None (the default) means other processes
    /// see changes only when their cache entries expire.
    fn broadcast(&self) -> Option<std::sync::Arc<dyn Broadcast>> {
        None
    }
}

/// A session store's channel: sends messages ([`crate::invalidation`]'s format) to every
/// instance listening on the store (this one included).
#[async_trait]
pub trait Broadcast: Send + Sync + 'static {
    /// Publish one message.
    async fn publish(&self, message: &str) -> StoreResult<()>;
}

/// Refresh-token families.
#[async_trait]
pub trait RefreshStore: Send + Sync + 'static {
    /// Start a family with its first token. [`StoreError::Conflict`] on an existing id.
    async fn create_family(&self, family: &RefreshFamily, first: &RefreshHash) -> StoreResult<()>;
    /// The family of a live token (by any of its candidate hashes): one not retired, in a
    /// family neither revoked nor ended at `now`. `None` for anything else. Changes
    /// nothing: a refresh reads what it needs (the family's user) before [`rotate`]
    /// commits, so that a failed read leaves the presented token usable for a retry.
    ///
    /// [`rotate`]: Self::rotate
    async fn peek_family(
        &self,
        presented: &[RefreshHash],
        now: UnixTime,
    ) -> StoreResult<Option<RefreshFamily>>;
    /// Present a token (by any of its candidate hashes) and, atomically: if it is live,
    /// retire it, store `next` in its family and move the family's idle deadline to
    /// `min(now + idle_secs, absolute)`; if it was already retired, revoke the family.
    /// Of two concurrent calls with one token, exactly one gets `Rotated`.
    async fn rotate(
        &self,
        presented: &[RefreshHash],
        next: &RefreshHash,
        idle_secs: i64,
        now: UnixTime,
    ) -> StoreResult<RotateOutcome>;
    /// Revoke the family a token belongs to (RFC 7009). False when unknown.
    async fn revoke_by_token(&self, presented: &[RefreshHash]) -> StoreResult<bool>;
    /// Revoke one family. False when unknown.
    async fn revoke_family(&self, id: &FamilyId) -> StoreResult<bool>;
    /// Revoke every family of a user. Returns how many.
    async fn revoke_user_families(&self, user: UserId) -> StoreResult<u64>;
    /// Remove ended and revoked families. Returns how many.
    async fn sweep_families(&self, now: UnixTime) -> StoreResult<u64>;
}

/// Access-token revocation: the `jti` denylist and per-user "issued before" marks.
#[async_trait]
pub trait RevocationStore: Send + Sync + 'static {
    /// Deny a `jti` until `until` (the token's `exp`; kept no longer).
    async fn deny_jti(&self, jti: &str, until: UnixTime) -> StoreResult<()>;
    /// Whether a `jti` is denied at `now`.
    async fn is_jti_denied(&self, jti: &str, now: UnixTime) -> StoreResult<bool>;
    /// Tokens of `user` issued before `before` are invalid (logout everywhere, password
    /// change). A later mark replaces an earlier one; an earlier never replaces a later.
    async fn revoke_issued_before(&self, user: UserId, before: UnixTime) -> StoreResult<()>;
    /// The user's mark, if any.
    async fn issued_before(&self, user: UserId) -> StoreResult<Option<UnixTime>>;
}

/// Counters for throttling (failed logins, registration attempts).
#[async_trait]
pub trait ThrottleStore: Send + Sync + 'static {
    /// Count one event under `key` in a fixed window of `window_secs` that starts with the
    /// first event. Returns the count so far and when the window ends.
    async fn hit(&self, key: &str, window_secs: i64, now: UnixTime)
    -> StoreResult<(u64, UnixTime)>;
    /// The current count and window end, without counting (zero when none).
    async fn peek(&self, key: &str, now: UnixTime) -> StoreResult<(u64, UnixTime)>;
    /// Forget a key.
    async fn clear(&self, key: &str) -> StoreResult<()>;
    /// Reserve one login attempt under every limit at once, in one atomic step: check
    /// each key's counter and, only if every one admits it, count the attempt as in
    /// flight on all of them ([`crate::attempts::reserve`] says what "admits" means).
    /// Two calls never both take the last place, whichever processes make them. These
    /// counters are apart from those of [`hit`](Self::hit).
    async fn reserve_attempt(
        &self,
        limits: &[AttemptLimit<'_>],
        window: AttemptWindow,
        now: UnixTime,
    ) -> StoreResult<Reservation>;
    /// Settle an attempt [`reserve_attempt`](Self::reserve_attempt) admitted: each key as
    /// told, atomically per key ([`crate::attempts::settle`]).
    async fn settle_attempt(
        &self,
        settlements: &[(AttemptLimit<'_>, Settlement)],
        window: AttemptWindow,
        now: UnixTime,
    ) -> StoreResult<()>;
    /// One attempt whose outcome was known before it was counted (a one-time code, checked
    /// in microseconds), reserved and settled in one step ([`crate::attempts::record`]):
    /// admitted as [`reserve_attempt`](Self::reserve_attempt) would admit it, then settled
    /// at once as `settlements` say. Unless the answer is [`Reservation::Admitted`] nothing
    /// is recorded, and the caller must disregard the outcome. The default reserves, then
    /// settles; a store that can do both in one transaction overrides it.
    async fn record_attempt(
        &self,
        settlements: &[(AttemptLimit<'_>, Settlement)],
        window: AttemptWindow,
        now: UnixTime,
    ) -> StoreResult<Reservation> {
        let limits: Vec<AttemptLimit<'_>> = settlements.iter().map(|(limit, _)| *limit).collect();
        let answer = self.reserve_attempt(&limits, window, now).await?;
        if answer == Reservation::Admitted {
            self.settle_attempt(settlements, window, now).await?;
        }
        Ok(answer)
    }
}

/// Everything the session store holds (sessions, refresh families, revocations,
/// counters): the database by default, or Redis.
pub trait EphemeralStore: SessionStore + RefreshStore + RevocationStore + ThrottleStore {}
impl<T: SessionStore + RefreshStore + RevocationStore + ThrottleStore> EphemeralStore for T {}

/// Build a [`StoreError::Backend`] from any error.
pub fn backend(e: impl StdError + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// Build a [`StoreError::Unavailable`] from any error.
pub fn unavailable(e: impl StdError + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

/// A user name that the store could not parse back (a row edited by hand).
#[derive(Debug, thiserror::Error)]
#[error("stored value {0:?} is not valid")]
pub struct CorruptRow(pub String);

/// Parse a stored username, as a backend error when it is not valid.
///
/// # Errors
/// [`StoreError::Backend`] wrapping [`CorruptRow`].
pub fn stored_username(s: &str) -> StoreResult<Username> {
    Username::parse(s).map_err(|_| backend(CorruptRow(s.to_owned())))
}

/// Parse a stored role, as a backend error when it is not valid.
///
/// # Errors
/// [`StoreError::Backend`] wrapping [`CorruptRow`].
pub fn stored_role(s: &str) -> StoreResult<Role> {
    Role::parse(s).map_err(|_| backend(CorruptRow(s.to_owned())))
}
