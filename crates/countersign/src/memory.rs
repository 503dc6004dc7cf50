//! The in-memory store: every trait of [`crate::store`], for tests and single-process use.
//! One mutex over plain maps: each operation is a few map updates, so the lock is held for
//! microseconds and never across an await.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use async_trait::async_trait;

use crate::attempts::{self, AttemptCounter, AttemptLimit, AttemptWindow, Reservation, Settlement};
use crate::clock::UnixTime;
use crate::invalidation::{Broadcast, Receiver};
use crate::mfa::recovery::RecoveryHash;
use crate::mfa::{Factor, FactorId, RecoveryCodeRecord};
use crate::password::PasswordHash;
use crate::refresh::{FamilyId, RefreshFamily, RefreshHash, RotateOutcome};
use crate::session::{SessionKey, SessionRecord};
use crate::store::{
    FactorStore, ImportedUser, RefreshStore, RevocationStore, SessionStore, StoreError,
    StoreResult, ThrottleStore, UserImport, UserStore,
};
use crate::user::{NewUser, Role, User, UserId};

#[derive(Default)]
struct Inner {
    next_user: i64,
    users: BTreeMap<UserId, User>,
    by_name: HashMap<String, UserId>,
    sessions: HashMap<SessionKey, SessionRecord>,
    user_sessions: HashMap<UserId, BTreeSet<SessionKey>>,
    families: HashMap<FamilyId, (RefreshFamily, bool)>,
    tokens: HashMap<RefreshHash, (FamilyId, bool)>,
    denied: HashMap<String, UnixTime>,
    issued_before: HashMap<UserId, UnixTime>,
    counters: HashMap<String, (u64, UnixTime)>,
    attempts: HashMap<String, AttemptCounter>,
    factors: BTreeMap<FactorId, Factor>,
    recovery: HashMap<UserId, Vec<RecoveryCodeRecord>>,
}

/// The in-memory store.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    channel: Option<Arc<Channel>>,
}

/// The in-process broadcast of [`MemoryStore::with_channel`]: delivers each message, at
/// once, to every receiver still alive.
#[derive(Default)]
struct Channel {
    receivers: Mutex<Vec<Weak<dyn Receiver>>>,
}

#[async_trait]
impl Broadcast for Channel {
    async fn publish(&self, message: &str) -> StoreResult<()> {
        let receivers: Vec<_> = {
            let mut g = self.receivers.lock().unwrap_or_else(|p| p.into_inner());
            g.retain(|r| r.strong_count() > 0);
            g.iter().filter_map(Weak::upgrade).collect()
        };
        for r in receivers {
            r.received(message);
        }
        Ok(())
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store with an in-process invalidation channel: several services over it
    /// (as several instances over one Redis) tell each other of revocations once each
    /// [`listen`](Self::listen)s. A service over it that does not listen never uses its
    /// cache.
    pub fn with_channel() -> Self {
        Self {
            channel: Some(Arc::default()),
            ..Self::default()
        }
    }

    /// Deliver this store's invalidations to `receiver` from now on (it is told it is
    /// subscribed at once). Does nothing for a store made without a channel. The store
    /// holds the receiver weakly.
    pub fn listen(&self, receiver: &Arc<dyn Receiver>) {
        if let Some(channel) = &self.channel {
            channel
                .receivers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Arc::downgrade(receiver));
            receiver.subscribed();
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain maps in a consistent state (every
        // operation completes its updates before anything can panic), so poisoning is
        // safe to ignore.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn remove_session(&mut self, key: &SessionKey) -> bool {
        match self.sessions.remove(key) {
            Some(r) => {
                if let Some(set) = self.user_sessions.get_mut(&r.user_id) {
                    set.remove(key);
                }
                true
            }
            None => false,
        }
    }

    fn find_token(&self, presented: &[RefreshHash]) -> Option<RefreshHash> {
        presented
            .iter()
            .find(|h| self.tokens.contains_key(*h))
            .cloned()
    }
}

/// An import into the memory store: rows are kept aside and added under one lock at
/// commit (the memory store is for tests; it does not bound memory).
struct MemoryImport<'a> {
    store: &'a MemoryStore,
    added: Vec<ImportedUser>,
    names: std::collections::HashSet<String>,
    ids: std::collections::HashSet<UserId>,
}

#[async_trait]
impl UserImport for MemoryImport<'_> {
    async fn insert(&mut self, batch: &[ImportedUser]) -> StoreResult<Vec<bool>> {
        let g = self.store.lock();
        let mut out = Vec::with_capacity(batch.len());
        for row in batch {
            let name = row.user.username.as_str();
            let taken = g.by_name.contains_key(name)
                || self.names.contains(name)
                || row
                    .id
                    .is_some_and(|id| g.users.contains_key(&id) || self.ids.contains(&id));
            if !taken {
                self.names.insert(name.to_owned());
                if let Some(id) = row.id {
                    self.ids.insert(id);
                }
                self.added.push(row.clone());
            }
            out.push(!taken);
        }
        Ok(out)
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        let mut g = self.store.lock();
        let clash = self.added.iter().any(|row| {
            g.by_name.contains_key(row.user.username.as_str())
                || row.id.is_some_and(|id| g.users.contains_key(&id))
        });
        if clash {
            return Err(StoreError::Conflict);
        }
        // Ids the store picks come after every kept one.
        if let Some(top) = self.added.iter().filter_map(|r| r.id).map(|id| id.0).max() {
            g.next_user = g.next_user.max(top);
        }
        for row in self.added {
            let id = match row.id {
                Some(id) => id,
                None => {
                    g.next_user += 1;
                    UserId(g.next_user)
                }
            };
            let u = User {
                id,
                username: row.user.username,
                role: row.user.role,
                password_hash: row.user.password_hash,
                created_at: row.user.created_at,
                disabled: false,
            };
            g.by_name.insert(u.username.as_str().to_owned(), id);
            g.users.insert(id, u);
        }
        Ok(())
    }
}

