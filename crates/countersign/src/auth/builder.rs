//! Building the service: [`Auth::builder`], with sound defaults for everything but the key.

use std::fmt;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::jwt::TokenKeys;
use crate::keys::KeyRing;
use crate::memory::MemoryStore;
use crate::password::{HashParams, Hasher, HashingPool, OWASP_PARAMS, PasswordError};
use crate::store::{EphemeralStore, UserStore};

use super::{Auth, AuthConfig};

/// Password hashes that may wait for a hashing worker by default, beyond those running;
/// past them a login is refused at once ([`LoginError::Busy`](super::LoginError::Busy),
/// answered 503) rather than left to stall.
pub const DEFAULT_HASHING_QUEUE: usize = 64;

/// Why [`AuthBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The hashing pool could not be set up: argon2 refused the parameters, or a worker
    /// thread could not be started.
    #[error("the password-hashing pool could not be set up")]
    Hashing(#[source] PasswordError),
}

/// The hashing pool to use: one given, or one to start.
enum Pool {
    Given(HashingPool),
    Start {
        params: HashParams,
        workers: usize,
        queue: usize,
    },
}

/// Builds an [`Auth`]: see [`Auth::builder`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct AuthBuilder {
    ring: KeyRing,
    config: AuthConfig,
    users: Option<Arc<dyn UserStore>>,
    ephemeral: Option<Arc<dyn EphemeralStore>>,
    pool: Pool,
    clock: Arc<dyn Clock>,
    token_keys: Option<TokenKeys>,
}

impl fmt::Debug for AuthBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pool = match &self.pool {
            Pool::Given(pool) => format!("{pool:?}"),
            Pool::Start {
                params,
                workers,
                queue,
            } => format!("{params:?}, {workers} workers, queue {queue}"),
        };
        f.debug_struct("AuthBuilder")
            .field("kids", &self.ring.kids().collect::<Vec<_>>())
            .field("config", &self.config)
            .field("users", &self.users.as_ref().map_or("memory", |_| "given"))
            .field(
                "ephemeral",
                &self.ephemeral.as_ref().map_or("memory", |_| "given"),
            )
            .field("pool", &pool)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// A service signing with `ring`, with sound defaults for the rest:
    ///
    /// | part | default | setter |
    /// |---|---|---|
    /// | users, sessions, refresh tokens, revocations, throttling | one in-process [`MemoryStore`] (gone when the process ends) | [`store`](AuthBuilder::store), [`user_store`](AuthBuilder::user_store), [`ephemeral_store`](AuthBuilder::ephemeral_store) |
    /// | password hashing | argon2id with [`OWASP_PARAMS`] on one worker per CPU, [`DEFAULT_HASHING_QUEUE`] waiting | [`hash_params`](AuthBuilder::hash_params), [`hashing_workers`](AuthBuilder::hashing_workers), [`hashing_queue`](AuthBuilder::hashing_queue), [`hashing_pool`](AuthBuilder::hashing_pool) |
    /// | lifetimes, throttling, JWT rules, cache | [`AuthConfig::default`] | [`config`](AuthBuilder::config) |
    /// | time | [`SystemClock`] | [`clock`](AuthBuilder::clock) |
    /// | access-token keys | HS256 with the ring | [`token_keys`](AuthBuilder::token_keys) |
    ///
    /// # Examples
    /// ```
    /// use countersign::auth::Auth;
    /// use countersign::keys::{KeyRing, SecretKey};
    /// use countersign::password::Password;
    /// use countersign::user::Role;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// // In production: SecretKey::parse(&std::env::var("SECRET_KEY")?)?
    /// let (key, _) = SecretKey::generate(32)?;
    /// let auth = Auth::builder(KeyRing::single(key)).build()?;
    ///
    /// auth.create_user("alice", Password::new("correct horse battery"), Role::user()).await?;
    /// let alice = auth.login("alice", Password::new("correct horse battery"), "127.0.0.1").await?;
    /// let tokens = auth.issue_tokens(&alice).await?;
    /// assert_eq!(auth.verify_bearer(&tokens.access_token).await?.username, "alice");
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(ring: KeyRing) -> AuthBuilder {
        AuthBuilder {
            ring,
            config: AuthConfig::default(),
            users: None,
            ephemeral: None,
            pool: Pool::Start {
                params: OWASP_PARAMS,
                workers: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
                queue: DEFAULT_HASHING_QUEUE,
            },
            clock: Arc::new(SystemClock),
            token_keys: None,
        }
    }
}

