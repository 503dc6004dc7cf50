//! The store conformance suite: written once, run against every implementation.
//!
//! Each check is an async function over a store; the macros [`user_store_tests!`] and
//! [`ephemeral_store_tests!`] turn them into one `#[tokio::test]` each for a store made by
//! a factory expression. Checks use random names and ids, so stores that share a server
//! (PostgreSQL, Redis) can run them in parallel without cleaning up.
//!
//! [`user_store_tests!`]: crate::user_store_tests
//! [`ephemeral_store_tests!`]: crate::ephemeral_store_tests
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use crate::attempts::{AttemptLimit, AttemptWindow, Reservation, Settlement};
use crate::clock::UnixTime;
use crate::mfa::recovery::RecoveryHash;
use crate::mfa::{Amr, Factor, FactorId, FactorKind, RecoveryCodeRecord};
use crate::password::PasswordHash;
use crate::refresh::{RefreshFamily, RefreshHash, RefreshPolicy, RotateOutcome};
use crate::session::{SessionPolicy, SessionRecord, SessionToken};
use crate::store::{
    ImportedUser, RefreshStore, RevocationStore, SessionStore, StoreError, ThrottleStore, UserStore,
};
use crate::user::{NewUser, Role, User, UserId, Username};

const T0: UnixTime = UnixTime(1_800_000_000);

fn random_user_id() -> UserId {
    let b = crate::random::bytes::<8>();
    UserId(i64::from_le_bytes(b).rem_euclid(1 << 52) + 1_000_000)
}

fn random_name(prefix: &str) -> Username {
    let id = crate::random::token_id().replace(['-', '_'], "x");
    Username::parse(&format!("{prefix}{}", &id[..12])).unwrap()
}

fn hash(tag: &str) -> PasswordHash {
    PasswordHash::from_phc(format!("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ${tag}"))
}

fn session(user: UserId, now: UnixTime, policy: &SessionPolicy) -> SessionRecord {
    let mut r = SessionRecord::new(
        &SessionToken::generate(),
        user,
        Username::parse("someone").unwrap(),
        Role::user(),
        policy,
        now,
    );
    r.user_agent = "conformance/1.0 (ünïcödé)".into();
    r.ip = "127.0.0.1".into();
    r
}

fn refresh_hash() -> RefreshHash {
    RefreshHash::from_stored(crate::random::opaque_token())
}

/// Users: create, find by name and id, conflict on a taken name, update, delete.
pub async fn users_crud<S: UserStore>(s: &S) {
    let name = random_name("u");
    let created = s
        .create_user(NewUser {
            username: name.clone(),
            role: Role::user(),
            password_hash: hash("a"),
            created_at: T0,
        })
        .await
        .unwrap();
    assert_eq!(created.username, name);
    assert_eq!(created.created_at, T0);
    let by_name = s.user_by_name(name.as_str()).await.unwrap().unwrap();
    assert_eq!(by_name, created);
    assert_eq!(s.user_by_id(created.id).await.unwrap().unwrap(), created);
    assert!(s.user_by_name(&format!("{name}x")).await.unwrap().is_none());

    let again = s
        .create_user(NewUser {
            username: name.clone(),
            role: Role::admin(),
            password_hash: hash("b"),
            created_at: T0,
        })
        .await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");

    assert!(
        s.list_users()
            .await
            .unwrap()
            .iter()
            .any(|u| u.id == created.id)
    );
    assert!(s.set_password_hash(created.id, &hash("c")).await.unwrap());
    assert!(s.set_role(created.id, &Role::admin()).await.unwrap());
    let updated = s.user_by_id(created.id).await.unwrap().unwrap();
    assert_eq!(updated.password_hash, hash("c"));
    assert_eq!(updated.role, Role::admin());

    assert!(s.delete_user(created.id).await.unwrap());
    assert!(!s.delete_user(created.id).await.unwrap());
    assert!(s.user_by_id(created.id).await.unwrap().is_none());
    assert!(s.user_by_name(name.as_str()).await.unwrap().is_none());
    assert!(!s.set_role(created.id, &Role::user()).await.unwrap());
    assert!(!s.set_password_hash(created.id, &hash("d")).await.unwrap());
    s.ping().await.unwrap();
}

