//! What the store writes into Redis: keys expire at the earlier deadline (plus the grace
//! for clock differences), indexes outlive their members and are pruned when Redis expires
//! one, prefixes isolate deployments, and records in an unexpected shape are backend
//! errors.

use countersign::clock::{Clock, SystemClock, UnixTime};
use countersign::mfa::Amr;
use countersign::refresh::{RefreshFamily, RefreshHash, RefreshPolicy, RotateOutcome};
use countersign::session::{SessionPolicy, SessionRecord, SessionToken};
use countersign::store::{RefreshStore, RevocationStore, SessionStore, StoreError, ThrottleStore};
use countersign::user::{Role, UserId, Username};
use countersign_redis::{RedisError, RedisOptions};
use redis::AsyncCommands as _;

use crate::support::{raw, test_store};

fn user() -> UserId {
    let n = i64::from_le_bytes(countersign::random::bytes::<8>()).rem_euclid(1 << 40);
    UserId(n + 1)
}

fn session(user: UserId, policy: &SessionPolicy, now: UnixTime) -> SessionRecord {
    SessionRecord::new(
        &SessionToken::generate(),
        user,
        Username::parse("layout").unwrap(),
        Role::user(),
        policy,
        now,
    )
}

fn hash() -> RefreshHash {
    RefreshHash::from_stored(countersign::random::opaque_token())
}

/// Where the store puts a key's Redis expiry for deadline `t`: the grace past it.
fn at(t: UnixTime) -> i64 {
    let grace = RedisOptions::default().expiry_grace;
    t.secs() * 1000 + i64::try_from(grace.as_millis()).unwrap()
}

/// Expiry time in Unix milliseconds (`PEXPIRETIME`), with a positive `PTTL` when there is
/// one.
async fn expiry_ms(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    let at: i64 = redis::cmd("PEXPIRETIME")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap();
    if at > 0 {
        let ttl: i64 = conn.pttl(key).await.unwrap();
        assert!(ttl > 0, "{key}: PTTL {ttl}");
    }
    at
}

#[tokio::test]
async fn session_keys_expire_at_the_earlier_deadline() {
    let Some(t) = test_store().await else { return };
    let (s, p) = (t.inner(), t.inner().key_prefix().to_owned());
    let mut conn = raw().await;
    let now = SystemClock.now();
    let u = user();

    // Idle deadline first.
    let policy = SessionPolicy {
        idle_secs: 100,
        absolute_secs: 250,
        touch_every_secs: 60,
    };
    let r = session(u, &policy, now);
    s.create_session(&r).await.unwrap();
    let key = format!("{p}session:{}", r.key);
    let index = format!("{p}user:{}:sessions", u.0);
    assert_eq!(expiry_ms(&mut conn, &key).await, at(now.add_secs(100)));
    // The index lives as long as its longest-lived member can.
    assert_eq!(expiry_ms(&mut conn, &index).await, at(now.add_secs(250)));

    // A touch moves the expiry, but never past the absolute deadline.
    assert!(
        s.touch_session(&r.key, now.add_secs(10), now.add_secs(200))
            .await
            .unwrap()
    );
    assert_eq!(expiry_ms(&mut conn, &key).await, at(now.add_secs(200)));
    assert!(
        s.touch_session(&r.key, now.add_secs(20), now.add_secs(400))
            .await
            .unwrap()
    );
    assert_eq!(expiry_ms(&mut conn, &key).await, at(now.add_secs(250)));

    // Absolute deadline first.
    let short = SessionPolicy {
        idle_secs: 300,
        absolute_secs: 120,
        touch_every_secs: 60,
    };
    let r2 = session(u, &short, now);
    s.create_session(&r2).await.unwrap();
    let key2 = format!("{p}session:{}", r2.key);
    assert_eq!(expiry_ms(&mut conn, &key2).await, at(now.add_secs(120)));
    // A shorter-lived member does not shorten the index.
    assert_eq!(expiry_ms(&mut conn, &index).await, at(now.add_secs(250)));

    // A touch never resurrects a deleted session.
    assert!(s.delete_session(&r.key).await.unwrap());
    assert!(
        !s.touch_session(&r.key, now.add_secs(30), now.add_secs(130))
            .await
            .unwrap()
    );
    let exists: bool = conn.exists(&key).await.unwrap();
    assert!(!exists);
}

