//! Test doubles for code built on the store traits (behind the `testing` feature).
//!
//! [`FaultyStore`] wraps any store, passes every call through, counts calls per operation
//! and fails the operations a test names with [`StoreError::Unavailable`](crate::store::StoreError::Unavailable): the store
//! outage a caller must survive, without a fake per test suite.
//!
//! ```
//! use countersign::memory::MemoryStore;
//! use countersign::store::ThrottleStore;
//! use countersign::clock::UnixTime;
//! use countersign::testing::FaultyStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = FaultyStore::new(MemoryStore::new());
//! let now = UnixTime(1_800_000_000);
//! store.fail("hit");
//! assert!(store.hit("k", 60, now).await.unwrap_err().is_unavailable());
//! assert_eq!(store.peek("k", now).await.unwrap().0, 0);
//! store.recover();
//! assert_eq!(store.hit("k", 60, now).await.unwrap().0, 1);
//! assert_eq!(store.calls("hit"), 2);
//! # }
//! ```

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Deref;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::attempts::{AttemptLimit, AttemptWindow, Reservation, Settlement};
use crate::clock::UnixTime;
use crate::mfa::recovery::RecoveryHash;
use crate::mfa::{Factor, FactorId, RecoveryCodeRecord};
use crate::password::PasswordHash;
use crate::refresh::{FamilyId, RefreshFamily, RefreshHash, RotateOutcome};
use crate::session::{SessionKey, SessionRecord};
use crate::store::{
    FactorStore, RefreshStore, RevocationStore, SessionStore, StoreResult, ThrottleStore,
    UserImport, UserStore, unavailable,
};
use crate::user::{NewUser, Role, User, UserId};

/// Which operations fail.
#[derive(Debug, Default)]
enum Faults {
    #[default]
    None,
    Some(HashSet<&'static str>),
    All,
}

/// A store that passes every call to `S`, counts calls by operation name, and fails the
/// operations it is told to with [`StoreError::Unavailable`](crate::store::StoreError::Unavailable) (without calling `S`).
///
/// Operations are named as the store traits' methods (`"load_session"`, `"rotate"`, …).
/// It dereferences to `S`, for the wrapped store's own methods; calls made that way are
/// neither counted nor failed.
pub struct FaultyStore<S> {
    inner: S,
    faults: Mutex<Faults>,
    calls: Mutex<HashMap<&'static str, u64>>,
    guard: Option<Box<dyn Any + Send + Sync>>,
}

impl<S> FaultyStore<S> {
    /// Wrap `inner`; nothing fails until told to.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            faults: Mutex::new(Faults::None),
            calls: Mutex::new(HashMap::new()),
            guard: None,
        }
    }

    /// Keep `guard` until this store drops: a test's cleanup (say, removing the keys the
    /// test wrote on a shared server) then runs when the store goes, also on a panic.
    #[must_use]
    pub fn with_guard(mut self, guard: impl Any + Send + Sync) -> Self {
        self.guard = Some(Box::new(guard));
        self
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Fail `operation` from now on (other operations failing already keep failing).
    ///
    /// # Panics
    /// When `operation` is not a method of the store traits: a misspelt name would
    /// otherwise never fail and the test would prove nothing.
    pub fn fail(&self, operation: &'static str) {
        assert!(
            OPERATIONS.contains(&operation),
            "FaultyStore: {operation:?} is not a store operation"
        );
        let mut faults = lock(&self.faults);
        match &mut *faults {
            Faults::All => {}
            Faults::Some(ops) => {
                ops.insert(operation);
            }
            Faults::None => *faults = Faults::Some(HashSet::from([operation])),
        }
    }

    /// Fail every operation (the store is down).
    pub fn fail_all(&self) {
        *lock(&self.faults) = Faults::All;
    }

    /// Fail nothing any more (the store is back).
    pub fn recover(&self) {
        *lock(&self.faults) = Faults::None;
    }

    /// How many times `operation` was called, failed calls included.
    pub fn calls(&self, operation: &str) -> u64 {
        lock(&self.calls).get(operation).copied().unwrap_or(0)
    }

    /// Count a call, then fail it if told to.
    fn enter(&self, operation: &'static str) -> StoreResult<()> {
        *lock(&self.calls).entry(operation).or_insert(0) += 1;
        let failing = match &*lock(&self.faults) {
            Faults::None => false,
            Faults::Some(ops) => ops.contains(operation),
            Faults::All => true,
        };
        if failing {
            Err(unavailable(Injected(operation)))
        } else {
            Ok(())
        }
    }
}

impl<S: Default> Default for FaultyStore<S> {
    fn default() -> Self {
        Self::new(S::default())
    }
}

impl<S> Deref for FaultyStore<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.inner
    }
}

impl<S: fmt::Debug> fmt::Debug for FaultyStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &self.inner)
            .field("faults", &*lock(&self.faults))
            .finish_non_exhaustive()
    }
}