/// Two concurrent creates of one name: exactly one wins.
pub async fn users_concurrent_create<S: UserStore>(s: &S) {
    let name = random_name("race");
    let make = || NewUser {
        username: name.clone(),
        role: Role::user(),
        password_hash: hash("a"),
        created_at: T0,
    };
    let (a, b) = tokio::join!(s.create_user(make()), s.create_user(make()));
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");
    assert!(matches!(a.err().or(b.err()), Some(StoreError::Conflict)));
}

/// The rehash at login replaces the hash only while it is still the one verified.
pub async fn users_replace_password_hash<S: UserStore>(s: &S) {
    let created = s
        .create_user(NewUser {
            username: random_name("rh"),
            role: Role::user(),
            password_hash: hash("old"),
            created_at: T0,
        })
        .await
        .unwrap();
    // Changed meanwhile (a password change): the rehash of the old one does nothing.
    assert!(
        !s.replace_password_hash(created.id, &hash("other"), &hash("new"))
            .await
            .unwrap()
    );
    assert!(
        s.replace_password_hash(created.id, &hash("old"), &hash("new"))
            .await
            .unwrap()
    );
    let now = s.user_by_id(created.id).await.unwrap().unwrap();
    assert_eq!(now.password_hash, hash("new"));
    assert!(
        !s.replace_password_hash(created.id, &hash("old"), &hash("x"))
            .await
            .unwrap()
    );
    assert!(
        !s.replace_password_hash(random_user_id(), &hash("new"), &hash("x"))
            .await
            .unwrap()
    );
}

/// The survey of hash formats reads pages: by id, above `after`, at most `limit`, without
/// the hashes that start with the prefix given.
pub async fn users_password_hashes_after<S: UserStore>(s: &S) {
    let tag = crate::random::token_id().replace(['-', '_'], "x");
    let skip = format!("$argon2id$v=19$m=64,t=1,p=1$skip{tag}");
    let mut made = Vec::new();
    for (prefix, hash) in [
        (
            "a",
            PasswordHash::from_phc(format!("pbkdf2:sha256:1$a{tag}$00")),
        ),
        ("b", PasswordHash::from_phc(format!("{skip}$aGFzaA"))),
        ("c", PasswordHash::from_phc(format!("$2b$04$c{tag}"))),
        ("d", hash(&format!("d{tag}"))),
    ] {
        let user = s
            .create_user(NewUser {
                username: random_name(prefix),
                role: Role::user(),
                password_hash: hash,
                created_at: T0,
            })
            .await
            .unwrap();
        made.push((user.id, user.password_hash));
    }
    let (first, last) = (made[0].0, made[3].0);
    // Other tests may add users in between: read from just before the first to the last.
    let mut seen = Vec::new();
    let mut after = UserId(first.0 - 1);
    loop {
        let page = s.password_hashes_after(after, 2, &skip).await.unwrap();
        assert!(page.len() <= 2);
        let Some((end, _)) = page.last() else { break };
        after = *end;
        seen.extend(page);
        if after >= last {
            break;
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0),
        "by id, no repeats"
    );
    assert!(seen.iter().all(|(_, h)| !h.as_str().starts_with(&skip)));
    for (id, hash) in [&made[0], &made[2], &made[3]] {
        assert!(seen.contains(&(*id, hash.clone())), "{id:?}");
    }
    assert!(seen.iter().all(|(id, _)| *id != made[1].0), "skipped");
    // Nothing above the largest id.
    let beyond = s
        .password_hashes_after(UserId(i64::MAX - 1), 10, &skip)
        .await
        .unwrap();
    assert!(beyond.is_empty());
}

