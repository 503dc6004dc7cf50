//! The user store: accounts, password hashes, imports, disabling.

use crate::password::PasswordHash;
use crate::store::{ImportedUser, StoreError, UserStore};
use crate::user::{NewUser, Role, UserId, Username};

use super::fixtures::*;

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
