//! The authentication service: what a web layer calls. Login (with throttling and
//! timing parity), sessions, token pairs with refresh rotation, bearer verification with
//! revocation, logout everywhere, account changes that end sessions, key reload.
//!
//! # Caching and propagation
//! The hot paths (a bearer token's revocation checks, a session cookie's record) read a
//! small in-process cache whose entries live `cache_ttl` (default 1 s). Changes made by
//! this process update the cache at once; changes made by another instance or by the CLI
//! are seen within `cache_ttl`. Setting it to zero reads the store on every request. The
//! trade-off is written up in `docs/decisions.md`.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::b64;
use crate::clock::{Clock, UnixTime};
use crate::jwt::{self, Claims, Issuance, JwtError, Validation};
use crate::keys::{KeyRing, Purpose, Subkey};
use crate::password::{HashingPool, Password, PasswordError};
use crate::refresh::{RefreshFamily, RefreshHasher, RefreshPolicy, RefreshToken, RotateOutcome};
use crate::session::{CookieSigner, SessionKey, SessionPolicy, SessionRecord, SessionToken};
use crate::setup::{SetupError, SetupSecret, SetupToken};
use crate::store::{EphemeralStore, StoreError, UserStore};
use crate::user::{NewUser, Role, User, UserId, Username};

/// Throttling, in fixed windows: failed logins per account name and per client address,
/// and registration attempts per client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures per account name per window before 429 (default 5).
    pub per_account: u64,
    /// Failures per client address per window before 429 (default 50).
    pub per_address: u64,
    /// Registration attempts per client address per window, successful or not, before
    /// 429 (default 10). See [`Auth::register`].
    pub registrations_per_address: u64,
    /// Window length, seconds (default 15 min). No lockout outlasts it.
    pub window_secs: i64,
}

/// The default of [`ThrottlePolicy::registrations_per_address`].
pub const DEFAULT_REGISTRATIONS_PER_ADDRESS: u64 = 10;

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            per_account: 5,
            per_address: 50,
            registrations_per_address: DEFAULT_REGISTRATIONS_PER_ADDRESS,
            window_secs: 15 * 60,
        }
    }
}

/// Everything the service is configured with.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// JWT verification rules.
    pub validation: Validation,
    /// JWT issuing rules.
    pub issuance: Issuance,
    /// Session lifetimes.
    pub sessions: SessionPolicy,
    /// Refresh-family lifetimes.
    pub refresh: RefreshPolicy,
    /// Login and registration throttling.
    pub throttle: ThrottlePolicy,
    /// How long hot-path cache entries live (see the module docs). Zero disables it.
    pub cache_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            validation: Validation::default(),
            issuance: Issuance::default(),
            sessions: SessionPolicy::default(),
            refresh: RefreshPolicy::default(),
            throttle: ThrottlePolicy::default(),
            cache_ttl: Duration::from_secs(1),
        }
    }
}

/// What is derived from a key ring; swapped as a whole on reload.
struct Keys {
    ring: KeyRing,
    cookies: CookieSigner,
    refresh: RefreshHasher,
    csrf: Vec<Subkey>,
}

impl Keys {
    fn new(ring: KeyRing) -> Self {
        Self {
            cookies: CookieSigner::new(&ring),
            refresh: RefreshHasher::new(&ring),
            csrf: ring.subkeys(Purpose::Csrf),
            ring,
        }
    }
}

/// How a request was authenticated. `Debug` leaves out the session's CSRF token.
#[derive(Clone, PartialEq, Eq)]
pub enum Method {
    /// `Authorization: Bearer` with a JWT.
    Bearer {
        /// The token's `jti`, if any.
        jti: Option<String>,
        /// The token's expiry.
        exp: UnixTime,
    },
    /// A session cookie.
    Session {
        /// The session's public id.
        key: SessionKey,
        /// The session's CSRF token.
        csrf_token: String,
    },
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bearer { jti, exp } => f
                .debug_struct("Bearer")
                .field("jti", jti)
                .field("exp", exp)
                .finish(),
            Self::Session { key, .. } => f
                .debug_struct("Session")
                .field("key", key)
                .field("csrf_token", &"[redacted]")
                .finish(),
        }
    }
}

/// The authenticated user of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user's id, when the credential names one (a PyJWT-made token may carry only
    /// `username` and `role`, as in the seeds).
    pub user_id: Option<UserId>,
    /// The user's name.
    pub username: String,
    /// The user's role.
    pub role: String,
    /// How the request authenticated.
    pub method: Method,
}

impl Principal {
    /// Whether the principal has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.role == role
    }
}

/// A new access token and refresh token.
#[derive(Clone)]
pub struct TokenPair {
    /// The JWT.
    pub access_token: String,
    /// Seconds until the JWT expires.
    pub expires_in: i64,
    /// The opaque refresh token.
    pub refresh_token: Zeroizing<String>,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Why a password login failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// Unknown user or wrong password (indistinguishable by design).
    #[error("invalid username or password")]
    Invalid,
    /// Too many failures for this account or address.
    #[error("too many failed logins; retry in {retry_after}s")]
    Throttled {
        /// Seconds until the window ends.
        retry_after: i64,
    },
    /// The hashing pool is full.
    #[error("login is at capacity; retry shortly")]
    Busy,
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a bearer token was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// The JWT itself failed (signature, claims, …).
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// The token names no user (`username` and `sub` both absent).
    #[error("the token names no user (no username or sub claim)")]
    NoSubject,
    /// The token was revoked (its `jti` is denied, or its user logged out everywhere
    /// after it was issued).
    #[error("the token was revoked")]
    Revoked,
    /// A revocation check needed the store and it failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a session cookie was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Bad MAC, unknown, ended or expired.
    #[error("the session is invalid or has ended")]
    Invalid,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// Unknown, expired or revoked token, or its user is gone.
    #[error("the refresh token is invalid")]
    Invalid,
    /// A retired token was presented again: its family is now revoked.
    #[error("the refresh token was already used; its family is revoked")]
    Reused,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an account change failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// The username is taken.
    #[error("that username is taken")]
    Taken,
    /// Too many registration attempts from this client address ([`Auth::register`]).
    #[error("too many registration attempts; retry in {retry_after}s")]
    Throttled {
        /// Seconds until the window ends.
        retry_after: i64,
    },
    /// No such user.
    #[error("no such user")]
    NoSuchUser,
    /// The username is not valid.
    #[error(transparent)]
    Name(#[from] crate::user::NameError),
    /// The password breaks the policy, or hashing is at capacity.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// A store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Self::Taken,
            e => Self::Store(e),
        }
    }
}

/// How many locks serialize login attempts (by account, striped).
const LOGIN_STRIPES: usize = 64;

/// A throttle counter's key: the kind and a hash of the value, so a submitted username of
/// any length or content makes a short, fixed-shape key in every store.
fn throttle_key(kind: &str, value: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(value.as_bytes());
    let mut key = String::with_capacity(kind.len() + 23);
    key.push_str(kind);
    key.push(':');
    b64::encode_into(&digest[..16], &mut key);
    key
}

/// A small TTL cache in front of the store (see the module docs).
struct TtlCache<K, V> {
    ttl: Duration,
    inner: quick_cache::sync::Cache<K, (V, Instant)>,
}