/// Imports: all or nothing, taken names and ids reported per row (in the store, earlier in
/// the import, earlier in the batch), kept ids kept, later ids after them.
pub async fn users_import<S: UserStore>(s: &S) {
    let existing = s
        .create_user(NewUser {
            username: random_name("imp"),
            role: Role::user(),
            password_hash: hash("a"),
            created_at: T0,
        })
        .await
        .unwrap();
    let row = |name: &Username, id: Option<UserId>| ImportedUser {
        id,
        user: NewUser {
            username: name.clone(),
            role: Role::user(),
            password_hash: hash("imported"),
            created_at: T0,
        },
    };
    let (a, b, c, d) = (
        random_name("impa"),
        random_name("impb"),
        random_name("impc"),
        random_name("impd"),
    );
    let kept = random_user_id();

    // Dropped without commit: nothing happened.
    {
        let mut import = s.begin_import().await.unwrap();
        assert_eq!(import.insert(&[row(&a, None)]).await.unwrap(), vec![true]);
    }
    assert!(s.user_by_name(a.as_str()).await.unwrap().is_none());

    let mut import = s.begin_import().await.unwrap();
    let first = import
        .insert(&[
            row(&a, None),
            row(&existing.username, None),
            row(&b, Some(kept)),
            row(&a, None),
        ])
        .await
        .unwrap();
    assert_eq!(first, vec![true, false, true, false]);
    let second = import
        .insert(&[
            row(&b, None),
            row(&c, Some(kept)),
            row(&c, Some(existing.id)),
            row(&d, None),
        ])
        .await
        .unwrap();
    assert_eq!(second, vec![false, false, false, true]);
    // Not visible before the commit (SQLite: the import holds the write lock, so only
    // reads are tried here).
    assert!(s.user_by_name(a.as_str()).await.unwrap().is_none());
    import.commit().await.unwrap();

    let got_b = s.user_by_name(b.as_str()).await.unwrap().unwrap();
    assert_eq!(got_b.id, kept);
    assert_eq!(got_b.password_hash, hash("imported"));
    assert!(s.user_by_name(a.as_str()).await.unwrap().is_some());
    assert!(s.user_by_name(d.as_str()).await.unwrap().is_some());
    assert!(s.user_by_name(c.as_str()).await.unwrap().is_none());
    // A new account after the import gets an id past the kept one.
    let later = s
        .create_user(NewUser {
            username: random_name("after"),
            role: Role::user(),
            password_hash: hash("a"),
            created_at: T0,
        })
        .await
        .unwrap();
    assert!(later.id > kept, "{:?} after {kept:?}", later.id);
}

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

/// The `jti` denylist and issued-before marks.
pub async fn revocation<S: RevocationStore>(s: &S) {
    let jti = crate::random::token_id();
    assert!(!s.is_jti_denied(&jti, T0).await.unwrap());
    s.deny_jti(&jti, T0.add_secs(60)).await.unwrap();
    assert!(s.is_jti_denied(&jti, T0).await.unwrap());
    assert!(s.is_jti_denied(&jti, T0.add_secs(59)).await.unwrap());
    assert!(!s.is_jti_denied(&jti, T0.add_secs(60)).await.unwrap());

    let user = random_user_id();
    assert_eq!(s.issued_before(user).await.unwrap(), None);
    s.revoke_issued_before(user, T0.add_secs(10)).await.unwrap();
    s.revoke_issued_before(user, T0).await.unwrap();
    assert_eq!(s.issued_before(user).await.unwrap(), Some(T0.add_secs(10)));
    s.revoke_issued_before(user, T0.add_secs(20)).await.unwrap();
    assert_eq!(s.issued_before(user).await.unwrap(), Some(T0.add_secs(20)));
}

/// Throttle counters: fixed windows, peek, clear.
pub async fn throttle<S: ThrottleStore>(s: &S) {
    let key = format!("acct:{}", crate::random::token_id());
    assert_eq!(s.peek(&key, T0).await.unwrap().0, 0);
    assert_eq!(s.hit(&key, 60, T0).await.unwrap(), (1, T0.add_secs(60)));
    assert_eq!(
        s.hit(&key, 60, T0.add_secs(30)).await.unwrap(),
        (2, T0.add_secs(60))
    );
    assert_eq!(
        s.peek(&key, T0.add_secs(59)).await.unwrap(),
        (2, T0.add_secs(60))
    );
    assert_eq!(s.peek(&key, T0.add_secs(60)).await.unwrap().0, 0);
    assert_eq!(
        s.hit(&key, 60, T0.add_secs(61)).await.unwrap(),
        (1, T0.add_secs(121))
    );
    s.clear(&key).await.unwrap();
    assert_eq!(s.peek(&key, T0.add_secs(62)).await.unwrap().0, 0);

    // Concurrent hits are all counted.
    let key = format!("ip:{}", crate::random::token_id());
    let (a, b, c, d) = tokio::join!(
        s.hit(&key, 60, T0),
        s.hit(&key, 60, T0),
        s.hit(&key, 60, T0),
        s.hit(&key, 60, T0)
    );
    let mut counts = [a.unwrap().0, b.unwrap().0, c.unwrap().0, d.unwrap().0];
    counts.sort_unstable();
    assert_eq!(counts, [1, 2, 3, 4]);
    assert_eq!(s.peek(&key, T0).await.unwrap().0, 4);
}

