//! What the service's tests share: a fixture over the memory store, a user, a failing store.

pub(super) use std::sync::Arc;
pub(super) use std::time::Duration;

pub(super) use super::{Auth, AuthConfig, BearerError};
pub(super) use crate::clock::ManualClock;
pub(super) use crate::clock::UnixTime;
pub(super) use crate::keys::KeyRing;
pub(super) use crate::keys::SecretKey;
pub(super) use crate::memory::MemoryStore;
pub(super) use crate::password::{HashParams, Hasher};
pub(super) use crate::password::{HashingPool, Password};
pub(super) use crate::refresh::{FamilyId, RefreshHash};
pub(super) use crate::refresh::{RefreshFamily, RotateOutcome};
pub(super) use crate::session::{SessionKey, SessionRecord};
pub(super) use crate::store::UserStore;
pub(super) use crate::store::{
    RefreshStore, RevocationStore, SessionStore, StoreResult, ThrottleStore,
};
pub(super) use crate::user::{NewUser, Role, User, UserId};

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

/// A memory store that fails one named operation with [`StoreError::Unavailable`]
/// while told to (the store outage a refresh must survive).
#[derive(Default)]
pub(super) struct Failing {
    pub(super) inner: MemoryStore,
    pub(super) failing: std::sync::Mutex<Option<&'static str>>,
}

impl Failing {
    pub(super) fn fail(&self, op: Option<&'static str>) {
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
    async fn create_family(&self, family: &RefreshFamily, first: &RefreshHash) -> StoreResult<()> {
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
pub(super) fn failing_fixture() -> (Auth, Arc<Failing>) {
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