#[async_trait]
impl FactorStore for MemoryStore {
    async fn add_factor(&self, factor: &Factor) -> StoreResult<()> {
        let mut g = self.lock();
        if g.factors.contains_key(&factor.id) {
            return Err(StoreError::Conflict);
        }
        g.factors.insert(factor.id.clone(), factor.clone());
        Ok(())
    }

    async fn factor(&self, id: &FactorId) -> StoreResult<Option<Factor>> {
        Ok(self.lock().factors.get(id).cloned())
    }

    async fn user_factors(&self, user: UserId) -> StoreResult<Vec<Factor>> {
        let mut all: Vec<Factor> = self
            .lock()
            .factors
            .values()
            .filter(|f| f.user_id == user)
            .cloned()
            .collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(all)
    }

    async fn update_factor(&self, factor: &Factor) -> StoreResult<bool> {
        Ok(match self.lock().factors.get_mut(&factor.id) {
            Some(f) if f.user_id == factor.user_id => {
                f.name.clone_from(&factor.name);
                f.data.clone_from(&factor.data);
                f.confirmed = factor.confirmed;
                f.last_used_at = factor.last_used_at;
                true
            }
            _ => false,
        })
    }

    async fn advance_factor(
        &self,
        user: UserId,
        id: &FactorId,
        counter: i64,
        now: UnixTime,
    ) -> StoreResult<bool> {
        Ok(match self.lock().factors.get_mut(id) {
            Some(f) if f.user_id == user && f.counter < counter => {
                f.counter = counter;
                f.last_used_at = Some(now);
                true
            }
            _ => false,
        })
    }

    async fn remove_factor(&self, user: UserId, id: &FactorId) -> StoreResult<bool> {
        let mut g = self.lock();
        if g.factors.get(id).is_some_and(|f| f.user_id == user) {
            g.factors.remove(id);
            return Ok(true);
        }
        Ok(false)
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        hashes: &[RecoveryHash],
        now: UnixTime,
    ) -> StoreResult<()> {
        let set = hashes
            .iter()
            .map(|hash| RecoveryCodeRecord {
                hash: hash.clone(),
                created_at: now,
                used_at: None,
            })
            .collect();
        self.lock().recovery.insert(user, set);
        Ok(())
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        hash: &RecoveryHash,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let mut g = self.lock();
        let unused = g.recovery.get_mut(&user).and_then(|set| {
            set.iter_mut()
                .find(|c| c.hash == *hash && c.used_at.is_none())
        });
        Ok(match unused {
            Some(code) => {
                code.used_at = Some(now);
                true
            }
            None => false,
        })
    }

