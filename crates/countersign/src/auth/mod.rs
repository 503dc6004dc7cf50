//! The authentication service: what a web layer calls. Login (with throttling and
//! timing parity), sessions, token pairs with refresh rotation, bearer verification with
//! revocation, logout everywhere, account changes that end sessions, key reload.
//!
//! # Caching and propagation
//! The hot paths (a bearer token's revocation checks, a session cookie's record) read a
//! small in-process cache whose entries live `cache_ttl` (default 1 s). Changes made by
//! this process update the cache at once. When the session store has a broadcast channel
//! (Redis, PostgreSQL), every revocation is also published to every instance, which drops
//! the entries it names ([`crate::invalidation`]); while an instance is not subscribed it
//! reads the store for every request ([`CacheMode::Bypassed`]). Without a channel
//! (SQLite, memory), changes made by another process are seen within `cache_ttl`. Setting
//! it to zero reads the store on every request. The trade-off is written up in
//! `docs/decisions.md`.

mod accounts;
mod assertion;
mod builder;
mod cache;
mod config;
mod csrf;
mod error;
mod mfa;
#[cfg(feature = "passkeys")]
mod passkeys;
mod principal;
mod service;
mod sessions;
mod setup;
mod survey;
#[cfg(test)]
mod testkit;
mod tokens;

pub use builder::{AuthBuilder, BuildError, DEFAULT_HASHING_QUEUE};
pub use cache::CacheMode;
pub use config::{
    ATTEMPT_LEASE_SECS, AuthConfig, DEFAULT_REGISTRATIONS_PER_ADDRESS, ThrottlePolicy,
};
pub use csrf::PRE_SESSION_CSRF_TTL_SECS;
pub use error::{AccountError, BearerError, LoginError, MfaError, RefreshError, SessionError};
pub use mfa::{MFA_CHALLENGE_TTL_SECS, MfaChallenge, MfaMethods, TotpEnrolment};
#[cfg(feature = "passkeys")]
pub use passkeys::PasskeyRegistered;
pub use principal::{Authentication, Method, Principal, TokenPair};
pub use service::Auth;

use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;

use crate::clock::{Clock, UnixTime};
use crate::invalidation::{self, Invalidation, Receiver};
use crate::jwt::TokenKeys;
use crate::keys::KeyRing;
use crate::password::{HashingPool, HashingStats};
use crate::store::{EphemeralStore, StoreError, UserStore};

