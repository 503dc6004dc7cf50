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

mod accounts;
mod assertion;
mod builder;
mod cache;
mod config;
mod csrf;
mod error;
mod principal;
mod sessions;
mod setup;
#[cfg(test)]
mod testkit;
mod tokens;

pub use builder::{AuthBuilder, BuildError, DEFAULT_HASHING_QUEUE};
pub use config::{
    ATTEMPT_LEASE_SECS, AuthConfig, DEFAULT_REGISTRATIONS_PER_ADDRESS, ThrottlePolicy,
};
pub use csrf::PRE_SESSION_CSRF_TTL_SECS;
pub use error::{AccountError, BearerError, LoginError, RefreshError, SessionError};
pub use principal::{Method, Principal, TokenPair};

use std::fmt;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;

use crate::clock::{Clock, UnixTime};
use crate::jwt::TokenKeys;
use crate::keys::{KeyRing, Purpose, Subkey};
use crate::password::{HashingPool, HashingStats};
use crate::refresh::RefreshHasher;
use crate::session::{CookieSigner, SessionKey, SessionRecord};
use crate::setup::SetupToken;
use crate::store::{EphemeralStore, StoreError, UserStore};
use crate::user::UserId;

use cache::TtlCache;

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

/// The authentication service.
pub struct Auth {
    keys: ArcSwap<Keys>,
    /// The asymmetric signer and public keys, and whether HS256 verifies (default: HS256
    /// only); swapped on reload like `keys`.
    token_keys: ArcSwap<TokenKeys>,
    config: AuthConfig,
    users: Arc<dyn UserStore>,
    store: Arc<dyn EphemeralStore>,
    pool: HashingPool,
    clock: Arc<dyn Clock>,
    sessions: TtlCache<SessionKey, Option<Arc<SessionRecord>>>,
    issued_before: TtlCache<UserId, Option<UnixTime>>,
    denied: TtlCache<String, bool>,
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
            token_keys: ArcSwap::from_pointee(TokenKeys::default()),
            users,
            store,
            pool,
            clock,
            sessions: TtlCache::new(ttl, 100_000),
            issued_before: TtlCache::new(ttl, 100_000),
            denied: TtlCache::new(ttl, 100_000),
            setup: OnceLock::new(),
            config,
        }
    }

    /// Replace the key ring (SIGHUP). Requests in flight finish with the ring they began
    /// with; nothing is dropped.
    pub fn set_keys(&self, ring: KeyRing) {
        self.keys.store(Arc::new(Keys::new(ring)));
    }

    /// Replace the access-token keys: an EdDSA or ES256 signer, the public keys that
    /// verify, whether HS256 tokens from the ring still do (SIGHUP, like
    /// [`Auth::set_keys`]).
    pub fn set_token_keys(&self, keys: TokenKeys) {
        self.token_keys.store(Arc::new(keys));
    }

    /// The access-token keys in use (what the JWK Set publishes).
    pub fn token_keys(&self) -> Arc<TokenKeys> {
        self.token_keys.load_full()
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

    /// The key ring as Flask session-cookie signing keys for `salt`
    /// ([`crate::flask::cookie`]). Crate-private: raw key bytes never leave the engine.
    pub(crate) fn flask_cookie_keys(&self, salt: &str) -> crate::flask::cookie::CookieKeys {
        crate::flask::cookie::CookieKeys::from_ring(&self.keys.load().ring, salt)
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// The current time.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Whether the user store and the session store answer (`/readyz`).
    pub async fn readiness(&self) -> Readiness {
        Readiness {
            users: self.users.ping().await,
            sessions: self.store.ping_sessions().await,
        }
    }

    /// The password hashing pool's queue and counters (metrics).
    pub fn hashing_stats(&self) -> HashingStats {
        self.pool.stats()
    }

    /// The user store. Crate-private: callers go through the service's methods, which
    /// keep its caches and its throttling in step.
    pub(crate) fn users(&self) -> &Arc<dyn UserStore> {
        &self.users
    }

    /// The session store (crate-private, as [`Auth::users`]).
    pub(crate) fn store(&self) -> &Arc<dyn EphemeralStore> {
        &self.store
    }

    /// The hashing pool (for the crate's tests).
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &HashingPool {
        &self.pool
    }
}

/// Whether each store answers ([`Auth::readiness`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct Readiness {
    /// The user store's answer.
    pub users: Result<(), StoreError>,
    /// The session store's answer.
    pub sessions: Result<(), StoreError>,
}

impl Readiness {
    /// Both stores answer.
    pub fn is_ready(&self) -> bool {
        self.users.is_ok() && self.sessions.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testkit::*;

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
}