    async fn recovery_codes(&self, user: UserId) -> StoreResult<Vec<RecoveryCodeRecord>> {
        Ok(self.lock().recovery.get(&user).cloned().unwrap_or_default())
    }

    async fn remove_user_factors(&self, user: UserId) -> StoreResult<u64> {
        let mut g = self.lock();
        let before = g.factors.len();
        g.factors.retain(|_, f| f.user_id != user);
        g.recovery.remove(&user);
        Ok((before - g.factors.len()) as u64)
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        let mut g = self.lock();
        if g.by_name.contains_key(user.username.as_str()) {
            return Err(StoreError::Conflict);
        }
        g.next_user += 1;
        let id = UserId(g.next_user);
        let u = User {
            id,
            username: user.username,
            role: user.role,
            password_hash: user.password_hash,
            created_at: user.created_at,
            disabled: false,
        };
        g.by_name.insert(u.username.as_str().to_owned(), id);
        g.users.insert(id, u.clone());
        Ok(u)
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        let g = self.lock();
        Ok(g.by_name
            .get(username)
            .and_then(|id| g.users.get(id))
            .cloned())
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        Ok(self.lock().users.get(&id).cloned())
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        Ok(self.lock().users.values().cloned().collect())
    }

    async fn set_password_hash(&self, id: UserId, hash: &PasswordHash) -> StoreResult<bool> {
        Ok(self
            .lock()
            .users
            .get_mut(&id)
            .map(|u| u.password_hash = hash.clone())
            .is_some())
    }

    async fn replace_password_hash(
        &self,
        id: UserId,
        old: &PasswordHash,
        new: &PasswordHash,
    ) -> StoreResult<bool> {
        Ok(match self.lock().users.get_mut(&id) {
            Some(u) if u.password_hash == *old => {
                u.password_hash = new.clone();
                true
            }
            _ => false,
        })
    }

    async fn begin_import(&self) -> StoreResult<Box<dyn UserImport + '_>> {
        Ok(Box::new(MemoryImport {
            store: self,
            added: Vec::new(),
            names: std::collections::HashSet::new(),
            ids: std::collections::HashSet::new(),
        }))
    }

    async fn set_role(&self, id: UserId, role: &Role) -> StoreResult<bool> {
        Ok(self
            .lock()
            .users
            .get_mut(&id)
            .map(|u| u.role = role.clone())
            .is_some())
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        let mut g = self.lock();
        match g.users.remove(&id) {
            Some(u) => {
                g.by_name.remove(u.username.as_str());
                g.factors.retain(|_, f| f.user_id != id);
                g.recovery.remove(&id);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool> {
        Ok(match self.lock().users.get_mut(&id) {
            Some(u) => {
                u.disabled = disabled;
                true
            }
            None => false,
        })
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create_session(&self, record: &SessionRecord) -> StoreResult<()> {
        let mut g = self.lock();
        if g.sessions.contains_key(&record.key) {
            return Err(StoreError::Conflict);
        }
        g.user_sessions
            .entry(record.user_id)
            .or_default()
            .insert(record.key.clone());
        g.sessions.insert(record.key.clone(), record.clone());
        Ok(())
    }

    async fn load_session(
        &self,
        key: &SessionKey,
        now: UnixTime,
    ) -> StoreResult<Option<SessionRecord>> {
        Ok(self
            .lock()
            .sessions
            .get(key)
            .filter(|r| r.is_live(now))
            .cloned())
    }

    async fn touch_session(
        &self,
        key: &SessionKey,
        last_seen: UnixTime,
        idle_deadline: UnixTime,
    ) -> StoreResult<bool> {
        Ok(self
            .lock()
            .sessions
            .get_mut(key)
            .map(|r| {
                r.last_seen = last_seen;
                r.idle_deadline = idle_deadline.min(r.absolute_deadline);
            })
            .is_some())
    }

    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        Ok(self.lock().remove_session(key))
    }

    async fn list_user_sessions(
        &self,
        user: UserId,
        now: UnixTime,
    ) -> StoreResult<Vec<SessionRecord>> {
        let g = self.lock();
        let mut out: Vec<SessionRecord> = g
            .user_sessions
            .get(&user)
            .into_iter()
            .flatten()
            .filter_map(|k| g.sessions.get(k))
            .filter(|r| r.is_live(now))
            .cloned()
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.key.cmp(&b.key)));
        Ok(out)
    }

    async fn delete_user_sessions(&self, user: UserId) -> StoreResult<u64> {
        let mut g = self.lock();
        let keys = g.user_sessions.remove(&user).unwrap_or_default();
        let mut n = 0;
        for k in keys {
            n += u64::from(g.sessions.remove(&k).is_some());
        }
        Ok(n)
    }

    async fn sweep_sessions(&self, now: UnixTime) -> StoreResult<u64> {
        let mut g = self.lock();
        let dead: Vec<SessionKey> = g
            .sessions
            .values()
            .filter(|r| !r.is_live(now))
            .map(|r| r.key.clone())
            .collect();
        for k in &dead {
            g.remove_session(k);
        }
        Ok(dead.len() as u64)
    }

    async fn ping_sessions(&self) -> StoreResult<()> {
        Ok(())
    }

    fn broadcast(&self) -> Option<Arc<dyn Broadcast>> {
        self.channel
            .as_ref()
            .map(|c| Arc::clone(c) as Arc<dyn Broadcast>)
    }
}

