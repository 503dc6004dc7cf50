//! Second factors and recovery codes.

use crate::clock::UnixTime;
use crate::mfa::recovery::RecoveryHash;
use crate::mfa::{Factor, FactorId, FactorKind, RecoveryCodeRecord};
use crate::store::{StoreError, UserStore};
use crate::user::{NewUser, Role, User, UserId};

use super::fixtures::*;

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