#[tokio::test]
async fn family_denylist_and_counter_keys_expire() {
    let Some(t) = test_store().await else { return };
    let (s, p) = (t.inner(), t.inner().key_prefix().to_owned());
    let mut conn = raw().await;
    let now = SystemClock.now();
    let u = user();

    let policy = RefreshPolicy {
        idle_secs: 100,
        absolute_secs: 1000,
    };
    let family = RefreshFamily::new(u, &policy, now);
    let (t1, t2) = (hash(), hash());
    s.create_family(&family, &t1).await.unwrap();
    let abs_ms = at(now.add_secs(1000));
    for key in [
        format!("{p}family:{}", family.id.0),
        format!("{p}family:{}:tokens", family.id.0),
        format!("{p}refresh:{}", t1.as_str()),
        format!("{p}user:{}:families", u.0),
    ] {
        assert_eq!(expiry_ms(&mut conn, &key).await, abs_ms, "{key}");
    }
    let out = s
        .rotate(std::slice::from_ref(&t1), &t2, 100, now.add_secs(5))
        .await
        .unwrap();
    assert!(matches!(out, RotateOutcome::Rotated { .. }), "{out:?}");
    let next = format!("{p}refresh:{}", t2.as_str());
    assert_eq!(expiry_ms(&mut conn, &next).await, abs_ms);

    // The denylist keeps the later time, and expires there.
    let jti = countersign::random::token_id();
    let jkey = format!("{p}jti:{jti}");
    s.deny_jti(&jti, now.add_secs(60)).await.unwrap();
    assert_eq!(expiry_ms(&mut conn, &jkey).await, at(now.add_secs(60)));
    s.deny_jti(&jti, now.add_secs(30)).await.unwrap();
    assert_eq!(expiry_ms(&mut conn, &jkey).await, at(now.add_secs(60)));
    assert!(s.is_jti_denied(&jti, now.add_secs(45)).await.unwrap());
    s.deny_jti(&jti, now.add_secs(90)).await.unwrap();
    assert_eq!(expiry_ms(&mut conn, &jkey).await, at(now.add_secs(90)));

    // A counter expires when its window ends.
    let ckey = format!("acct:{}", countersign::random::token_id());
    let (_, end) = s.hit(&ckey, 60, now).await.unwrap();
    assert_eq!(end, now.add_secs(60));
    assert_eq!(
        expiry_ms(&mut conn, &format!("{p}throttle:{ckey}")).await,
        at(now.add_secs(60))
    );

    // Issued-before marks have no expiry (documented: one small key per user).
    s.revoke_issued_before(u, now).await.unwrap();
    let ttl: i64 = conn
        .pttl(format!("{p}user:{}:issued_before", u.0))
        .await
        .unwrap();
    assert_eq!(ttl, -1);
}