#[async_trait]
impl RefreshStore for MemoryStore {
    async fn create_family(&self, family: &RefreshFamily, first: &RefreshHash) -> StoreResult<()> {
        let mut g = self.lock();
        if g.families.contains_key(&family.id) || g.tokens.contains_key(first) {
            return Err(StoreError::Conflict);
        }
        g.families
            .insert(family.id.clone(), (family.clone(), false));
        g.tokens.insert(first.clone(), (family.id.clone(), false));
        Ok(())
    }

    async fn peek_family(
        &self,
        presented: &[RefreshHash],
        now: UnixTime,
    ) -> StoreResult<Option<RefreshFamily>> {
        let g = self.lock();
        let live = g
            .find_token(presented)
            .and_then(|hash| g.tokens.get(&hash))
            .filter(|(_, retired)| !retired)
            .and_then(|(family_id, _)| g.families.get(family_id))
            .filter(|(family, revoked)| !revoked && family.is_live(now))
            .map(|(family, _)| family.clone());
        Ok(live)
    }

    async fn rotate(
        &self,
        presented: &[RefreshHash],
        next: &RefreshHash,
        idle_secs: i64,
        now: UnixTime,
    ) -> StoreResult<RotateOutcome> {
        let mut g = self.lock();
        let Some(hash) = g.find_token(presented) else {
            return Ok(RotateOutcome::Invalid);
        };
        let Some((family_id, retired)) = g.tokens.get(&hash).cloned() else {
            return Ok(RotateOutcome::Invalid);
        };
        let Some((family, revoked)) = g.families.get(&family_id).cloned() else {
            return Ok(RotateOutcome::Invalid);
        };
        if revoked || !family.is_live(now) {
            return Ok(RotateOutcome::Invalid);
        }
        if retired {
            if let Some(f) = g.families.get_mut(&family_id) {
                f.1 = true;
            }
            return Ok(RotateOutcome::Reused {
                user_id: family.user_id,
            });
        }
        if g.tokens.contains_key(next) {
            return Err(StoreError::Conflict);
        }
        if let Some(t) = g.tokens.get_mut(&hash) {
            t.1 = true;
        }
        g.tokens.insert(next.clone(), (family_id.clone(), false));
        let mut family = family;
        family.idle_deadline = now.add_secs(idle_secs).min(family.absolute_deadline);
        if let Some(f) = g.families.get_mut(&family_id) {
            f.0 = family.clone();
        }
        Ok(RotateOutcome::Rotated { family })
    }

    async fn revoke_by_token(&self, presented: &[RefreshHash]) -> StoreResult<bool> {
        let mut g = self.lock();
        let Some(hash) = g.find_token(presented) else {
            return Ok(false);
        };
        let family_id = g.tokens.get(&hash).map(|t| t.0.clone());
        Ok(match family_id.and_then(|id| g.families.get_mut(&id)) {
            Some(f) => {
                f.1 = true;
                true
            }
            None => false,
        })
    }