use cache::{Gate, TtlCache};
use service::Keys;

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
        let broadcast = store.broadcast();
        let gate = Gate::new(broadcast.is_some());
        Self {
            keys: ArcSwap::from_pointee(Keys::new(ring)),
            token_keys: ArcSwap::from_pointee(TokenKeys::default()),
            users,
            store,
            pool,
            clock,
            sessions: TtlCache::new(ttl, 100_000, Arc::clone(&gate)),
            issued_before: TtlCache::new(ttl, 100_000, Arc::clone(&gate)),
            denied: TtlCache::new(ttl, 100_000, Arc::clone(&gate)),
            broadcast,
            gate,
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

    /// Whether the hot-path cache is in use, and how it learns of changes made elsewhere
    /// (`/readyz`, metrics).
    pub fn cache_mode(&self) -> CacheMode {
        self.gate.mode(self.config.cache_ttl)
    }

    /// Tell every instance (this one too) that `items` changed. A publication that fails
    /// is logged, not returned: the change is stored, and other instances' entries about
    /// it still end with their TTL.
    async fn announce(&self, items: &[Invalidation]) {
        let Some(broadcast) = &self.broadcast else {
            return;
        };
        for message in invalidation::encode(items) {
            if let Err(e) = broadcast.publish(&message).await {
                tracing::warn!(
                    error = %e,
                    "could not publish an invalidation; other instances see the change \
                     when their cache entries expire"
                );
            }
        }
    }

    fn forget_all(&self) {
        self.sessions.clear();
        self.issued_before.clear();
        self.denied.clear();
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

    /// The hashing pool (crate-private: the survey of hash classes, and tests).
    pub(crate) fn pool(&self) -> &HashingPool {
        &self.pool
    }
}

/// The listener of the session store's channel delivers here.
impl Receiver for Auth {
    fn subscribed(&self) {
        self.forget_all();
        self.gate.set_subscribed(true);
        tracing::info!("subscribed to invalidations: the hot-path cache is in use");
    }

    fn unsubscribed(&self) {
        self.gate.set_subscribed(false);
        self.forget_all();
        tracing::warn!(
            "not subscribed to invalidations: every request reads the store until the \
             subscription is back"
        );
    }

    fn received(&self, message: &str) {
        let items = invalidation::decode(message);
        self.gate.bump();
        for item in items {
            match item {
                Invalidation::Session(key) => self.sessions.forget(&key),
                Invalidation::User(id) => self.issued_before.forget(&id),
                Invalidation::Jti(jti) => self.denied.forget(&jti),
                _ => self.forget_all(),
            }
        }
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

    use crate::store::SessionStore as _;

    /// Two services over one store with a channel, as two instances over one Redis.
    fn pair(ttl: Duration) -> (Fixture, Arc<Auth>, Arc<Auth>, Arc<MemoryStore>) {
        let f = fixture();
        let store = Arc::new(MemoryStore::with_channel());
        let config = AuthConfig {
            cache_ttl: ttl,
            ..AuthConfig::default()
        };
        let make = || {
            Arc::new(Auth::new(
                KeyRing::single(f.key.clone()),
                config.clone(),
                store.clone(),
                store.clone(),
                f.auth.pool.clone(),
                Arc::new(f.clock.clone()),
            ))
        };
        let (a, b) = (make(), make());
        (f, a, b, store)
    }

    #[tokio::test]
    async fn revocations_on_one_instance_reach_the_others_cache_at_once() {
        // A TTL far longer than the test: only the messages can explain what it sees.
        let (f, a, b, store) = pair(Duration::from_secs(3600));
        assert_eq!(b.cache_mode(), CacheMode::Bypassed, "until subscribed");
        for auth in [&a, &b] {
            store.listen(&(Arc::clone(auth) as Arc<dyn Receiver>));
            assert_eq!(auth.cache_mode(), CacheMode::Subscribed);
        }
        let alice = a
            .create_user("alice", Password::new(PW), Role::user())
            .await
            .unwrap();

        // A session B has cached, ended on A.
        let (cookie, record) = a.start_session(&alice, "", "").await.unwrap();
        assert!(b.session(&cookie).await.is_ok());
        assert!(a.end_session(&record.key).await.unwrap());
        assert!(b.session(&cookie).await.is_err());

        // A token B has checked, revoked on A.
        let pair = a.issue_tokens(&alice).await.unwrap();
        assert!(b.verify_bearer(&pair.access_token).await.is_ok());
        a.revoke(&pair.access_token).await.unwrap();
        assert!(matches!(
            b.verify_bearer(&pair.access_token).await,
            Err(BearerError::Revoked)
        ));

        // Logout everywhere (and what goes through it: password and role changes,
        // removal, disabling) on A.
        for change in 0..3 {
            // Marks have whole seconds: each change comes a second after the last.
            f.clock.advance(2);
            let pair = a.issue_tokens(&alice).await.unwrap();
            let (cookie, _) = a.start_session(&alice, "", "").await.unwrap();
            assert!(b.verify_bearer(&pair.access_token).await.is_ok());
            assert!(b.session(&cookie).await.is_ok());
            match change {
                0 => {
                    a.logout_everywhere(alice.id).await.unwrap();
                }
                1 => a.set_role(alice.id, &Role::admin()).await.unwrap(),
                _ => a.disable_user(alice.id).await.unwrap(),
            }
            assert!(
                matches!(
                    b.verify_bearer(&pair.access_token).await,
                    Err(BearerError::Revoked)
                ),
                "change {change}"
            );
            assert!(b.session(&cookie).await.is_err(), "change {change}");
        }
    }

    #[tokio::test]
    async fn unsubscribed_reads_the_store_every_time_and_resubscribes() {
        let (_f, a, b, store) = pair(Duration::from_secs(3600));
        store.listen(&(Arc::clone(&b) as Arc<dyn Receiver>));
        let alice = a
            .create_user("alice", Password::new(PW), Role::user())
            .await
            .unwrap();
        let (cookie, record) = a.start_session(&alice, "", "").await.unwrap();
        assert!(b.session(&cookie).await.is_ok());
        // The connection drops: B bypasses its cache. A change nobody announces (A never
        // listened and publishes; B's subscription is gone) is seen at once.
        b.unsubscribed();
        assert_eq!(b.cache_mode(), CacheMode::Bypassed);
        assert!(store.delete_session(&record.key).await.unwrap());
        assert!(b.session(&cookie).await.is_err());
        // Back: the cache starts empty and is used again.
        b.subscribed();
        assert_eq!(b.cache_mode(), CacheMode::Subscribed);
        let (cookie, record) = a.start_session(&alice, "", "").await.unwrap();
        assert!(b.session(&cookie).await.is_ok());
        assert!(store.delete_session(&record.key).await.unwrap());
        assert!(
            b.session(&cookie).await.is_ok(),
            "unannounced, the cached record stands until its TTL"
        );
    }

    #[tokio::test]
    async fn without_a_channel_the_cache_is_local() {
        let f = fixture();
        assert_eq!(f.auth.cache_mode(), CacheMode::Off);
        let auth = Auth::new(
            KeyRing::single(f.key.clone()),
            AuthConfig::default(),
            f.store.clone(),
            f.store.clone(),
            f.auth.pool.clone(),
            Arc::new(f.clock.clone()),
        );
        assert_eq!(auth.cache_mode(), CacheMode::Local);
    }
}