impl<K: Eq + std::hash::Hash + Clone, V: Clone> TtlCache<K, V> {
    fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            inner: quick_cache::sync::Cache::new(capacity),
        }
    }

    fn get(&self, k: &K) -> Option<V> {
        if self.ttl.is_zero() {
            return None;
        }
        match self.inner.get(k) {
            Some((v, at)) if at.elapsed() < self.ttl => Some(v),
            Some(_) => {
                self.inner.remove(k);
                None
            }
            None => None,
        }
    }

    fn put(&self, k: K, v: V) {
        if !self.ttl.is_zero() {
            self.inner.insert(k, (v, Instant::now()));
        }
    }

    fn forget(&self, k: &K) {
        self.inner.remove(k);
    }
}

/// How long a pre-session CSRF cookie (login and registration forms) stays good: long
/// enough for a login page left open over a working day, short enough that a stolen one
/// goes stale.
pub const PRE_SESSION_CSRF_TTL_SECS: i64 = 12 * 3600;

/// The authentication service.
pub struct Auth {
    keys: ArcSwap<Keys>,
    config: AuthConfig,
    users: Arc<dyn UserStore>,
    store: Arc<dyn EphemeralStore>,
    pool: HashingPool,
    clock: Arc<dyn Clock>,
    sessions: TtlCache<SessionKey, Option<Arc<SessionRecord>>>,
    issued_before: TtlCache<UserId, Option<UnixTime>>,
    denied: TtlCache<String, bool>,
    /// Striped locks serializing login attempts per account (see [`Auth::login`]).
    login_turns: Vec<tokio::sync::Mutex<()>>,
    /// The setup link, once [`Auth::open_setup`] issued one.
    setup: OnceLock<SetupToken>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("kids", &self.keys.load().ring.kids().collect::<Vec<_>>())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// A service over these stores.
    pub fn new(
        ring: KeyRing,
        config: AuthConfig,
        users: Arc<dyn UserStore>,
        store: Arc<dyn EphemeralStore>,
        pool: HashingPool,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let ttl = config.cache_ttl;
        Self {
            keys: ArcSwap::from_pointee(Keys::new(ring)),
            users,
            store,
            pool,
            clock,
            sessions: TtlCache::new(ttl, 100_000),
            issued_before: TtlCache::new(ttl, 100_000),
            denied: TtlCache::new(ttl, 100_000),
            login_turns: (0..LOGIN_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            setup: OnceLock::new(),
            config,
        }
    }

    /// The lock that serializes login attempts on an account (striped: two accounts may
    /// share one, which only makes their logins take turns).
    fn login_turn(&self, account_key: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        account_key.hash(&mut h);
        &self.login_turns[(h.finish() % LOGIN_STRIPES as u64) as usize]
    }

    /// Replace the key ring (SIGHUP). Requests in flight finish with the ring they began
    /// with; nothing is dropped.
    pub fn set_keys(&self, ring: KeyRing) {
        self.keys.store(Arc::new(Keys::new(ring)));
    }

    /// The current key ring's ids, current first.
    pub fn kids(&self) -> Vec<String> {
        self.keys
            .load()
            .ring
            .kids()
            .map(|k| k.as_str().to_owned())
            .collect()
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The current time.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The user store.
    pub fn users(&self) -> &Arc<dyn UserStore> {
        &self.users
    }

    /// The session store.
    pub fn store(&self) -> &Arc<dyn EphemeralStore> {
        &self.store
    }

    /// The hashing pool.
    pub fn pool(&self) -> &HashingPool {
        &self.pool
    }

    // ----- passwords and accounts -----

    /// Check a username and password, throttled per account and per client address.
    /// Unknown users cost one dummy verify, so the answer and its timing are the same as
    /// for a wrong password.
    ///
    /// # Errors
    /// [`LoginError`].
    pub async fn login(
        &self,
        username: &str,
        password: Password,
        address: &str,
    ) -> Result<User, LoginError> {
        let now = self.now();
        let policy = self.config.throttle;
        let account_key = throttle_key("acct", username);
        let address_key = throttle_key("addr", address);
        // Attempts on one account run one at a time (per instance): check, verify, count.
        // Otherwise a burst of parallel guesses would all pass a count of zero and the
        // hashing queue, not the policy, would bound them. Correct logins just queue.
        let _turn = self.login_turn(&account_key).lock().await;
        let (acct, acct_end) = self.store.peek(&account_key, now).await?;
        let (addr, addr_end) = self.store.peek(&address_key, now).await?;
        if acct >= policy.per_account || addr >= policy.per_address {
            let end = if acct >= policy.per_account {
                acct_end
            } else {
                addr_end
            };
            return Err(LoginError::Throttled {
                retry_after: (end.secs() - now.secs()).max(1),
            });
        }
        let user = match Username::parse(username) {
            Ok(name) => self.users.user_by_name(name.as_str()).await?,
            Err(_) => None,
        };
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let verdict = match self.pool.verify(password.clone(), hash).await {
            Ok(v) => v,
            Err(PasswordError::Busy) => return Err(LoginError::Busy),
            Err(_) => return Err(LoginError::Invalid),
        };
        match user {
            Some(user) if verdict.matches => {
                self.store.clear(&account_key).await?;
                if verdict.needs_rehash
                    && let Ok(hash) = self.pool.hash(password).await
                {
                    self.users.set_password_hash(user.id, &hash).await?;
                }
                Ok(user)
            }
            _ => {
                self.store
                    .hit(&account_key, policy.window_secs, now)
                    .await?;
                self.store
                    .hit(&address_key, policy.window_secs, now)
                    .await?;
                Err(LoginError::Invalid)
            }
        }
    }

    /// Create an account (registration, `countersign user add`).
    ///
    /// # Errors
    /// [`AccountError`].
    pub async fn create_user(
        &self,
        username: &str,
        password: Password,
        role: Role,
    ) -> Result<User, AccountError> {
        let username = Username::parse(username)?;
        password.check_policy()?;
        let password_hash = self.pool.hash(password).await?;
        Ok(self
            .users
            .create_user(NewUser {
                username,
                role,
                password_hash,
                created_at: self.now(),
            })
            .await?)
    }

    /// Create an account for a visitor (open registration), throttled per client address.
    ///
    /// Every attempt counts, whatever its outcome, and the count is taken (atomically)
    /// before anything else: an attempt over
    /// [`ThrottlePolicy::registrations_per_address`] is refused before any hashing. Each
    /// attempt otherwise costs an argon2id hash, and "that username is taken" is an answer
    /// a registration form cannot avoid giving, so the throttle is what bounds both the
    /// CPU one address can spend and how fast it can probe for usernames
    /// (`docs/decisions.md`). Unlike failed logins, no lock is needed: the count is taken
    /// before the work, so a parallel burst is bounded by the policy too.
    ///
    /// # Errors
    /// [`AccountError::Throttled`], else as [`Auth::create_user`].
    pub async fn register(
        &self,
        username: &str,
        password: Password,
        role: Role,
        address: &str,
    ) -> Result<User, AccountError> {
        let now = self.now();
        let policy = self.config.throttle;
        let key = throttle_key("reg", address);
        let (attempts, end) = self.store.hit(&key, policy.window_secs, now).await?;
        if attempts > policy.registrations_per_address {
            return Err(AccountError::Throttled {
                retry_after: (end.secs() - now.secs()).max(1),
            });
        }
        self.create_user(username, password, role).await
    }

    // ----- the first administrator -----

    /// Issue the setup link's token ([`crate::setup`]) when no user exists: the secret to
    /// print, once per process. `None` when a user exists or a token was issued before.
    ///
    /// # Errors
    /// [`SetupError::Account`] when the user store fails, [`SetupError::Random`] when the
    /// OS random source does.
    pub async fn open_setup(&self) -> Result<Option<SetupSecret>, SetupError> {
        if self.setup.get().is_some() || !self.no_users().await? {
            return Ok(None);
        }
        let (token, secret) = SetupToken::issue(self.now()).map_err(SetupError::Random)?;
        Ok(self.setup.set(token).is_ok().then_some(secret))
    }

    /// Whether `presented` opens the setup page: it is the setup token, unexpired and
    /// unused, and no user exists yet (seeing one closes the token for good).
    ///
    /// # Errors
    /// When the user store fails.
    pub async fn setup_allowed(&self, presented: &str) -> Result<bool, StoreError> {
        let Some(token) = self.setup.get() else {
            return Ok(false);
        };
        if !token.check(presented, self.now()) {
            return Ok(false);
        }
        if self.no_users().await? {
            Ok(true)
        } else {
            token.close();
            Ok(false)
        }
    }

    /// Create the first administrator (role `admin`) with the setup token, and close it.
    ///
    /// The name and password are checked before the token is taken, so a refused
    /// password leaves the link usable; the token is then taken atomically, so of two
    /// concurrent submissions exactly one makes an account and the other gets
    /// [`SetupError::Closed`].
    ///
    /// # Errors
    /// [`SetupError::Closed`] for a wrong, expired or used token or when a user exists
    /// (deliberately one answer); [`SetupError::Account`] as for [`Auth::create_user`]
    /// (the token is given back).
    pub async fn create_first_admin(
        &self,
        presented: &str,
        username: &str,
        password: Password,
    ) -> Result<User, SetupError> {
        let now = self.now();
        let Some(token) = self.setup.get().filter(|t| t.check(presented, now)) else {
            return Err(SetupError::Closed);
        };
        Username::parse(username).map_err(AccountError::from)?;
        password.check_policy().map_err(AccountError::from)?;
        let Some(claim) = token.claim(presented, now) else {
            return Err(SetupError::Closed);
        };
        if !self.no_users().await? {
            token.close();
            return Err(SetupError::Closed);
        }
        match self.create_user(username, password, Role::admin()).await {
            Ok(user) => {
                claim.complete();
                Ok(user)
            }
            // The name was free a moment ago: someone else made that user meanwhile.
            Err(AccountError::Taken) => {
                token.close();
                Err(SetupError::Closed)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn no_users(&self) -> Result<bool, StoreError> {
        Ok(self.users.list_users().await?.is_empty())
    }

    /// Change a password and end everything the user was signed in with.
    ///
    /// # Errors
    /// [`AccountError`].
    pub async fn change_password(
        &self,
        user: UserId,
        password: Password,
    ) -> Result<(), AccountError> {
        password.check_policy()?;
        let hash = self.pool.hash(password).await?;
        if !self.users.set_password_hash(user, &hash).await? {
            return Err(AccountError::NoSuchUser);
        }
        self.logout_everywhere(user).await?;
        Ok(())
    }

    /// Change a role; a privilege change ends the user's sessions and tokens.
    ///
    /// # Errors
    /// [`AccountError`].
    pub async fn set_role(&self, user: UserId, role: &Role) -> Result<(), AccountError> {
        if !self.users.set_role(user, role).await? {
            return Err(AccountError::NoSuchUser);
        }
        self.logout_everywhere(user).await?;
        Ok(())
    }

    /// Remove a user and end everything they were signed in with.
    ///
    /// # Errors
    /// [`AccountError`].
    pub async fn remove_user(&self, user: UserId) -> Result<(), AccountError> {
        if !self.users.delete_user(user).await? {
            return Err(AccountError::NoSuchUser);
        }
        self.logout_everywhere(user).await?;
        Ok(())
    }

    /// End every session, refresh family and access token of a user. Returns how many
    /// sessions ended.
    ///
    /// # Errors
    /// When a store fails.
    pub async fn logout_everywhere(&self, user: UserId) -> Result<u64, StoreError> {
        // Tokens issued in this second are revoked too: `iat` has whole seconds.
        let mark = self.now().add_secs(1);
        self.store.revoke_issued_before(user, mark).await?;
        self.issued_before.put(user, Some(mark));
        self.store.revoke_user_families(user).await?;
        let listed = self.store.list_user_sessions(user, UnixTime(0)).await?;
        let n = self.store.delete_user_sessions(user).await?;
        for r in listed {
            self.sessions.forget(&r.key);
        }
        Ok(n)
    }

    // ----- sessions -----

    /// Start a session for `user`: a fresh id (never one the client chose). Returns the
    /// cookie value and the record.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn start_session(
        &self,
        user: &User,
        user_agent: &str,
        ip: &str,
    ) -> Result<(Zeroizing<String>, SessionRecord), StoreError> {
        let now = self.now();
        loop {
            let token = SessionToken::generate();
            let mut record = SessionRecord::new(
                &token,
                user.id,
                user.username.clone(),
                user.role.clone(),
                &self.config.sessions,
                now,
            );
            record.user_agent = user_agent.chars().take(256).collect();
            record.ip = ip.chars().take(64).collect();
            match self.store.create_session(&record).await {
                // 2^-256 odds; try a new id rather than fail.
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
                Ok(()) => {
                    let cookie = Zeroizing::new(self.keys.load().cookies.sign(&token));
                    self.sessions
                        .put(record.key.clone(), Some(Arc::new(record.clone())));
                    return Ok((cookie, record));
                }
            }
        }
    }

    /// The live session a cookie value names. The MAC is checked before any lookup;
    /// "last seen" is written when due.
    ///
    /// # Errors
    /// [`SessionError::Invalid`] for a bad, unknown, ended or expired session.
    pub async fn session(&self, cookie_value: &str) -> Result<Arc<SessionRecord>, SessionError> {
        let token = self
            .keys
            .load()
            .cookies
            .open(cookie_value)
            .ok_or(SessionError::Invalid)?;
        let key = token.key();
        let now = self.now();
        let record = match self.sessions.get(&key) {
            Some(cached) => cached,
            None => {
                let loaded = self.store.load_session(&key, now).await?.map(Arc::new);
                self.sessions.put(key.clone(), loaded.clone());
                loaded
            }
        };
        let record = record
            .filter(|r| r.is_live(now))
            .ok_or(SessionError::Invalid)?;
        if let Some((seen, idle)) = record.touch(&self.config.sessions, now) {
            if !self.store.touch_session(&key, seen, idle).await? {
                self.sessions.put(key, None);
                return Err(SessionError::Invalid);
            }
            let mut updated = (*record).clone();
            updated.last_seen = seen;
            updated.idle_deadline = idle;
            let updated = Arc::new(updated);
            self.sessions.put(key, Some(Arc::clone(&updated)));
            return Ok(updated);
        }
        Ok(record)
    }

    /// End one session (logout). Returns whether it existed.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn end_session(&self, key: &SessionKey) -> Result<bool, StoreError> {
        self.sessions.put(key.clone(), None);
        self.store.delete_session(key).await
    }

    /// A user's live sessions, newest first.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn list_sessions(&self, user: UserId) -> Result<Vec<SessionRecord>, StoreError> {
        self.store.list_user_sessions(user, self.now()).await
    }

    /// End one of a user's own sessions. False when the user has no such session (another
    /// user's session id is treated as unknown).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn revoke_session(&self, user: UserId, key: &SessionKey) -> Result<bool, StoreError> {
        let owned = self
            .store
            .list_user_sessions(user, self.now())
            .await?
            .iter()
            .any(|r| &r.key == key);
        if !owned {
            return Ok(false);
        }
        self.end_session(key).await
    }

    // ----- CSRF -----

    /// Whether `presented` is the session's CSRF token (constant time).
    pub fn check_session_csrf(&self, record: &SessionRecord, presented: &str) -> bool {
        record
            .csrf_token
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into()
    }

    /// A CSRF pair for a form shown before there is a session: the signed cookie value
    /// (`token.issued.mac`) and the token for the form. The cookie is good for
    /// [`PRE_SESSION_CSRF_TTL_SECS`] from now; show it again while it is
    /// ([`pre_session_csrf_token`](Self::pre_session_csrf_token)) so that a second tab
    /// does not break the first.
    pub fn pre_session_csrf(&self) -> (String, String) {
        let token = crate::random::opaque_token();
        let issued = self.now().secs().to_string();
        let mac =
            self.keys.load().csrf[0].mac(&[b"pre-session", token.as_bytes(), issued.as_bytes()]);
        let mut cookie = String::with_capacity(token.len() + issued.len() + 45);
        cookie.push_str(&token);
        cookie.push('.');
        cookie.push_str(&issued);
        cookie.push('.');
        b64::encode_into(&mac, &mut cookie);
        (cookie, token)
    }

    /// The form token of a pre-session cookie this server signed and that has not
    /// expired: the token to show again in a form. `None` for anything else.
    pub fn pre_session_csrf_token<'c>(&self, cookie: &'c str) -> Option<&'c str> {
        let mut fields = cookie.splitn(3, '.');
        let (token, issued, mac) = (fields.next()?, fields.next()?, fields.next()?);
        let mut tag = [0u8; 32];
        if mac.len() != 43 || b64::decode_into(mac.as_bytes(), &mut tag) != Ok(32) {
            return None;
        }
        let signed = self
            .keys
            .load()
            .csrf
            .iter()
            .any(|k| k.verify(&[b"pre-session", token.as_bytes(), issued.as_bytes()], &tag));
        if !signed {
            return None;
        }
        // Signed by us, so the time is ours: only its age is checked.
        let issued: i64 = issued.parse().ok()?;
        let age = self.now().secs().saturating_sub(issued);
        (0..PRE_SESSION_CSRF_TTL_SECS)
            .contains(&age)
            .then_some(token)
    }

    /// Whether a pre-session form token matches its signed, unexpired cookie (constant
    /// time).
    pub fn check_pre_session_csrf(&self, cookie: &str, presented: &str) -> bool {
        self.pre_session_csrf_token(cookie)
            .is_some_and(|token| bool::from(token.as_bytes().ct_eq(presented.as_bytes())))
    }

    // ----- tokens -----

    /// Issue an access token and start a refresh family for `user`.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn issue_tokens(&self, user: &User) -> Result<TokenPair, StoreError> {
        let now = self.now();
        // Read before the family is created: nothing that can fail comes after it.
        let mark = self.store.issued_before(user.id).await?;
        let family = RefreshFamily::new(user.id, &self.config.refresh, now);
        let refresh = RefreshToken::generate();
        let hash = self.keys.load().refresh.hash(&refresh);
        self.store.create_family(&family, &hash).await?;
        Ok(self.access_pair(user, refresh, mark, now))
    }

    /// The access token half of a pair, given the user's logout-everywhere `mark` (read
    /// before anything was committed; see [`Auth::refresh`]). `iat` is never earlier than
    /// the mark, so a login in the same second as a logout-everywhere is not revoked by it
    /// (marks are `now + 1`: `iat` has whole seconds). Signing only: it cannot fail.
    fn access_pair(
        &self,
        user: &User,
        refresh: RefreshToken,
        mark: Option<UnixTime>,
        now: UnixTime,
    ) -> TokenPair {
        let mut claims = Claims::new(now.add_secs(self.config.issuance.ttl_secs));
        claims.sub = Some(user.id.to_string());
        claims.username = Some(user.username.as_str().to_owned());
        claims.role = Some(user.role.as_str().to_owned());
        claims.iat = Some(mark.map_or(now, |m| m.max(now)));
        claims.jti = Some(crate::random::token_id());
        claims.iss.clone_from(&self.config.issuance.issuer);
        claims.aud = self.config.issuance.audience.iter().cloned().collect();
        let access_token = jwt::encode(&self.keys.load().ring, &claims);
        TokenPair {
            access_token,
            expires_in: self.config.issuance.ttl_secs,
            refresh_token: Zeroizing::new(refresh.to_text()),
        }
    }

    /// Exchange a refresh token for a new pair, retiring it. A retired token presented
    /// again revokes its family; a token whose user is gone is refused and its family
    /// revoked.
    ///
    /// Every store read happens before the rotation commits: once the presented token is
    /// retired, the client holds nothing else, so a failure after that point would turn its
    /// retry into a "reuse" that revokes the family. A failed read leaves the token as it
    /// was, and the client can retry with it.
    ///
    /// # Errors
    /// [`RefreshError`].
    pub async fn refresh(&self, presented: &str) -> Result<TokenPair, RefreshError> {
        let token = RefreshToken::parse(presented).ok_or(RefreshError::Invalid)?;
        let now = self.now();
        let next = RefreshToken::generate();
        let (candidates, next_hash) = {
            let keys = self.keys.load();
            (keys.refresh.candidates(&token), keys.refresh.hash(&next))
        };
        // `None`: unknown, ended, revoked or already retired. The rotation says which (and
        // revokes the family of a retired one), and nothing more is read.
        let ready = match self.store.peek_family(&candidates, now).await? {
            Some(family) => {
                let Some(user) = self.users.user_by_id(family.user_id).await? else {
                    // The user is gone: nobody may use this family again.
                    self.store.revoke_family(&family.id).await?;
                    return Err(RefreshError::Invalid);
                };
                let mark = self.store.issued_before(user.id).await?;
                Some((family.id, user, mark))
            }
            None => None,
        };
        let outcome = self
            .store
            .rotate(&candidates, &next_hash, self.config.refresh.idle_secs, now)
            .await?;
        match outcome {
            RotateOutcome::Rotated { family } => match ready {
                Some((id, user, mark)) if id == family.id => {
                    Ok(self.access_pair(&user, next, mark, now))
                }
                // Not live when peeked, yet rotated: a token never becomes live again, so
                // this needs a store that contradicts itself. Refuse rather than sign
                // without the reads.
                _ => Err(RefreshError::Invalid),
            },
            RotateOutcome::Reused { .. } => Err(RefreshError::Reused),
            RotateOutcome::Invalid => Err(RefreshError::Invalid),
        }
    }

    /// Revoke a token (RFC 7009): a refresh token ends its family; an access token (whose
    /// signature verifies) has its `jti` denied until it expires. Unknown tokens are not an
    /// error, as RFC 7009 §2.2 requires.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn revoke(&self, token: &str) -> Result<(), StoreError> {
        if let Some(refresh) = RefreshToken::parse(token) {
            let candidates = self.keys.load().refresh.candidates(&refresh);
            self.store.revoke_by_token(&candidates).await?;
            return Ok(());
        }
        let verified = {
            let keys = self.keys.load();
            jwt::verify(&keys.ring, &self.config.validation, token, self.now())
        };
        if let Ok(v) = verified
            && let Some(jti) = v.claims.jti
        {
            self.store.deny_jti(&jti, v.claims.exp).await?;
            self.denied.put(jti, true);
        }
        Ok(())
    }

    /// Verify a bearer token: the JWT (signature first, then claims), then revocation (the
    /// `jti` denylist and the user's logout-everywhere mark).
    ///
    /// # Errors
    /// [`BearerError`].
    pub async fn verify_bearer(&self, token: &str) -> Result<Principal, BearerError> {
        let now = self.now();
        let claims = {
            let keys = self.keys.load();
            jwt::verify(&keys.ring, &self.config.validation, token, now)?.claims
        };
        self.principal_from_claims(claims, now).await
    }

    async fn principal_from_claims(
        &self,
        claims: Claims,
        now: UnixTime,
    ) -> Result<Principal, BearerError> {
        let user_id = claims.sub.as_deref().and_then(|s| s.parse().ok());
        if let Some(jti) = &claims.jti {
            let denied = match self.denied.get(jti) {
                Some(d) => d,
                None => {
                    let d = self.store.is_jti_denied(jti, now).await?;
                    self.denied.put(jti.clone(), d);
                    d
                }
            };
            if denied {
                return Err(BearerError::Revoked);
            }
        }
        if let Some(id) = user_id {
            let mark = match self.issued_before.get(&id) {
                Some(m) => m,
                None => {
                    let m = self.store.issued_before(id).await?;
                    self.issued_before.put(id, m);
                    m
                }
            };
            if let Some(mark) = mark
                && claims.iat.is_none_or(|iat| iat < mark)
            {
                return Err(BearerError::Revoked);
            }
        }
        let username = claims
            .username
            .or_else(|| claims.sub.clone())
            .ok_or(BearerError::NoSubject)?;
        Ok(Principal {
            user_id,
            username,
            role: claims.role.unwrap_or_default(),
            method: Method::Bearer {
                jti: claims.jti,
                exp: claims.exp,
            },
        })
    }

    /// The principal of a live session.
    pub fn principal_from_session(record: &SessionRecord) -> Principal {
        Principal {
            user_id: Some(record.user_id),
            username: record.username.as_str().to_owned(),
            role: record.role.as_str().to_owned(),
            method: Method::Session {
                key: record.key.clone(),
                csrf_token: record.csrf_token.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::keys::SecretKey;
    use crate::memory::MemoryStore;
    use crate::password::{HashParams, Hasher};
    use crate::refresh::{FamilyId, RefreshHash};
    use crate::store::{RefreshStore, RevocationStore, SessionStore, StoreResult, ThrottleStore};

    const T0: UnixTime = UnixTime(1_800_000_000);
    const PW: &str = "correct horse battery";

    struct Fixture {
        auth: Auth,
        clock: ManualClock,
        store: Arc<MemoryStore>,
        key: SecretKey,
    }

    fn fixture() -> Fixture {
        let clock = ManualClock::new(T0);
        let store = Arc::new(MemoryStore::new());
        let pool = HashingPool::new(
            Hasher::new(HashParams {
                m_cost_kib: 64,
                t_cost: 1,
                p_cost: 1,
            })
            .unwrap(),
            2,
            16,
        )
        .unwrap();
        let (key, _) = SecretKey::generate(32).unwrap();
        let config = AuthConfig {
            cache_ttl: Duration::ZERO,
            ..AuthConfig::default()
        };
        let auth = Auth::new(
            KeyRing::single(key.clone()),
            config,
            store.clone(),
            store.clone(),
            pool,
            Arc::new(clock.clone()),
        );
        Fixture {
            auth,
            clock,
            store,
            key,
        }
    }

    async fn alice(f: &Fixture) -> User {
        f.auth
            .create_user("alice", Password::new(PW), Role::user())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn login_success_wrong_and_unknown_look_alike() {
        let f = fixture();
        let a = alice(&f).await;
        let ok = f
            .auth
            .login("alice", Password::new(PW), "1.2.3.4")
            .await
            .unwrap();
        assert_eq!(ok.id, a.id);
        let wrong = f
            .auth
            .login("alice", Password::new("nope nope"), "1.2.3.4")
            .await;
        let unknown = f.auth.login("mallory", Password::new(PW), "1.2.3.4").await;
        let bad_name = f
            .auth
            .login("<bad name>", Password::new(PW), "1.2.3.4")
            .await;
        for e in [wrong, unknown, bad_name] {
            assert!(matches!(e, Err(LoginError::Invalid)), "{e:?}");
        }
    }

    #[tokio::test]
    async fn throttles_per_account_then_recovers() {
        let f = fixture();
        alice(&f).await;
        for _ in 0..5 {
            let e = f
                .auth
                .login("alice", Password::new("wrong pass"), "10.0.0.1")
                .await;
            assert!(matches!(e, Err(LoginError::Invalid)));
        }
        // Even the right password is refused while throttled, from any address.
        let e = f.auth.login("alice", Password::new(PW), "10.0.0.2").await;
        let Err(LoginError::Throttled { retry_after }) = e else {
            panic!("expected throttling, got {e:?}")
        };
        assert_eq!(retry_after, 15 * 60);
        f.clock.advance(15 * 60);
        assert!(
            f.auth
                .login("alice", Password::new(PW), "10.0.0.2")
                .await
                .is_ok()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_parallel_burst_gets_no_more_guesses_than_the_limit() {
        let f = fixture();
        alice(&f).await;
        let before = f.auth.pool().verifications();
        let auth = Arc::new(f.auth);
        let mut burst = tokio::task::JoinSet::new();
        for i in 0..16 {
            let auth = Arc::clone(&auth);
            burst.spawn(async move {
                auth.login(
                    "alice",
                    Password::new(format!("guess number {i}")),
                    "10.1.1.1",
                )
                .await
            });
        }
        let mut throttled = 0;
        while let Some(outcome) = burst.join_next().await {
            match outcome.unwrap() {
                Err(LoginError::Throttled { .. }) => throttled += 1,
                Err(LoginError::Invalid) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(throttled, 11);
        assert_eq!(auth.pool().verifications() - before, 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_correct_logins_all_succeed() {
        let f = fixture();
        alice(&f).await;
        let auth = Arc::new(f.auth);
        let mut logins = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let auth = Arc::clone(&auth);
            logins.spawn(async move { auth.login("alice", Password::new(PW), "10.2.2.2").await });
        }
        while let Some(outcome) = logins.join_next().await {
            assert!(outcome.unwrap().is_ok());
        }
    }

    #[tokio::test]
    async fn throttles_per_address_across_accounts() {
        let f = fixture();
        for i in 0..50 {
            let _ = f
                .auth
                .login(&format!("user{i}"), Password::new("wrong pass"), "10.9.9.9")
                .await;
        }
        let e = f.auth.login("someone", Password::new(PW), "10.9.9.9").await;
        assert!(matches!(e, Err(LoginError::Throttled { .. })), "{e:?}");
        let other = f.auth.login("someone", Password::new(PW), "10.9.9.8").await;
        assert!(matches!(other, Err(LoginError::Invalid)), "{other:?}");
    }

    #[tokio::test]
    async fn session_lifecycle() {
        let f = fixture();
        let a = alice(&f).await;
        let (cookie, record) = f.auth.start_session(&a, "ua", "1.2.3.4").await.unwrap();
        let loaded = f.auth.session(&cookie).await.unwrap();
        assert_eq!(loaded.key, record.key);
        // Idle: 30 minutes without use ends it.
        f.clock.advance(29 * 60);
        assert!(f.auth.session(&cookie).await.is_ok());
        f.clock.advance(29 * 60);
        assert!(
            f.auth.session(&cookie).await.is_ok(),
            "the touch moved the idle deadline"
        );
        f.clock.advance(31 * 60);
        assert!(matches!(
            f.auth.session(&cookie).await,
            Err(SessionError::Invalid)
        ));
    }

    #[tokio::test]
    async fn session_absolute_deadline() {
        let f = fixture();
        let a = alice(&f).await;
        let (cookie, _) = f.auth.start_session(&a, "", "").await.unwrap();
        for _ in 0..(12 * 60 / 20) - 1 {
            f.clock.advance(20 * 60);
            assert!(f.auth.session(&cookie).await.is_ok());
        }
        f.clock.advance(20 * 60);
        assert!(matches!(
            f.auth.session(&cookie).await,
            Err(SessionError::Invalid)
        ));
    }

    #[tokio::test]
    async fn logout_replay_and_tampered_cookie() {
        let f = fixture();
        let a = alice(&f).await;
        let (cookie, record) = f.auth.start_session(&a, "", "").await.unwrap();
        assert!(f.auth.end_session(&record.key).await.unwrap());
        assert!(matches!(
            f.auth.session(&cookie).await,
            Err(SessionError::Invalid)
        ));
        let mut forged = cookie.to_string();
        forged.replace_range(0..1, if forged.starts_with('A') { "B" } else { "A" });
        assert!(matches!(
            f.auth.session(&forged).await,
            Err(SessionError::Invalid)
        ));
    }

    #[tokio::test]
    async fn cached_session_sees_local_logout_at_once() {
        let f = fixture();
        let auth = Auth::new(
            KeyRing::single(f.key.clone()),
            AuthConfig::default(),
            f.store.clone(),
            f.store.clone(),
            f.auth.pool.clone(),
            Arc::new(f.clock.clone()),
        );
        let a = auth
            .create_user("bob", Password::new(PW), Role::user())
            .await
            .unwrap();
        let (cookie, record) = auth.start_session(&a, "", "").await.unwrap();
        assert!(auth.session(&cookie).await.is_ok());
        auth.end_session(&record.key).await.unwrap();
        assert!(matches!(
            auth.session(&cookie).await,
            Err(SessionError::Invalid)
        ));
    }

    #[tokio::test]
    async fn bearer_refresh_rotation_and_reuse() {
        let f = fixture();
        let a = alice(&f).await;
        let pair = f.auth.issue_tokens(&a).await.unwrap();
        let p = f.auth.verify_bearer(&pair.access_token).await.unwrap();
        assert_eq!(p.username, "alice");
        assert_eq!(p.user_id, Some(a.id));
        assert_eq!(pair.expires_in, 15 * 60);

        let next = f.auth.refresh(&pair.refresh_token).await.unwrap();
        assert!(f.auth.verify_bearer(&next.access_token).await.is_ok());
        // The retired token again: reuse, and the family's live token dies too.
        assert!(matches!(
            f.auth.refresh(&pair.refresh_token).await,
            Err(RefreshError::Reused)
        ));
        assert!(matches!(
            f.auth.refresh(&next.refresh_token).await,
            Err(RefreshError::Invalid)
        ));
        assert!(matches!(
            f.auth.refresh("garbage").await,
            Err(RefreshError::Invalid)
        ));
    }

    /// A memory store that fails one named operation with [`StoreError::Unavailable`]
    /// while told to (the store outage a refresh must survive).
    #[derive(Default)]
    struct Failing {
        inner: MemoryStore,
        failing: std::sync::Mutex<Option<&'static str>>,
    }

    impl Failing {
        fn fail(&self, op: Option<&'static str>) {
            *self.failing.lock().unwrap() = op;
        }

        fn check(&self, op: &'static str) -> StoreResult<()> {
            if *self.failing.lock().unwrap() == Some(op) {
                Err(crate::store::unavailable(std::io::Error::other(op)))
            } else {
                Ok(())
            }
        }
    }

    #[async_trait::async_trait]
    impl UserStore for Failing {
        async fn create_user(&self, user: NewUser) -> StoreResult<User> {
            self.check("create_user")?;
            self.inner.create_user(user).await
        }
        async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
            self.check("user_by_name")?;
            self.inner.user_by_name(username).await
        }
        async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
            self.check("user_by_id")?;
            self.inner.user_by_id(id).await
        }
        async fn list_users(&self) -> StoreResult<Vec<User>> {
            self.inner.list_users().await
        }
        async fn set_password_hash(
            &self,
            id: UserId,
            hash: &crate::password::PasswordHash,
        ) -> StoreResult<bool> {
            self.inner.set_password_hash(id, hash).await
        }
        async fn set_role(&self, id: UserId, role: &Role) -> StoreResult<bool> {
            self.inner.set_role(id, role).await
        }
        async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
            self.inner.delete_user(id).await
        }
        async fn ping(&self) -> StoreResult<()> {
            self.inner.ping().await
        }
    }

    #[async_trait::async_trait]
    impl SessionStore for Failing {
        async fn create_session(&self, record: &SessionRecord) -> StoreResult<()> {
            self.inner.create_session(record).await
        }
        async fn load_session(
            &self,
            key: &SessionKey,
            now: UnixTime,
        ) -> StoreResult<Option<SessionRecord>> {
            self.inner.load_session(key, now).await
        }
        async fn touch_session(
            &self,
            key: &SessionKey,
            last_seen: UnixTime,
            idle_deadline: UnixTime,
        ) -> StoreResult<bool> {
            self.inner
                .touch_session(key, last_seen, idle_deadline)
                .await
        }
        async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
            self.inner.delete_session(key).await
        }
        async fn list_user_sessions(
            &self,
            user: UserId,
            now: UnixTime,
        ) -> StoreResult<Vec<SessionRecord>> {
            self.inner.list_user_sessions(user, now).await
        }
        async fn delete_user_sessions(&self, user: UserId) -> StoreResult<u64> {
            self.inner.delete_user_sessions(user).await
        }
        async fn sweep_sessions(&self, now: UnixTime) -> StoreResult<u64> {
            self.inner.sweep_sessions(now).await
        }
        async fn ping_sessions(&self) -> StoreResult<()> {
            self.inner.ping_sessions().await
        }
    }

    #[async_trait::async_trait]
    impl RefreshStore for Failing {
        async fn create_family(
            &self,
            family: &RefreshFamily,
            first: &RefreshHash,
        ) -> StoreResult<()> {
            self.check("create_family")?;
            self.inner.create_family(family, first).await
        }
        async fn peek_family(
            &self,
            presented: &[RefreshHash],
            now: UnixTime,
        ) -> StoreResult<Option<RefreshFamily>> {
            self.check("peek_family")?;
            self.inner.peek_family(presented, now).await
        }
        async fn rotate(
            &self,
            presented: &[RefreshHash],
            next: &RefreshHash,
            idle_secs: i64,
            now: UnixTime,
        ) -> StoreResult<RotateOutcome> {
            self.check("rotate")?;
            self.inner.rotate(presented, next, idle_secs, now).await
        }
        async fn revoke_by_token(&self, presented: &[RefreshHash]) -> StoreResult<bool> {
            self.inner.revoke_by_token(presented).await
        }
        async fn revoke_family(&self, id: &FamilyId) -> StoreResult<bool> {
            self.check("revoke_family")?;
            self.inner.revoke_family(id).await
        }
        async fn revoke_user_families(&self, user: UserId) -> StoreResult<u64> {
            self.inner.revoke_user_families(user).await
        }
        async fn sweep_families(&self, now: UnixTime) -> StoreResult<u64> {
            self.inner.sweep_families(now).await
        }
    }

    #[async_trait::async_trait]
    impl RevocationStore for Failing {
        async fn deny_jti(&self, jti: &str, until: UnixTime) -> StoreResult<()> {
            self.inner.deny_jti(jti, until).await
        }
        async fn is_jti_denied(&self, jti: &str, now: UnixTime) -> StoreResult<bool> {
            self.inner.is_jti_denied(jti, now).await
        }
        async fn revoke_issued_before(&self, user: UserId, before: UnixTime) -> StoreResult<()> {
            self.inner.revoke_issued_before(user, before).await
        }
        async fn issued_before(&self, user: UserId) -> StoreResult<Option<UnixTime>> {
            self.check("issued_before")?;
            self.inner.issued_before(user).await
        }
    }

    #[async_trait::async_trait]
    impl ThrottleStore for Failing {
        async fn hit(
            &self,
            key: &str,
            window_secs: i64,
            now: UnixTime,
        ) -> StoreResult<(u64, UnixTime)> {
            self.check("hit")?;
            self.inner.hit(key, window_secs, now).await
        }
        async fn peek(&self, key: &str, now: UnixTime) -> StoreResult<(u64, UnixTime)> {
            self.check("peek")?;
            self.inner.peek(key, now).await
        }
        async fn clear(&self, key: &str) -> StoreResult<()> {
            self.inner.clear(key).await
        }
    }

    /// An `Auth` over a [`Failing`] store, and the store.
    fn failing_fixture() -> (Auth, Arc<Failing>) {
        let f = fixture();
        let store = Arc::new(Failing::default());
        let auth = Auth::new(
            KeyRing::single(f.key.clone()),
            f.auth.config.clone(),
            store.clone(),
            store.clone(),
            f.auth.pool.clone(),
            Arc::new(f.clock.clone()),
        );
        (auth, store)
    }

    #[tokio::test]
    async fn a_failed_read_during_refresh_leaves_the_token_usable() {
        for op in ["peek_family", "user_by_id", "issued_before", "rotate"] {
            let (auth, store) = failing_fixture();
            let a = auth
                .create_user("alice", Password::new(PW), Role::user())
                .await
                .unwrap();
            let pair = auth.issue_tokens(&a).await.unwrap();

            store.fail(Some(op));
            let e = auth.refresh(&pair.refresh_token).await.unwrap_err();
            assert!(
                matches!(&e, RefreshError::Store(s) if s.is_unavailable()),
                "{op}: {e:?}"
            );

            // The client retries with the same token: not a reuse, the family lives on.
            store.fail(None);
            let next = auth
                .refresh(&pair.refresh_token)
                .await
                .unwrap_or_else(|e| panic!("{op}: the retry failed: {e:?}"));
            assert!(auth.verify_bearer(&next.access_token).await.is_ok(), "{op}");
            assert!(auth.refresh(&next.refresh_token).await.is_ok(), "{op}");
        }
    }

    #[tokio::test]
    async fn a_failed_read_during_issue_creates_no_family() {
        let (auth, store) = failing_fixture();
        let a = auth
            .create_user("alice", Password::new(PW), Role::user())
            .await
            .unwrap();
        store.fail(Some("issued_before"));
        let e = auth.issue_tokens(&a).await.unwrap_err();
        assert!(e.is_unavailable(), "{e:?}");
        store.fail(None);
        // Long after any family would have ended, the sweep finds none to remove.
        assert_eq!(
            store
                .inner
                .sweep_families(T0.add_secs(1 << 30))
                .await
                .unwrap(),
            0
        );
        let pair = auth.issue_tokens(&a).await.unwrap();
        assert!(auth.refresh(&pair.refresh_token).await.is_ok());
    }

    #[tokio::test]
    async fn refresh_for_a_removed_user_is_refused_and_ends_the_family() {
        let (auth, store) = failing_fixture();
        let a = auth
            .create_user("alice", Password::new(PW), Role::user())
            .await
            .unwrap();
        let pair = auth.issue_tokens(&a).await.unwrap();
        // Removed behind the service's back (e.g. by hand in the database): its families
        // are still there.
        assert!(store.inner.delete_user(a.id).await.unwrap());

        // Ending the family failed: refused, and nothing changed.
        store.fail(Some("revoke_family"));
        let e = auth.refresh(&pair.refresh_token).await.unwrap_err();
        assert!(
            matches!(&e, RefreshError::Store(s) if s.is_unavailable()),
            "{e:?}"
        );
        store.fail(None);
        assert!(matches!(
            auth.refresh(&pair.refresh_token).await,
            Err(RefreshError::Invalid)
        ));
        // The family is revoked (not merely left with a retired token): presenting the
        // token again is still plainly invalid, never a "reuse".
        let candidates = auth
            .keys
            .load()
            .refresh
            .candidates(&RefreshToken::parse(&pair.refresh_token).unwrap());
        assert_eq!(store.peek_family(&candidates, T0).await.unwrap(), None);
        assert!(matches!(
            auth.refresh(&pair.refresh_token).await,
            Err(RefreshError::Invalid)
        ));
    }

    #[tokio::test]
    async fn access_token_expires_and_revokes() {
        let f = fixture();
        let a = alice(&f).await;
        let pair = f.auth.issue_tokens(&a).await.unwrap();
        f.auth.revoke(&pair.access_token).await.unwrap();
        assert!(matches!(
            f.auth.verify_bearer(&pair.access_token).await,
            Err(BearerError::Revoked)
        ));
        let pair = f.auth.issue_tokens(&a).await.unwrap();
        f.clock.advance(15 * 60 + 30);
        let e = f.auth.verify_bearer(&pair.access_token).await.unwrap_err();
        assert!(matches!(&e, BearerError::Jwt(j) if j.is_expired()), "{e:?}");
        // Revoking a refresh token ends its family; unknown tokens are fine (RFC 7009).
        f.auth.revoke(&pair.refresh_token).await.unwrap();
        assert!(matches!(
            f.auth.refresh(&pair.refresh_token).await,
            Err(RefreshError::Invalid)
        ));
        f.auth.revoke("not a token").await.unwrap();
    }

    #[tokio::test]
    async fn logout_everywhere_ends_all_but_not_the_next_login() {
        let f = fixture();
        let a = alice(&f).await;
        let pair = f.auth.issue_tokens(&a).await.unwrap();
        let (c1, _) = f.auth.start_session(&a, "", "").await.unwrap();
        let (c2, _) = f.auth.start_session(&a, "", "").await.unwrap();
        assert_eq!(f.auth.logout_everywhere(a.id).await.unwrap(), 2);
        assert!(f.auth.session(&c1).await.is_err());
        assert!(f.auth.session(&c2).await.is_err());
        assert!(matches!(
            f.auth.verify_bearer(&pair.access_token).await,
            Err(BearerError::Revoked)
        ));
        assert!(f.auth.refresh(&pair.refresh_token).await.is_err());
        // A login in the same second still works.
        let again = f.auth.issue_tokens(&a).await.unwrap();
        assert!(f.auth.verify_bearer(&again.access_token).await.is_ok());
        let (c3, _) = f.auth.start_session(&a, "", "").await.unwrap();
        assert!(f.auth.session(&c3).await.is_ok());
    }

    #[tokio::test]
    async fn account_changes_end_sessions() {
        let f = fixture();
        let a = alice(&f).await;
        let (c, _) = f.auth.start_session(&a, "", "").await.unwrap();
        f.auth
            .change_password(a.id, Password::new("a brand new pass"))
            .await
            .unwrap();
        assert!(f.auth.session(&c).await.is_err());
        assert!(f.auth.login("alice", Password::new(PW), "x").await.is_err());
        assert!(
            f.auth
                .login("alice", Password::new("a brand new pass"), "x")
                .await
                .is_ok()
        );

        let (c, _) = f.auth.start_session(&a, "", "").await.unwrap();
        f.auth.set_role(a.id, &Role::admin()).await.unwrap();
        assert!(f.auth.session(&c).await.is_err());

        let (c, _) = f.auth.start_session(&a, "", "").await.unwrap();
        f.auth.remove_user(a.id).await.unwrap();
        assert!(f.auth.session(&c).await.is_err());
        assert!(matches!(
            f.auth.remove_user(a.id).await,
            Err(AccountError::NoSuchUser)
        ));
        assert!(matches!(
            f.auth
                .create_user("x", Password::new("short"), Role::user())
                .await,
            Err(AccountError::Password(PasswordError::TooShort))
        ));
    }

    /// An `Auth` like the fixture's, allowing `limit` registrations per address.
    fn registration_fixture(limit: u64) -> Fixture {
        let mut f = fixture();
        let mut config = f.auth.config.clone();
        config.throttle.registrations_per_address = limit;
        f.auth = Auth::new(
            KeyRing::single(f.key.clone()),
            config,
            f.store.clone(),
            f.store.clone(),
            f.auth.pool.clone(),
            Arc::new(f.clock.clone()),
        );
        f
    }

    #[tokio::test]
    async fn registration_is_throttled_per_address_before_hashing() {
        let f = registration_fixture(3);
        let reg = |name: &'static str, pw: &'static str, addr: &'static str| {
            f.auth.register(name, Password::new(pw), Role::user(), addr)
        };
        // Every attempt counts: a success, a taken name, a refused password.
        assert!(reg("alice", PW, "10.3.3.3").await.is_ok());
        assert!(matches!(
            reg("alice", PW, "10.3.3.3").await,
            Err(AccountError::Taken)
        ));
        assert!(matches!(
            reg("bob", "short", "10.3.3.3").await,
            Err(AccountError::Password(PasswordError::TooShort))
        ));
        let hashes = f.auth.pool().hashes();
        let e = reg("carol", PW, "10.3.3.3").await;
        let Err(AccountError::Throttled { retry_after }) = e else {
            panic!("expected throttling, got {e:?}")
        };
        assert_eq!(retry_after, 15 * 60);
        assert_eq!(f.auth.pool().hashes(), hashes, "refused before hashing");
        assert!(f.store.user_by_name("carol").await.unwrap().is_none());
        // Another address is not affected; the CLI's create_user is never throttled.
        assert!(reg("carol", PW, "10.3.3.4").await.is_ok());
        assert!(
            f.auth
                .create_user("dave", Password::new(PW), Role::user())
                .await
                .is_ok()
        );
        // The window ends.
        f.clock.advance(15 * 60);
        assert!(reg("erin", PW, "10.3.3.3").await.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_parallel_registration_burst_gets_no_more_hashes_than_the_limit() {
        let f = registration_fixture(5);
        let before = f.auth.pool().hashes();
        let auth = Arc::new(f.auth);
        let mut burst = tokio::task::JoinSet::new();
        for i in 0..16 {
            let auth = Arc::clone(&auth);
            burst.spawn(async move {
                auth.register(
                    &format!("user{i}"),
                    Password::new(PW),
                    Role::user(),
                    "10.4.4.4",
                )
                .await
            });
        }
        let (mut created, mut throttled) = (0, 0);
        while let Some(outcome) = burst.join_next().await {
            match outcome.unwrap() {
                Ok(_) => created += 1,
                Err(AccountError::Throttled { .. }) => throttled += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((created, throttled), (5, 11));
        assert_eq!(auth.pool().hashes() - before, 5);
    }

    #[tokio::test]
    async fn duplicate_user_is_taken() {
        let f = fixture();
        alice(&f).await;
        let e = f
            .auth
            .create_user("alice", Password::new(PW), Role::user())
            .await;
        assert!(matches!(e, Err(AccountError::Taken)), "{e:?}");
    }

    #[tokio::test]
    async fn revoke_session_only_own() {
        let f = fixture();
        let a = alice(&f).await;
        let b = f
            .auth
            .create_user("bob", Password::new(PW), Role::user())
            .await
            .unwrap();
        let (_, rb) = f.auth.start_session(&b, "", "").await.unwrap();
        assert!(!f.auth.revoke_session(a.id, &rb.key).await.unwrap());
        assert_eq!(f.auth.list_sessions(b.id).await.unwrap().len(), 1);
        assert!(f.auth.revoke_session(b.id, &rb.key).await.unwrap());
        assert!(f.auth.list_sessions(b.id).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn rotation_keeps_sessions_and_tokens_removal_ends_them() {
        let f = fixture();
        let a = alice(&f).await;
        let (cookie, _) = f.auth.start_session(&a, "", "").await.unwrap();
        let pair = f.auth.issue_tokens(&a).await.unwrap();
        let (new, _) = SecretKey::generate(32).unwrap();
        f.auth
            .set_keys(KeyRing::new(new.clone(), vec![f.key.clone()]).unwrap());
        assert!(f.auth.session(&cookie).await.is_ok());
        assert!(f.auth.verify_bearer(&pair.access_token).await.is_ok());
        let next = f.auth.refresh(&pair.refresh_token).await.unwrap();
        // Emergency rotation: the old key leaves the ring.
        f.auth.set_keys(KeyRing::single(new));
        assert!(f.auth.session(&cookie).await.is_err());
        assert!(f.auth.verify_bearer(&pair.access_token).await.is_err());
        // Made after the rotation, under the new key: still good.
        assert!(f.auth.verify_bearer(&next.access_token).await.is_ok());
    }

    #[tokio::test]
    async fn csrf_tokens() {
        let f = fixture();
        let (cookie, token) = f.auth.pre_session_csrf();
        assert!(f.auth.check_pre_session_csrf(&cookie, &token));
        assert!(!f.auth.check_pre_session_csrf(&cookie, "other"));
        let (other_cookie, _) = f.auth.pre_session_csrf();
        assert!(!f.auth.check_pre_session_csrf(&other_cookie, &token));
        let forged = format!("{token}.{}", "A".repeat(43));
        assert!(!f.auth.check_pre_session_csrf(&forged, &token));
        // The cookie is shown again while it is good, and expires.
        assert_eq!(f.auth.pre_session_csrf_token(&cookie), Some(token.as_str()));
        let (issued_token, rest) = cookie.split_once('.').unwrap();
        let (issued, mac) = rest.split_once('.').unwrap();
        let moved = format!(
            "{issued_token}.{}.{mac}",
            issued.parse::<i64>().unwrap() + 1
        );
        assert_eq!(
            f.auth.pre_session_csrf_token(&moved),
            None,
            "the time is signed"
        );
        f.clock.advance(PRE_SESSION_CSRF_TTL_SECS - 1);
        assert!(f.auth.check_pre_session_csrf(&cookie, &token));
        f.clock.advance(1);
        assert_eq!(f.auth.pre_session_csrf_token(&cookie), None);
        assert!(!f.auth.check_pre_session_csrf(&cookie, &token));
        let a = alice(&f).await;
        let (_, record) = f.auth.start_session(&a, "", "").await.unwrap();
        assert!(
            f.auth
                .check_session_csrf(&record, &record.csrf_token.clone())
        );
        assert!(!f.auth.check_session_csrf(&record, &token));
    }
}
