//! The session store: records, deadlines, the per-user index.

use crate::mfa::Amr;
use crate::session::SessionPolicy;
use crate::store::{SessionStore, StoreError};

use super::fixtures::*;

/// Sessions: create, load (every field, `amr` and `auth_time` too), conflict on the same
/// key, delete, replayed key refused.
pub async fn sessions_crud<S: SessionStore>(s: &S) {
    let policy = SessionPolicy::default();
    let user = random_user_id();
    let mut r = session(user, T0, &policy);
    r.amr = Amr::PWD.with(Amr::OTP);
    r.auth_time = T0.add_secs(-30);
    s.create_session(&r).await.unwrap();
    assert_eq!(s.load_session(&r.key, T0).await.unwrap(), Some(r.clone()));
    assert_eq!(
        s.list_user_sessions(user, T0).await.unwrap(),
        vec![r.clone()]
    );
    // The defaults of a password login, and no method at all, round-trip too.
    let plain = session(user, T0.add_secs(1), &policy);
    let mut none = session(user, T0.add_secs(2), &policy);
    none.amr = Amr::empty();
    for other in [&plain, &none] {
        s.create_session(other).await.unwrap();
        assert_eq!(
            s.load_session(&other.key, T0.add_secs(3))
                .await
                .unwrap()
                .as_ref(),
            Some(other)
        );
    }
    assert!(matches!(
        s.create_session(&r).await,
        Err(StoreError::Conflict)
    ));
    assert!(s.delete_session(&r.key).await.unwrap());
    assert!(!s.delete_session(&r.key).await.unwrap());
    assert_eq!(s.load_session(&r.key, T0).await.unwrap(), None);
    s.ping_sessions().await.unwrap();
}

/// Two concurrent creates with one key: exactly one wins.
pub async fn sessions_concurrent_create<S: SessionStore>(s: &S) {
    let r = session(random_user_id(), T0, &SessionPolicy::default());
    let (a, b) = tokio::join!(s.create_session(&r), s.create_session(&r));
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");
    assert_eq!(s.list_user_sessions(r.user_id, T0).await.unwrap().len(), 1);
}

/// Idle and absolute deadlines are enforced on load, touch moves the idle deadline but
/// never past the absolute one.
pub async fn sessions_expiry<S: SessionStore>(s: &S) {
    let policy = SessionPolicy {
        idle_secs: 100,
        absolute_secs: 250,
        touch_every_secs: 60,
    };
    let r = session(random_user_id(), T0, &policy);
    s.create_session(&r).await.unwrap();
    assert!(
        s.load_session(&r.key, T0.add_secs(99))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.load_session(&r.key, T0.add_secs(100))
            .await
            .unwrap()
            .is_none()
    );
    // Touched at +90: idle moves to +190.
    assert!(
        s.touch_session(&r.key, T0.add_secs(90), T0.add_secs(190))
            .await
            .unwrap()
    );
    let loaded = s
        .load_session(&r.key, T0.add_secs(150))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.last_seen, T0.add_secs(90));
    assert_eq!(loaded.idle_deadline, T0.add_secs(190));
    // A touch asking past the absolute deadline is clamped to it.
    assert!(
        s.touch_session(&r.key, T0.add_secs(180), T0.add_secs(280))
            .await
            .unwrap()
    );
    assert!(
        s.load_session(&r.key, T0.add_secs(249))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.load_session(&r.key, T0.add_secs(250))
            .await
            .unwrap()
            .is_none()
    );
    let gone = session(random_user_id(), T0, &policy);
    assert!(
        !s.touch_session(&gone.key, T0, T0.add_secs(10))
            .await
            .unwrap()
    );
}

/// The per-user index: list (newest first, live only), revoke one, revoke all; other
/// users untouched; sweep removes only expired sessions.
pub async fn sessions_user_index<S: SessionStore>(s: &S) {
    let policy = SessionPolicy::default();
    let (alice, bob) = (random_user_id(), random_user_id());
    let a1 = session(alice, T0, &policy);
    let a2 = session(alice, T0.add_secs(10), &policy);
    let a3 = session(alice, T0.add_secs(20), &policy);
    let b1 = session(bob, T0, &policy);
    for r in [&a1, &a2, &a3, &b1] {
        s.create_session(r).await.unwrap();
    }
    let listed: Vec<_> = s
        .list_user_sessions(alice, T0.add_secs(30))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(listed, vec![a3.key.clone(), a2.key.clone(), a1.key.clone()]);
    assert!(s.delete_session(&a2.key).await.unwrap());
    assert_eq!(
        s.list_user_sessions(alice, T0.add_secs(30))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(s.delete_user_sessions(alice).await.unwrap(), 2);
    assert!(
        s.list_user_sessions(alice, T0.add_secs(30))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.load_session(&a1.key, T0.add_secs(30))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(s.delete_user_sessions(alice).await.unwrap(), 0);
    assert_eq!(s.list_user_sessions(bob, T0).await.unwrap().len(), 1);

    // Expired sessions are not listed, and sweep removes them.
    let late = T0.add_secs(policy.absolute_secs + 1);
    assert!(s.list_user_sessions(bob, late).await.unwrap().is_empty());
    assert!(s.sweep_sessions(late).await.unwrap() >= 1);
    assert!(s.load_session(&b1.key, T0).await.unwrap().is_none());
}

/// Revoke-all racing a login: afterwards the index and the records agree, and a session
/// created before revoke-all started is gone.
pub async fn sessions_revoke_all_races_login<S: SessionStore>(s: &S) {
    let policy = SessionPolicy::default();
    let user = random_user_id();
    let before = session(user, T0, &policy);
    s.create_session(&before).await.unwrap();
    let racing = session(user, T0.add_secs(1), &policy);
    let (created, revoked) = tokio::join!(s.create_session(&racing), s.delete_user_sessions(user));
    created.unwrap();
    assert!(revoked.unwrap() >= 1);
    assert!(s.load_session(&before.key, T0).await.unwrap().is_none());
    let listed = s.list_user_sessions(user, T0.add_secs(2)).await.unwrap();
    let loaded = s.load_session(&racing.key, T0.add_secs(2)).await.unwrap();
    assert_eq!(
        listed.iter().map(|r| &r.key).collect::<Vec<_>>(),
        loaded.iter().map(|r| &r.key).collect::<Vec<_>>(),
        "the index and the records disagree"
    );
}