#[tokio::test]
async fn index_entries_of_records_redis_expired_are_pruned() {
    let Some(t) = test_store().await else { return };
    let (s, p) = (t.inner(), t.inner().key_prefix().to_owned());
    let mut conn = raw().await;
    let now = SystemClock.now();
    let u = user();
    let policy = SessionPolicy::default();
    let (a, b) = (
        session(u, &policy, now),
        session(u, &policy, now.add_secs(1)),
    );
    s.create_session(&a).await.unwrap();
    s.create_session(&b).await.unwrap();
    // What Redis does when `a`'s deadline passes.
    let _: i64 = conn.del(format!("{p}session:{}", a.key)).await.unwrap();
    let listed = s.list_user_sessions(u, now.add_secs(2)).await.unwrap();
    assert_eq!(listed, vec![b.clone()]);
    let index: Vec<String> = conn
        .zrange(format!("{p}user:{}:sessions", u.0), 0, -1)
        .await
        .unwrap();
    assert_eq!(index, vec![b.key.to_string()]);
    // Revoke-all counts only records that still existed.
    assert_eq!(s.delete_user_sessions(u).await.unwrap(), 1);
    let left: i64 = conn
        .exists(format!("{p}user:{}:sessions", u.0))
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn prefixes_isolate_stores() {
    let (Some(a), Some(b)) = (test_store().await, test_store().await) else {
        return;
    };
    let now = SystemClock.now();
    let r = session(user(), &SessionPolicy::default(), now);
    a.inner().create_session(&r).await.unwrap();
    assert_eq!(b.inner().load_session(&r.key, now).await.unwrap(), None);
    b.inner().create_session(&r).await.unwrap();
    assert!(b.inner().delete_session(&r.key).await.unwrap());
    assert_eq!(
        a.inner().load_session(&r.key, now).await.unwrap(),
        Some(r.clone())
    );
    assert_eq!(b.inner().hit("k", 60, now).await.unwrap().0, 1);
    assert_eq!(a.inner().peek("k", now).await.unwrap().0, 0);
}

#[tokio::test]
async fn long_throttle_keys_are_stored_hashed() {
    let Some(t) = test_store().await else { return };
    let now = SystemClock.now();
    let long = format!("acct:{}", "a".repeat(100_000));
    assert_eq!(t.inner().hit(&long, 60, now).await.unwrap().0, 1);
    assert_eq!(t.inner().hit(&long, 60, now).await.unwrap().0, 2);
    assert_eq!(t.inner().peek(&long, now).await.unwrap().0, 2);
    let mut conn = raw().await;
    let keys: Vec<String> = conn
        .keys(format!("{}throttle:*", t.inner().key_prefix()))
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].len() < 128, "{}", keys[0]);
}

#[tokio::test]
async fn a_record_in_another_shape_is_a_backend_error() {
    let Some(t) = test_store().await else { return };
    let now = SystemClock.now();
    let r = session(user(), &SessionPolicy::default(), now);
    let mut conn = raw().await;
    let key = format!("{}session:{}", t.inner().key_prefix(), r.key);
    let _: i64 = conn.hset(&key, "user_id", "not a number").await.unwrap();
    let err = t.inner().load_session(&r.key, now).await.unwrap_err();
    let StoreError::Backend(source) = &err else {
        panic!("expected Backend, got {err:?}")
    };
    assert!(
        matches!(
            source.downcast_ref::<RedisError>(),
            Some(RedisError::Corrupt {
                record: "session",
                field: "user_id"
            })
        ),
        "{source:?}"
    );

    // A key of the wrong type: Redis's WRONGTYPE, kept as the source.
    let jti = countersign::random::token_id();
    let _: i64 = conn
        .sadd(format!("{}jti:{jti}", t.inner().key_prefix()), "x")
        .await
        .unwrap();
    let err = t.inner().is_jti_denied(&jti, now).await.unwrap_err();
    let StoreError::Backend(source) = &err else {
        panic!("expected Backend, got {err:?}")
    };
    assert!(
        source.downcast_ref::<redis::RedisError>().is_some(),
        "{source:?}"
    );
}

#[tokio::test]
async fn only_the_documented_keys_live_without_expiry() {
    let Some(t) = test_store().await else { return };
    let s = t.inner();
    let real = SystemClock.now();
    // Current times, and times whose deadlines are already past by Redis's clock.
    for now in [real, real.add_secs(-100_000)] {
        let u = user();
        let r = session(u, &SessionPolicy::default(), now);
        s.create_session(&r).await.unwrap();
        s.touch_session(&r.key, now.add_secs(1), now.add_secs(100))
            .await
            .unwrap();
        s.list_user_sessions(u, now).await.unwrap();
        let f = RefreshFamily::new(u, &RefreshPolicy::default(), now);
        let (t1, t2) = (hash(), hash());
        s.create_family(&f, &t1).await.unwrap();
        s.rotate(std::slice::from_ref(&t1), &t2, 100, now)
            .await
            .unwrap();
        s.rotate(std::slice::from_ref(&t1), &hash(), 100, now)
            .await
            .unwrap();
        s.deny_jti(&countersign::random::token_id(), now.add_secs(60))
            .await
            .unwrap();
        s.revoke_issued_before(u, now).await.unwrap();
        for _ in 0..3 {
            s.hit("acct:someone", 60, now).await.unwrap();
        }
        s.hit("acct:someone-else", 0, now).await.unwrap();
    }
    let mut conn = raw().await;
    let p = s.key_prefix();
    let keys: Vec<String> = conn.keys(format!("{p}*")).await.unwrap();
    assert!(!keys.is_empty());
    for key in keys {
        let ttl: i64 = conn.pttl(&key).await.unwrap();
        let rest = &key[p.len()..];
        let documented = rest == "sessions:by_expiry"
            || rest == "families:by_expiry"
            || rest.ends_with(":issued_before");
        assert!(ttl > 0 || documented, "{key} has PTTL {ttl}");
    }
}