    async fn revoke_family(&self, id: &FamilyId) -> StoreResult<bool> {
        Ok(self
            .lock()
            .families
            .get_mut(id)
            .map(|f| f.1 = true)
            .is_some())
    }

    async fn revoke_user_families(&self, user: UserId) -> StoreResult<u64> {
        let mut g = self.lock();
        let mut n = 0;
        for (f, revoked) in g.families.values_mut() {
            if f.user_id == user && !*revoked {
                *revoked = true;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn sweep_families(&self, now: UnixTime) -> StoreResult<u64> {
        let mut g = self.lock();
        let dead: Vec<FamilyId> = g
            .families
            .iter()
            .filter(|(_, (f, revoked))| *revoked || !f.is_live(now))
            .map(|(id, _)| id.clone())
            .collect();
        g.families.retain(|id, _| !dead.contains(id));
        g.tokens.retain(|_, (id, _)| !dead.contains(id));
        Ok(dead.len() as u64)
    }
}

#[async_trait]
impl RevocationStore for MemoryStore {
    async fn deny_jti(&self, jti: &str, until: UnixTime) -> StoreResult<()> {
        let mut g = self.lock();
        let e = g.denied.entry(jti.to_owned()).or_insert(until);
        *e = (*e).max(until);
        Ok(())
    }

    async fn is_jti_denied(&self, jti: &str, now: UnixTime) -> StoreResult<bool> {
        Ok(self
            .lock()
            .denied
            .get(jti)
            .is_some_and(|until| now < *until))
    }

    async fn revoke_issued_before(&self, user: UserId, before: UnixTime) -> StoreResult<()> {
        let mut g = self.lock();
        let e = g.issued_before.entry(user).or_insert(before);
        *e = (*e).max(before);
        Ok(())
    }

    async fn issued_before(&self, user: UserId) -> StoreResult<Option<UnixTime>> {
        Ok(self.lock().issued_before.get(&user).copied())
    }
}

#[async_trait]
impl ThrottleStore for MemoryStore {
    async fn hit(
        &self,
        key: &str,
        window_secs: i64,
        now: UnixTime,
    ) -> StoreResult<(u64, UnixTime)> {
        let mut g = self.lock();
        let e = g
            .counters
            .entry(key.to_owned())
            .or_insert((0, now.add_secs(window_secs)));
        if now >= e.1 {
            *e = (0, now.add_secs(window_secs));
        }
        e.0 += 1;
        Ok(*e)
    }

    async fn peek(&self, key: &str, now: UnixTime) -> StoreResult<(u64, UnixTime)> {
        Ok(self
            .lock()
            .counters
            .get(key)
            .filter(|(_, end)| now < *end)
            .copied()
            .unwrap_or((0, now)))
    }

    async fn clear(&self, key: &str) -> StoreResult<()> {
        self.lock().counters.remove(key);
        Ok(())
    }

    async fn reserve_attempt(
        &self,
        limits: &[AttemptLimit<'_>],
        window: AttemptWindow,
        now: UnixTime,
    ) -> StoreResult<Reservation> {
        let mut g = self.lock();
        let records: Vec<_> = limits
            .iter()
            .map(|l| g.attempts.get(l.key).copied())
            .collect();
        let (answer, updated) = attempts::reserve(&records, limits, window, now);
        for (limit, record) in limits.iter().zip(updated.into_iter().flatten()) {
            g.attempts.insert(limit.key.to_owned(), record);
        }
        Ok(answer)
    }

    async fn settle_attempt(
        &self,
        settlements: &[(AttemptLimit<'_>, Settlement)],
        window: AttemptWindow,
        now: UnixTime,
    ) -> StoreResult<()> {
        let mut g = self.lock();
        for (limit, how) in settlements {
            let record = g.attempts.get(limit.key).copied();
            match attempts::settle(record, limit.max, *how, window, now) {
                Some(r) => g.attempts.insert(limit.key.to_owned(), r),
                None => g.attempts.remove(limit.key),
            };
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "conformance"))]
mod conformance_tests {
    use super::MemoryStore;
    crate::user_store_tests!(async { MemoryStore::new() });
    crate::ephemeral_store_tests!(async { MemoryStore::new() });
}