/// The error a failed operation carries inside [`StoreError::Unavailable`](crate::store::StoreError::Unavailable).
#[derive(Debug, thiserror::Error)]
#[error("the test made `{0}` fail")]
pub struct Injected(pub &'static str);

/// A poisoned lock only means another test thread panicked; the data is still good.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One impl per store trait, each method counted, maybe failed, then passed through; and
/// [`OPERATIONS`], every method's name.
macro_rules! faulty {
    ($($store:ident { $(fn $op:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)* })*) => {
        /// Every operation [`FaultyStore::fail`] accepts.
        pub const OPERATIONS: &[&str] = &[$($(stringify!($op)),*),*];

        $(
            #[async_trait]
            impl<S: $store> $store for FaultyStore<S> {
                $(
                    async fn $op(&self $(, $arg: $ty)*) -> StoreResult<$ret> {
                        self.enter(stringify!($op))?;
                        self.inner.$op($($arg),*).await
                    }
                )*
            }
        )*
    };
}

faulty! {
    FactorStore {
        fn add_factor(&self, factor: &Factor) -> ();
        fn factor(&self, id: &FactorId) -> Option<Factor>;
        fn user_factors(&self, user: UserId) -> Vec<Factor>;
        fn update_factor(&self, factor: &Factor) -> bool;
        fn advance_factor(&self, user: UserId, id: &FactorId, counter: i64, now: UnixTime) -> bool;
        fn remove_factor(&self, user: UserId, id: &FactorId) -> bool;
        fn replace_recovery_codes(
            &self,
            user: UserId,
            hashes: &[RecoveryHash],
            now: UnixTime
        ) -> ();
        fn use_recovery_code(&self, user: UserId, hash: &RecoveryHash, now: UnixTime) -> bool;
        fn recovery_codes(&self, user: UserId) -> Vec<RecoveryCodeRecord>;
        fn remove_user_factors(&self, user: UserId) -> u64;
    }
    UserStore {
        fn create_user(&self, user: NewUser) -> User;
        fn user_by_name(&self, username: &str) -> Option<User>;
        fn user_by_id(&self, id: UserId) -> Option<User>;
        fn list_users(&self) -> Vec<User>;
        fn set_password_hash(&self, id: UserId, hash: &PasswordHash) -> bool;
        fn set_role(&self, id: UserId, role: &Role) -> bool;
        fn delete_user(&self, id: UserId) -> bool;
        fn set_disabled(&self, id: UserId, disabled: bool) -> bool;
        fn ping(&self) -> ();
        fn replace_password_hash(
            &self,
            id: UserId,
            old: &PasswordHash,
            new: &PasswordHash
        ) -> bool;
        fn begin_import(&self) -> Box<dyn UserImport + '_>;
    }
    SessionStore {
        fn create_session(&self, record: &SessionRecord) -> ();
        fn load_session(&self, key: &SessionKey, now: UnixTime) -> Option<SessionRecord>;
        fn touch_session(
            &self,
            key: &SessionKey,
            last_seen: UnixTime,
            idle_deadline: UnixTime
        ) -> bool;
        fn delete_session(&self, key: &SessionKey) -> bool;
        fn list_user_sessions(&self, user: UserId, now: UnixTime) -> Vec<SessionRecord>;
        fn delete_user_sessions(&self, user: UserId) -> u64;
        fn sweep_sessions(&self, now: UnixTime) -> u64;
        fn ping_sessions(&self) -> ();
    }
    RefreshStore {
        fn create_family(&self, family: &RefreshFamily, first: &RefreshHash) -> ();
        fn peek_family(&self, presented: &[RefreshHash], now: UnixTime) -> Option<RefreshFamily>;
        fn rotate(
            &self,
            presented: &[RefreshHash],
            next: &RefreshHash,
            idle_secs: i64,
            now: UnixTime
        ) -> RotateOutcome;
        fn revoke_by_token(&self, presented: &[RefreshHash]) -> bool;
        fn revoke_family(&self, id: &FamilyId) -> bool;
        fn revoke_user_families(&self, user: UserId) -> u64;
        fn sweep_families(&self, now: UnixTime) -> u64;
    }
    RevocationStore {
        fn deny_jti(&self, jti: &str, until: UnixTime) -> ();
        fn is_jti_denied(&self, jti: &str, now: UnixTime) -> bool;
        fn revoke_issued_before(&self, user: UserId, before: UnixTime) -> ();
        fn issued_before(&self, user: UserId) -> Option<UnixTime>;
    }
    ThrottleStore {
        fn hit(&self, key: &str, window_secs: i64, now: UnixTime) -> (u64, UnixTime);
        fn peek(&self, key: &str, now: UnixTime) -> (u64, UnixTime);
        fn clear(&self, key: &str) -> ();
        fn reserve_attempt(
            &self,
            limits: &[AttemptLimit<'_>],
            window: AttemptWindow,
            now: UnixTime
        ) -> Reservation;
        fn settle_attempt(
            &self,
            settlements: &[(AttemptLimit<'_>, Settlement)],
            window: AttemptWindow,
            now: UnixTime
        ) -> ();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    const NOW: UnixTime = UnixTime(1_800_000_000);

    #[tokio::test]
    async fn fails_what_it_is_told_and_counts_every_call() {
        let s = FaultyStore::new(MemoryStore::new());
        s.fail("peek");
        let e = s.peek("k", NOW).await.unwrap_err();
        assert!(e.is_unavailable(), "{e:?}");
        assert_eq!(s.hit("k", 60, NOW).await.unwrap().0, 1);
        s.fail_all();
        assert!(s.clear("k").await.is_err());
        s.recover();
        assert_eq!(s.peek("k", NOW).await.unwrap().0, 1);
        assert_eq!(
            (s.calls("peek"), s.calls("hit"), s.calls("clear")),
            (2, 1, 1)
        );
        assert_eq!(s.calls("rotate"), 0);
    }

    #[test]
    #[should_panic(expected = "not a store operation")]
    fn a_misspelt_operation_is_refused() {
        FaultyStore::new(MemoryStore::new()).fail("load_sesion");
    }

    #[test]
    fn the_guard_drops_with_the_store() {
        struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let dropped = std::sync::Arc::default();
        let s =
            FaultyStore::new(MemoryStore::new()).with_guard(Flag(std::sync::Arc::clone(&dropped)));
        assert!(!dropped.load(std::sync::atomic::Ordering::SeqCst));
        drop(s);
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
    }
}