impl AuthBuilder {
    /// Lifetimes, throttling, JWT rules and the cache (default: [`AuthConfig::default`]).
    pub fn config(mut self, config: AuthConfig) -> Self {
        self.config = config;
        self
    }

    /// One backend for users and for everything else (a SQL store, or a
    /// [`MemoryStore`] shared with a test).
    pub fn store<S>(self, store: Arc<S>) -> Self
    where
        S: UserStore + EphemeralStore + 'static,
    {
        self.user_store(store.clone()).ephemeral_store(store)
    }

    /// Where accounts live.
    pub fn user_store(mut self, users: Arc<dyn UserStore>) -> Self {
        self.users = Some(users);
        self
    }

    /// Where sessions, refresh families, revocations and throttling counters live (Redis,
    /// say, while users stay in SQL).
    pub fn ephemeral_store(mut self, store: Arc<dyn EphemeralStore>) -> Self {
        self.ephemeral = Some(store);
        self
    }

    /// argon2id's cost (default [`OWASP_PARAMS`]). Hashes made with other parameters are
    /// replaced at their user's next login.
    pub fn hash_params(mut self, params: HashParams) -> Self {
        self.start_pool(|p, _, _| *p = params);
        self
    }

    /// Hashes run at once (default: one per CPU; at least 1).
    pub fn hashing_workers(mut self, workers: usize) -> Self {
        self.start_pool(|_, w, _| *w = workers);
        self
    }

    /// Hashes that may wait beyond the running ones before a login is refused as busy
    /// (default [`DEFAULT_HASHING_QUEUE`]).
    pub fn hashing_queue(mut self, queue: usize) -> Self {
        self.start_pool(|_, _, q| *q = queue);
        self
    }

    /// A pool already running (shared with another service, say); the three hashing
    /// setters above then have no effect.
    pub fn hashing_pool(mut self, pool: HashingPool) -> Self {
        self.pool = Pool::Given(pool);
        self
    }

    fn start_pool(&mut self, set: impl FnOnce(&mut HashParams, &mut usize, &mut usize)) {
        if let Pool::Start {
            params,
            workers,
            queue,
        } = &mut self.pool
        {
            set(params, workers, queue);
        }
    }

    /// The time source (default [`SystemClock`]; tests pass a
    /// [`ManualClock`](crate::clock::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Passkeys for this relying party (default: off): see
    /// [`PasskeyConfig`](crate::mfa::passkey::PasskeyConfig). It is a field of the
    /// configuration: call it after [`config`](Self::config).
    #[cfg(feature = "passkeys")]
    pub fn passkeys(mut self, relying_party: crate::mfa::passkey::PasskeyConfig) -> Self {
        self.config.passkeys = Some(relying_party);
        self
    }

    /// Asymmetric access-token keys (default: HS256 with the ring): see
    /// [`Auth::set_token_keys`].
    pub fn token_keys(mut self, keys: TokenKeys) -> Self {
        self.token_keys = Some(keys);
        self
    }