#[tokio::test]
async fn records_written_with_past_times_stay_readable() {
    // The conformance suite's fixed times fall behind the wall clock in 2027; a time
    // already past by Redis's clock must not make a record vanish on arrival.
    let Some(t) = test_store().await else { return };
    let s = t.inner();
    let now = SystemClock.now().add_secs(-100_000);
    let r = session(user(), &SessionPolicy::default(), now);
    s.create_session(&r).await.unwrap();
    assert_eq!(s.load_session(&r.key, now).await.unwrap(), Some(r.clone()));
    let mut conn = raw().await;
    let ttl: i64 = conn
        .pttl(format!("{}session:{}", s.key_prefix(), r.key))
        .await
        .unwrap();
    let grace = RedisOptions::default().expiry_grace;
    assert!(
        ttl > 0 && ttl <= i64::try_from(grace.as_millis()).unwrap(),
        "{ttl}"
    );
    let jti = countersign::random::token_id();
    s.deny_jti(&jti, now.add_secs(60)).await.unwrap();
    assert!(s.is_jti_denied(&jti, now).await.unwrap());
    s.hit("acct:past", 60, now).await.unwrap();
    assert_eq!(
        s.hit("acct:past", 60, now).await.unwrap(),
        (2, now.add_secs(60))
    );
}

/// Records written by a version before sessions and families had `amr` and `auth_time`
/// (no such hash fields) read as password logins made when they were created.
#[tokio::test]
async fn records_without_amr_read_as_password_logins() {
    let Some(t) = test_store().await else { return };
    let (s, p) = (t.inner(), t.inner().key_prefix().to_owned());
    let mut conn = raw().await;
    let now = SystemClock.now();
    let mfa = Amr::PWD.with(Amr::OTP);

    let mut r = session(user(), &SessionPolicy::default(), now);
    r.amr = mfa;
    r.auth_time = now.add_secs(5);
    s.create_session(&r).await.unwrap();
    let key = format!("{p}session:{}", r.key);
    let amr: String = conn.hget(&key, "amr").await.unwrap();
    assert_eq!(amr, "pwd otp mfa");
    let _: i64 = conn.hdel(&key, &["amr", "auth_time"]).await.unwrap();
    let old = s.load_session(&r.key, now).await.unwrap().unwrap();
    assert_eq!((old.amr, old.auth_time), (Amr::PWD, r.created_at));
    let listed = s.list_user_sessions(r.user_id, now).await.unwrap();
    assert_eq!(listed, vec![old]);

    let policy = RefreshPolicy::default();
    let mut family = RefreshFamily::new(user(), &policy, now);
    family.amr = mfa;
    family.auth_time = now.add_secs(-60);
    let (t1, t2) = (hash(), hash());
    s.create_family(&family, &t1).await.unwrap();
    let fkey = format!("{p}family:{}", family.id.0);
    let _: i64 = conn.hdel(&fkey, &["amr", "auth_time"]).await.unwrap();
    let peeked = s
        .peek_family(std::slice::from_ref(&t1), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (peeked.amr, peeked.auth_time),
        (Amr::PWD, family.created_at)
    );
    let out = s
        .rotate(std::slice::from_ref(&t1), &t2, policy.idle_secs, now)
        .await
        .unwrap();
    let RotateOutcome::Rotated { family: rotated } = out else {
        panic!("expected Rotated, got {out:?}")
    };
    assert_eq!(
        (rotated.amr, rotated.auth_time),
        (Amr::PWD, family.created_at)
    );
}
