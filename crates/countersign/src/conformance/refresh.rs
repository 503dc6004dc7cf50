//! Refresh-token families: rotation, reuse, lifetimes, revocation.

use crate::mfa::Amr;
use crate::refresh::{RefreshFamily, RefreshPolicy, RotateOutcome};
use crate::store::{RefreshStore, StoreError};

use super::fixtures::*;

/// Refresh families: rotation, reuse detection revokes the family, ended families.
pub async fn refresh_rotation_and_reuse<S: RefreshStore>(s: &S) {
    let policy = RefreshPolicy {
        idle_secs: 100,
        absolute_secs: 1000,
    };
    let user = random_user_id();
    let mut family = RefreshFamily::new(user, &policy, T0);
    family.amr = Amr::verified_key(true);
    family.auth_time = T0.add_secs(-5);
    let (t1, t2, t3) = (refresh_hash(), refresh_hash(), refresh_hash());
    s.create_family(&family, &t1).await.unwrap();
    assert!(matches!(
        s.create_family(&family, &refresh_hash()).await,
        Err(StoreError::Conflict)
    ));

    // Presented by the second candidate hash (as after a key rotation).
    let out = s
        .rotate(
            &[refresh_hash(), t1.clone()],
            &t2,
            policy.idle_secs,
            T0.add_secs(50),
        )
        .await
        .unwrap();
    let RotateOutcome::Rotated { family: moved } = out else {
        panic!("expected Rotated, got {out:?}")
    };
    assert_eq!(moved.id, family.id);
    assert_eq!(moved.user_id, user);
    assert_eq!(moved.idle_deadline, T0.add_secs(150));
    // How and when the user logged in stays with the family: a refresh is no login.
    assert_eq!(moved.amr, family.amr);
    assert_eq!(moved.auth_time, family.auth_time);

    // The retired token again: the family is revoked, its live token too.
    let out = s
        .rotate(
            std::slice::from_ref(&t1),
            &t3,
            policy.idle_secs,
            T0.add_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(out, RotateOutcome::Reused { user_id: user });
    let out = s
        .rotate(
            std::slice::from_ref(&t2),
            &t3,
            policy.idle_secs,
            T0.add_secs(61),
        )
        .await
        .unwrap();
    assert_eq!(out, RotateOutcome::Invalid);

    // Unknown tokens are invalid.
    let out = s
        .rotate(&[refresh_hash()], &refresh_hash(), 100, T0)
        .await
        .unwrap();
    assert_eq!(out, RotateOutcome::Invalid);
}

/// Idle and absolute family lifetimes.
pub async fn refresh_expiry<S: RefreshStore>(s: &S) {
    let policy = RefreshPolicy {
        idle_secs: 100,
        absolute_secs: 250,
    };
    let family = RefreshFamily::new(random_user_id(), &policy, T0);
    let t1 = refresh_hash();
    s.create_family(&family, &t1).await.unwrap();
    let out = s
        .rotate(
            std::slice::from_ref(&t1),
            &refresh_hash(),
            100,
            T0.add_secs(100),
        )
        .await
        .unwrap();
    assert_eq!(out, RotateOutcome::Invalid, "idle deadline passed");

    let family = RefreshFamily::new(random_user_id(), &policy, T0);
    let mut token = refresh_hash();
    s.create_family(&family, &token).await.unwrap();
    for at in [90, 180] {
        let next = refresh_hash();
        let out = s
            .rotate(&[token], &next, 100, T0.add_secs(at))
            .await
            .unwrap();
        assert!(matches!(out, RotateOutcome::Rotated { .. }), "{out:?}");
        token = next;
    }
    let out = s
        .rotate(&[token], &refresh_hash(), 100, T0.add_secs(250))
        .await
        .unwrap();
    assert_eq!(out, RotateOutcome::Invalid, "absolute deadline passed");
}

/// Peeking at a token's family changes nothing and sees only live tokens.
pub async fn refresh_peek_family<S: RefreshStore>(s: &S) {
    let policy = RefreshPolicy {
        idle_secs: 100,
        absolute_secs: 1000,
    };
    let user = random_user_id();
    let mut family = RefreshFamily::new(user, &policy, T0);
    family.amr = Amr::PWD.with(Amr::HWK);
    family.auth_time = T0.add_secs(-1);
    let (t1, t2) = (refresh_hash(), refresh_hash());
    s.create_family(&family, &t1).await.unwrap();

    // By any candidate hash, as often as asked: nothing is retired by looking.
    for _ in 0..2 {
        let peeked = s
            .peek_family(&[refresh_hash(), t1.clone()], T0.add_secs(10))
            .await
            .unwrap();
        assert_eq!(peeked.as_ref(), Some(&family));
    }
    assert_eq!(s.peek_family(&[refresh_hash()], T0).await.unwrap(), None);
    // Past the idle deadline: not live.
    assert_eq!(
        s.peek_family(std::slice::from_ref(&t1), T0.add_secs(100))
            .await
            .unwrap(),
        None
    );

    let out = s
        .rotate(std::slice::from_ref(&t1), &t2, 100, T0.add_secs(50))
        .await
        .unwrap();
    assert!(matches!(out, RotateOutcome::Rotated { .. }), "{out:?}");
    // The retired token is not live; peeking at it does not revoke the family.
    assert_eq!(
        s.peek_family(std::slice::from_ref(&t1), T0.add_secs(51))
            .await
            .unwrap(),
        None
    );
    let peeked = s
        .peek_family(std::slice::from_ref(&t2), T0.add_secs(51))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(peeked.id, family.id);
    assert_eq!(peeked.user_id, user);
    assert_eq!(peeked.idle_deadline, T0.add_secs(150));
    assert_eq!(peeked.amr, family.amr);
    assert_eq!(peeked.auth_time, family.auth_time);

    // A revoked family's tokens are not live.
    assert!(s.revoke_family(&family.id).await.unwrap());
    assert_eq!(
        s.peek_family(std::slice::from_ref(&t2), T0.add_secs(52))
            .await
            .unwrap(),
        None
    );
}

/// Two concurrent refreshes of one token: exactly one is `Rotated`.
pub async fn refresh_concurrent_rotate<S: RefreshStore>(s: &S) {
    let policy = RefreshPolicy::default();
    let family = RefreshFamily::new(random_user_id(), &policy, T0);
    let t1 = refresh_hash();
    s.create_family(&family, &t1).await.unwrap();
    let (na, nb) = (refresh_hash(), refresh_hash());
    let (a, b) = tokio::join!(
        s.rotate(std::slice::from_ref(&t1), &na, 100, T0),
        s.rotate(std::slice::from_ref(&t1), &nb, 100, T0)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let rotated = [&a, &b]
        .iter()
        .filter(|o| matches!(o, RotateOutcome::Rotated { .. }))
        .count();
    assert_eq!(rotated, 1, "{a:?} {b:?}");
}

/// Revocation by token (RFC 7009), by family, by user; sweep.
pub async fn refresh_revocation<S: RefreshStore>(s: &S) {
    let policy = RefreshPolicy::default();
    let user = random_user_id();
    let f1 = RefreshFamily::new(user, &policy, T0);
    let f2 = RefreshFamily::new(user, &policy, T0);
    let f3 = RefreshFamily::new(user, &policy, T0);
    let (t1, t2, t3) = (refresh_hash(), refresh_hash(), refresh_hash());
    s.create_family(&f1, &t1).await.unwrap();
    s.create_family(&f2, &t2).await.unwrap();
    s.create_family(&f3, &t3).await.unwrap();
    assert!(s.revoke_by_token(std::slice::from_ref(&t1)).await.unwrap());
    assert!(!s.revoke_by_token(&[refresh_hash()]).await.unwrap());
    let out = s.rotate(&[t1], &refresh_hash(), 100, T0).await.unwrap();
    assert_eq!(out, RotateOutcome::Invalid);
    assert!(s.revoke_family(&f2.id).await.unwrap());
    assert_eq!(s.revoke_user_families(user).await.unwrap(), 1);
    let out = s.rotate(&[t3], &refresh_hash(), 100, T0).await.unwrap();
    assert_eq!(out, RotateOutcome::Invalid);
    assert!(s.sweep_families(T0).await.unwrap() >= 3);
}
