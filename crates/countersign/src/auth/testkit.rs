//! What the service's tests share: a fixture over the memory store, a user, a failing store.

pub(super) use std::sync::Arc;
pub(super) use std::time::Duration;

pub(super) use super::{Auth, AuthConfig, BearerError};
pub(super) use crate::clock::{ManualClock, UnixTime};
pub(super) use crate::keys::{KeyRing, SecretKey};
pub(super) use crate::memory::MemoryStore;
pub(super) use crate::password::{HashParams, Hasher, HashingPool, Password};
pub(super) use crate::store::{RefreshStore, UserStore};
pub(super) use crate::testing::FaultyStore;
pub(super) use crate::user::{Role, User};

pub(super) const T0: UnixTime = UnixTime(1_800_000_000);
pub(super) const PW: &str = "correct horse battery";

pub(super) struct Fixture {
    pub(super) auth: Auth,
    pub(super) clock: ManualClock,
    pub(super) store: Arc<MemoryStore>,
    pub(super) key: SecretKey,
}

pub(super) fn fixture() -> Fixture {
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

pub(super) async fn alice(f: &Fixture) -> User {
    f.auth
        .create_user("alice", Password::new(PW), Role::user())
        .await
        .unwrap()
}

/// An `Auth` over a store that fails the operations a test names, and the store.
pub(super) fn failing_fixture() -> (Auth, Arc<FaultyStore<MemoryStore>>) {
    let f = fixture();
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
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

/// An `Auth` like the fixture's, allowing `limit` registrations per address.
pub(super) fn registration_fixture(limit: u64) -> Fixture {
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