/// Login attempts: one atomic reservation under several limits, settled afterwards;
/// places held by attempts in flight; windows that grow after a lockout; a cleared
/// account; and no more admissions than places when reservations race.
pub async fn throttle_attempts<S: ThrottleStore>(s: &S) {
    use Reservation::{Admitted, Full, Refused};
    use Settlement::{Cleared, Failed, Released};
    let w = AttemptWindow {
        secs: 60,
        max_secs: 200,
        lease_secs: 10,
    };
    // Leaked: a few short strings per test run, so the limits can be `'static`.
    let key =
        |kind: &str| -> &'static str { format!("{kind}:{}", crate::random::token_id()).leak() };
    let (acct, addr, other) = (key("acct"), key("addr"), key("acct"));
    let a = AttemptLimit { key: acct, max: 2 };
    let b = AttemptLimit { key: addr, max: 3 };
    let c = AttemptLimit { key: other, max: 2 };
    let reserve = |limits: &[AttemptLimit<'static>], now| {
        let limits = limits.to_vec();
        async move { s.reserve_attempt(&limits, w, now).await.unwrap() }
    };
    let settle = |pairs: &[(AttemptLimit<'static>, Settlement)], now| {
        let pairs = pairs.to_vec();
        async move { s.settle_attempt(&pairs, w, now).await.unwrap() }
    };

    // Two places on `a`; both in flight, a third waits.
    assert_eq!(reserve(&[a, b], T0).await, Admitted);
    assert_eq!(reserve(&[a, b], T0).await, Admitted);
    assert_eq!(reserve(&[a, b], T0).await, Full);
    // One fails, one gives its place back: one place left.
    settle(&[(a, Failed), (b, Failed)], T0).await;
    settle(&[(a, Released), (b, Released)], T0).await;
    assert_eq!(reserve(&[a, b], T0.add_secs(1)).await, Admitted);
    settle(&[(a, Failed), (b, Failed)], T0.add_secs(1)).await;
    // `a` is at its limit until its window ends, and nothing was counted by the refusal.
    let until_a = Refused {
        until: T0.add_secs(60),
    };
    assert_eq!(reserve(&[a, b], T0.add_secs(2)).await, until_a);
    assert_eq!(reserve(&[b, a], T0.add_secs(59)).await, until_a);
    // The address has one place left: another account takes it, then it refuses too.
    assert_eq!(reserve(&[c, b], T0.add_secs(2)).await, Admitted);
    settle(&[(c, Failed), (b, Failed)], T0.add_secs(2)).await;
    assert_eq!(
        reserve(&[c, b], T0.add_secs(3)).await,
        Refused {
            until: T0.add_secs(60)
        }
    );

    // The window ended at its limit: the next one is twice as long.
    let t1 = T0.add_secs(60);
    assert_eq!(reserve(&[a], t1).await, Admitted);
    settle(&[(a, Failed)], t1).await;
    assert_eq!(reserve(&[a], t1).await, Admitted);
    settle(&[(a, Failed)], t1).await;
    assert_eq!(
        reserve(&[a], t1.add_secs(119)).await,
        Refused {
            until: t1.add_secs(120)
        }
    );
    // A success clears it: back to one base-length window.
    settle(&[(a, Cleared)], t1.add_secs(5)).await;
    let t2 = t1.add_secs(6);
    for _ in 0..2 {
        assert_eq!(reserve(&[a], t2).await, Admitted);
        settle(&[(a, Failed)], t2).await;
    }
    assert_eq!(
        reserve(&[a], t2).await,
        Refused {
            until: t2.add_secs(60)
        }
    );

    // Never settled (its instance died): the places free themselves when the lease ends.
    let d = AttemptLimit {
        key: key("acct"),
        max: 2,
    };
    assert_eq!(reserve(&[d], T0).await, Admitted);
    assert_eq!(reserve(&[d], T0).await, Admitted);
    assert_eq!(reserve(&[d], T0.add_secs(9)).await, Full);
    assert_eq!(reserve(&[d], T0.add_secs(10)).await, Admitted);

    // Racing reservations: exactly as many admitted as there are places.
    let e = AttemptLimit {
        key: key("acct"),
        max: 3,
    };
    let f = AttemptLimit {
        key: key("addr"),
        max: 100,
    };
    let r = || reserve(&[e, f], T0);
    let all = tokio::join!(r(), r(), r(), r(), r(), r(), r(), r());
    let all = [all.0, all.1, all.2, all.3, all.4, all.5, all.6, all.7];
    assert_eq!(all.iter().filter(|r| **r == Admitted).count(), 3, "{all:?}");
    assert_eq!(all.iter().filter(|r| **r == Full).count(), 5, "{all:?}");
}

/// Users: disable and enable an account; an unknown id is `false`.
pub async fn users_disable<S: UserStore>(s: &S) {
    let created = s
        .create_user(NewUser {
            username: random_name("d"),
            role: Role::user(),
            password_hash: hash("a"),
            created_at: T0,
        })
        .await
        .unwrap();
    assert!(!created.disabled);
    assert!(s.set_disabled(created.id, true).await.unwrap());
    let disabled = s.user_by_id(created.id).await.unwrap().unwrap();
    assert!(disabled.disabled);
    assert_eq!(
        s.user_by_name(created.username.as_str())
            .await
            .unwrap()
            .unwrap(),
        disabled
    );
    assert!(s.list_users().await.unwrap().contains(&disabled));
    assert!(s.set_disabled(created.id, false).await.unwrap());
    assert_eq!(s.user_by_id(created.id).await.unwrap().unwrap(), created);
    assert!(!s.set_disabled(random_user_id(), true).await.unwrap());
}

async fn factor_user<S: UserStore>(s: &S, prefix: &str) -> User {
    s.create_user(NewUser {
        username: random_name(prefix),
        role: Role::user(),
        password_hash: hash("a"),
        created_at: T0,
    })
    .await
    .unwrap()
}

fn new_factor(user: UserId, kind: FactorKind, name: &str, created_at: UnixTime) -> Factor {
    // Bytes that are not UTF-8, a NUL among them: the data is stored as bytes.
    let mut data = vec![0, 0xff, 0xfe, b'\''];
    data.extend_from_slice(&crate::random::bytes::<24>());
    Factor {
        id: FactorId::generate(),
        user_id: user,
        kind,
        name: name.to_owned(),
        data,
        counter: 0,
        confirmed: false,
        created_at,
        last_used_at: None,
    }
}

fn recovery_set(n: usize) -> Vec<RecoveryHash> {
    (0..n)
        .map(|_| RecoveryHash::from_stored(crate::random::opaque_token()))
        .collect()
}

/// A user's recovery codes, in hash order (the store promises no order).
async fn codes_of<S: UserStore>(s: &S, user: UserId) -> Vec<RecoveryCodeRecord> {
    let mut codes = s.recovery_codes(user).await.unwrap();
    codes.sort_by(|a, b| a.hash.cmp(&b.hash));
    codes
}

fn unused(hashes: &[RecoveryHash], created_at: UnixTime) -> Vec<RecoveryCodeRecord> {
    let mut codes: Vec<_> = hashes
        .iter()
        .map(|hash| RecoveryCodeRecord {
            hash: hash.clone(),
            created_at,
            used_at: None,
        })
        .collect();
    codes.sort_by(|a, b| a.hash.cmp(&b.hash));
    codes
}

/// Second factors and recovery codes: add (an id taken by anyone is a conflict), get,
/// list (oldest first, then by id), update (not the counter, only the owner's), advance
/// (only upward, only the owner's; of concurrent advances to one step exactly one wins),
/// remove; recovery codes replaced as a set, each used once (of concurrent uses exactly one
/// wins), listed with when they were used; all of a user's removed at once; and removed
/// with the user.
pub async fn factors<S: UserStore>(s: &S) {
    let alice = factor_user(s, "mfa").await.id;
    let bob = factor_user(s, "mfb").await.id;

    // Add, get, list.
    let totp = new_factor(alice, FactorKind::Totp, "Phone", T0.add_secs(10));
    let key = new_factor(alice, FactorKind::Passkey, "YubiKey ünïcödé", T0);
    let laptop = new_factor(alice, FactorKind::Passkey, "Laptop", T0);
    for f in [&totp, &key, &laptop] {
        s.add_factor(f).await.unwrap();
    }
    let again = s.add_factor(&totp).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    // Ids are global: a passkey's credential id finds its one user.
    let mut stolen = new_factor(bob, FactorKind::Passkey, "Copy", T0);
    stolen.id = key.id.clone();
    let again = s.add_factor(&stolen).await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    assert_eq!(s.factor(&totp.id).await.unwrap().as_ref(), Some(&totp));
    assert_eq!(s.factor(&key.id).await.unwrap().as_ref(), Some(&key));
    assert_eq!(s.factor(&FactorId::generate()).await.unwrap(), None);
    let mut oldest_first = vec![key.clone(), laptop.clone()];
    oldest_first.sort_by(|a, b| a.id.cmp(&b.id));
    oldest_first.push(totp.clone());
    assert_eq!(s.user_factors(alice).await.unwrap(), oldest_first);
    assert!(s.user_factors(bob).await.unwrap().is_empty());

    // Update: name, data, confirmed, last used; never the counter; only the owner's.
    let mut confirmed = totp.clone();
    confirmed.name = "Phone (work)".into();
    confirmed.data = vec![1, 2, 3];
    confirmed.confirmed = true;
    confirmed.last_used_at = Some(T0.add_secs(20));
    confirmed.counter = 1_000;
    assert!(s.update_factor(&confirmed).await.unwrap());
    confirmed.counter = 0;
    assert_eq!(s.factor(&totp.id).await.unwrap().as_ref(), Some(&confirmed));
    let mut not_hers = confirmed.clone();
    not_hers.user_id = bob;
    not_hers.name = "Taken over".into();
    assert!(!s.update_factor(&not_hers).await.unwrap());
    let gone = new_factor(alice, FactorKind::Totp, "Gone", T0);
    assert!(!s.update_factor(&gone).await.unwrap());
    assert_eq!(s.factor(&totp.id).await.unwrap().as_ref(), Some(&confirmed));
    assert_eq!(s.factor(&gone.id).await.unwrap(), None);

    // Advance: only upward, only the owner's.
    let at = |secs| T0.add_secs(secs);
    assert!(s.advance_factor(alice, &totp.id, 5, at(30)).await.unwrap());
    assert!(!s.advance_factor(alice, &totp.id, 5, at(31)).await.unwrap());
    assert!(!s.advance_factor(alice, &totp.id, 4, at(32)).await.unwrap());
    assert!(!s.advance_factor(bob, &totp.id, 9, at(33)).await.unwrap());
    assert!(!s.advance_factor(alice, &gone.id, 9, at(33)).await.unwrap());
    let advanced = s.factor(&totp.id).await.unwrap().unwrap();
    assert_eq!((advanced.counter, advanced.last_used_at), (5, Some(at(30))));
    assert_eq!(advanced.name, confirmed.name);
    assert!(s.advance_factor(alice, &totp.id, 6, at(34)).await.unwrap());
    // One code seen by four instances at once: accepted once.
    let step = || s.advance_factor(alice, &totp.id, 7, at(35));
    let (a, b, c, d) = tokio::join!(step(), step(), step(), step());
    let won = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    assert_eq!(s.factor(&totp.id).await.unwrap().unwrap().counter, 7);

    // Remove: only the owner's.
    assert!(!s.remove_factor(bob, &key.id).await.unwrap());
    assert!(s.remove_factor(alice, &key.id).await.unwrap());
    assert!(!s.remove_factor(alice, &key.id).await.unwrap());
    assert_eq!(s.factor(&key.id).await.unwrap(), None);
    assert_eq!(s.user_factors(alice).await.unwrap().len(), 2);

    // Recovery codes.
    assert!(s.recovery_codes(alice).await.unwrap().is_empty());
    let first = recovery_set(10);
    s.replace_recovery_codes(alice, &first, at(40))
        .await
        .unwrap();
    assert_eq!(codes_of(s, alice).await, unused(&first, at(40)));
    assert!(s.use_recovery_code(alice, &first[0], at(41)).await.unwrap());
    assert!(!s.use_recovery_code(alice, &first[0], at(42)).await.unwrap());
    assert!(!s.use_recovery_code(bob, &first[1], at(42)).await.unwrap());
    let unknown = recovery_set(1);
    assert!(
        !s.use_recovery_code(alice, &unknown[0], at(42))
            .await
            .unwrap()
    );
    let mut expected = unused(&first, at(40));
    for code in &mut expected {
        if code.hash == first[0] {
            code.used_at = Some(at(41));
        }
    }
    assert_eq!(codes_of(s, alice).await, expected);
    // One code typed in two tabs at once: accepted once.
    let spend = || s.use_recovery_code(alice, &first[2], at(43));
    let (a, b, c, d) = tokio::join!(spend(), spend(), spend(), spend());
    let won = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    // A new set replaces the old one, used codes and all.
    let second = recovery_set(10);
    s.replace_recovery_codes(alice, &second, at(50))
        .await
        .unwrap();
    assert_eq!(codes_of(s, alice).await, unused(&second, at(50)));
    assert!(!s.use_recovery_code(alice, &first[3], at(51)).await.unwrap());
    assert!(
        s.use_recovery_code(alice, &second[3], at(51))
            .await
            .unwrap()
    );
    // Bob's set is his own.
    let bobs = recovery_set(3);
    s.replace_recovery_codes(bob, &bobs, at(52)).await.unwrap();
    assert_eq!(codes_of(s, bob).await, unused(&bobs, at(52)));
    assert_eq!(s.recovery_codes(alice).await.unwrap().len(), 10);
    let bobs_key = new_factor(bob, FactorKind::Passkey, "Bob's", T0);
    s.add_factor(&bobs_key).await.unwrap();

    // Everything of Alice's at once (`user mfa reset`); Bob's untouched.
    assert_eq!(s.remove_user_factors(alice).await.unwrap(), 2);
    assert!(s.user_factors(alice).await.unwrap().is_empty());
    assert!(s.recovery_codes(alice).await.unwrap().is_empty());
    assert_eq!(s.factor(&totp.id).await.unwrap(), None);
    assert_eq!(s.remove_user_factors(alice).await.unwrap(), 0);
    assert_eq!(s.user_factors(bob).await.unwrap(), vec![bobs_key.clone()]);
    assert_eq!(codes_of(s, bob).await, unused(&bobs, at(52)));

    // An empty set clears the codes.
    s.replace_recovery_codes(alice, &first, at(60))
        .await
        .unwrap();
    s.replace_recovery_codes(alice, &[], at(61)).await.unwrap();
    assert!(s.recovery_codes(alice).await.unwrap().is_empty());

    // Deleting a user deletes its factors and codes.
    assert!(s.delete_user(bob).await.unwrap());
    assert_eq!(s.factor(&bobs_key.id).await.unwrap(), None);
    assert!(s.user_factors(bob).await.unwrap().is_empty());
    assert!(s.recovery_codes(bob).await.unwrap().is_empty());
}

/// One `#[tokio::test]` per user-store check, for a store made by `$make` (an expression
/// of a future that yields the store).
#[macro_export]
macro_rules! user_store_tests {
    ($make:expr) => {
        $crate::__conformance_case!($make, users_crud);
        $crate::__conformance_case!($make, users_concurrent_create);
        $crate::__conformance_case!($make, users_replace_password_hash);
        $crate::__conformance_case!($make, users_password_hashes_after);
        $crate::__conformance_case!($make, users_import);
        $crate::__conformance_case!($make, users_disable);
        $crate::__conformance_case!($make, factors);
    };
}

/// One `#[tokio::test]` per session-store check (sessions, refresh families, revocation,
/// throttling), for a store made by `$make`.
#[macro_export]
macro_rules! ephemeral_store_tests {
    ($make:expr) => {
        $crate::__conformance_case!($make, sessions_crud);
        $crate::__conformance_case!($make, sessions_concurrent_create);
        $crate::__conformance_case!($make, sessions_expiry);
        $crate::__conformance_case!($make, sessions_user_index);
        $crate::__conformance_case!($make, sessions_revoke_all_races_login);
        $crate::__conformance_case!($make, refresh_rotation_and_reuse);
        $crate::__conformance_case!($make, refresh_expiry);
        $crate::__conformance_case!($make, refresh_peek_family);
        $crate::__conformance_case!($make, refresh_concurrent_rotate);
        $crate::__conformance_case!($make, refresh_revocation);
        $crate::__conformance_case!($make, revocation);
        $crate::__conformance_case!($make, throttle);
        $crate::__conformance_case!($make, throttle_attempts);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_case {
    ($make:expr, $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let store = $make.await;
            $crate::conformance::$name(&store).await;
        }
    };
}