    /// The service. The hashing workers start here.
    ///
    /// # Errors
    /// [`BuildError::Hashing`] when argon2 refuses the hash parameters or a worker thread
    /// cannot be started.
    pub fn build(self) -> Result<Arc<Auth>, BuildError> {
        let pool = match self.pool {
            Pool::Given(pool) => pool,
            Pool::Start {
                params,
                workers,
                queue,
            } => Hasher::new(params)
                .and_then(|hasher| HashingPool::new(hasher, workers, queue))
                .map_err(BuildError::Hashing)?,
        };
        let (users, ephemeral) = match (self.users, self.ephemeral) {
            (Some(users), Some(ephemeral)) => (users, ephemeral),
            (users, ephemeral) => {
                let memory = Arc::new(MemoryStore::new());
                (
                    users.unwrap_or_else(|| memory.clone()),
                    ephemeral.unwrap_or(memory),
                )
            }
        };
        let auth = Auth::new(self.ring, self.config, users, ephemeral, pool, self.clock);
        if let Some(keys) = self.token_keys {
            auth.set_token_keys(keys);
        }
        Ok(Arc::new(auth))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::LoginError;
    use crate::clock::{ManualClock, UnixTime};
    use crate::keys::SecretKey;
    use crate::password::Password;
    use crate::store::SessionStore;
    use crate::user::Role;

    const FAST: HashParams = HashParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    fn ring() -> KeyRing {
        KeyRing::single(SecretKey::generate(32).unwrap().0)
    }

    #[test]
    fn defaults() {
        let auth = Auth::builder(ring()).build().unwrap();
        assert_eq!(auth.pool().hasher().params(), OWASP_PARAMS);
        assert_eq!(auth.config().cache_ttl, AuthConfig::default().cache_ttl);
        assert_eq!(auth.config().throttle, AuthConfig::default().throttle);
        let now = SystemClock.now().secs();
        assert!((auth.now().secs() - now).abs() <= 1);
    }

    #[tokio::test]
    async fn the_default_store_holds_users_and_sessions() {
        let auth = Auth::builder(ring()).hash_params(FAST).build().unwrap();
        let pw = || Password::new("correct horse battery");
        auth.create_user("alice", pw(), Role::user()).await.unwrap();
        let alice = auth.login("alice", pw(), "192.0.2.1").await.unwrap();
        let (cookie, _) = auth.start_session(&alice, "ua", "192.0.2.1").await.unwrap();
        assert_eq!(auth.session(&cookie).await.unwrap().user_id, alice.id);
        assert!(matches!(
            auth.login("alice", Password::new("wrong password!"), "192.0.2.1")
                .await,
            Err(LoginError::Invalid)
        ));
    }

    #[tokio::test]
    async fn given_stores_clock_and_config_are_used() {
        let users = Arc::new(MemoryStore::new());
        let sessions = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(UnixTime(1_800_000_000));
        let config = AuthConfig {
            cache_ttl: std::time::Duration::ZERO,
            ..AuthConfig::default()
        };
        let auth = Auth::builder(ring())
            .user_store(users.clone())
            .ephemeral_store(sessions.clone())
            .clock(Arc::new(clock.clone()))
            .config(config)
            .hash_params(FAST)
            .hashing_workers(1)
            .hashing_queue(0)
            .build()
            .unwrap();
        assert_eq!(auth.now(), UnixTime(1_800_000_000));
        assert_eq!(auth.config().cache_ttl, std::time::Duration::ZERO);
        let alice = auth
            .create_user(
                "alice",
                Password::new("correct horse battery"),
                Role::user(),
            )
            .await
            .unwrap();
        assert!(users.user_by_name("alice").await.unwrap().is_some());
        let (_, record) = auth.start_session(&alice, "ua", "192.0.2.1").await.unwrap();
        let now = clock.now();
        assert!(
            sessions
                .load_session(&record.key, now)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            users
                .load_session(&record.key, now)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn one_store_for_both() {
        let store = Arc::new(MemoryStore::new());
        let auth = Auth::builder(ring())
            .store(store.clone())
            .hash_params(FAST)
            .build()
            .unwrap();
        let alice = auth
            .create_user(
                "alice",
                Password::new("correct horse battery"),
                Role::user(),
            )
            .await
            .unwrap();
        let (_, record) = auth.start_session(&alice, "ua", "192.0.2.1").await.unwrap();
        assert!(store.user_by_name("alice").await.unwrap().is_some());
        assert!(
            store
                .load_session(&record.key, auth.now())
                .await
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn a_given_pool_wins_over_the_hashing_setters() {
        let pool = HashingPool::new(Hasher::new(FAST).unwrap(), 1, 0).unwrap();
        let auth = Auth::builder(ring())
            .hashing_pool(pool)
            .hash_params(OWASP_PARAMS)
            .build()
            .unwrap();
        assert_eq!(auth.pool().hasher().params(), FAST);
    }

    #[test]
    fn parameters_argon2_refuses_are_an_error() {
        let err = Auth::builder(ring())
            .hash_params(HashParams {
                m_cost_kib: 1,
                t_cost: 0,
                p_cost: 0,
            })
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            BuildError::Hashing(PasswordError::Hashing(_))
        ));
        assert!(std::error::Error::source(&err).is_some());
    }
}
