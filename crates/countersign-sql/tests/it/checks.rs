//! Checks run against both backends, beyond the conformance suite.

use std::sync::Arc;
use std::time::Duration;

use countersign::clock::{ManualClock, UnixTime};
use countersign::password::PasswordHash;
use countersign::refresh::{RefreshFamily, RefreshHash, RefreshPolicy, RotateOutcome};
use countersign::session::{SessionPolicy, SessionRecord, SessionToken};
use countersign::store::StoreResult;
use countersign::store::{
    CorruptRow, RefreshStore, RevocationStore, SessionStore, StoreError, ThrottleStore, UserStore,
};
use countersign::sweep::{Sweep, SweepReport, continuously_delete_expired};
use countersign::user::{NewUser, Role, UserId, Username};
use countersign_sql::SqlStore;

pub const T0: UnixTime = UnixTime(1_800_000_000);

/// Run a statement outside the traits, on the connection that writes.
pub async fn exec(store: &SqlStore, stmt: &str) {
    match store {
        SqlStore::Sqlite(s) => {
            sqlx::query(stmt).execute(s.write_pool()).await.unwrap();
        }
        SqlStore::Postgres(s) => {
            sqlx::query(stmt).execute(s.pool()).await.unwrap();
        }
        _ => unreachable!(),
    }
}

/// Rows in a table.
pub async fn rows(store: &SqlStore, table: &str) -> i64 {
    let stmt = format!("SELECT COUNT(*) FROM {table}");
    match store {
        SqlStore::Sqlite(s) => sqlx::query_scalar(&stmt)
            .fetch_one(s.read_pool())
            .await
            .unwrap(),
        SqlStore::Postgres(s) => sqlx::query_scalar(&stmt).fetch_one(s.pool()).await.unwrap(),
        _ => unreachable!(),
    }
}

fn session(user: i64, now: UnixTime, idle_secs: i64, absolute_secs: i64) -> SessionRecord {
    let policy = SessionPolicy {
        idle_secs,
        absolute_secs,
        touch_every_secs: 60,
    };
    SessionRecord::new(
        &SessionToken::generate(),
        UserId(user),
        Username::parse("someone").unwrap(),
        Role::user(),
        &policy,
        now,
    )
}

fn hash() -> RefreshHash {
    RefreshHash::from_stored(SessionToken::generate().key().to_string())
}

/// A store that sends the outcome of each sweep pass to the test.
struct Reporting(
    SqlStore,
    tokio::sync::mpsc::UnboundedSender<Result<SweepReport, String>>,
);

#[async_trait::async_trait]
impl Sweep for Reporting {
    async fn delete_expired(&self, now: UnixTime) -> StoreResult<SweepReport> {
        let result = self.0.delete_expired(now).await;
        let _ = self
            .1
            .send(result.as_ref().copied().map_err(ToString::to_string));
        result
    }
}

/// The sweeper removes exactly what has expired at its clock's time, and keeps the rest.
pub async fn sweeper_removes_expired_rows(store: SqlStore) {
    let dead_session = session(1, T0, 50, 100);
    let live_session = session(1, T0, 1000, 2000);
    for r in [&dead_session, &live_session] {
        store.create_session(r).await.unwrap();
    }
    let short = RefreshPolicy {
        idle_secs: 50,
        absolute_secs: 100,
    };
    let long = RefreshPolicy::default();
    let ended = RefreshFamily::new(UserId(1), &short, T0);
    let revoked = RefreshFamily::new(UserId(1), &long, T0);
    let live = RefreshFamily::new(UserId(1), &long, T0);
    let live_token = hash();
    store.create_family(&ended, &hash()).await.unwrap();
    store.create_family(&revoked, &hash()).await.unwrap();
    store.create_family(&live, &live_token).await.unwrap();
    assert!(store.revoke_family(&revoked.id).await.unwrap());
    store.deny_jti("dead-jti", T0.add_secs(10)).await.unwrap();
    store
        .deny_jti("live-jti", T0.add_secs(10_000))
        .await
        .unwrap();
    store.hit("dead-key", 10, T0).await.unwrap();
    store.hit("live-key", 10_000, T0).await.unwrap();

    let clock = ManualClock::new(T0.add_secs(100));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sweeper = tokio::spawn(continuously_delete_expired(
        Reporting(store.clone(), tx),
        Duration::from_millis(1),
        Arc::new(clock),
    ));
    let report = rx.recv().await.unwrap().unwrap();
    sweeper.abort();
    let SweepReport {
        sessions,
        families,
        denied_jtis,
        throttle_keys,
        ..
    } = report;
    assert_eq!(
        (sessions, families, denied_jtis, throttle_keys),
        (1, 2, 1, 1)
    );

    assert_eq!(rows(&store, "sessions").await, 1);
    assert_eq!(rows(&store, "refresh_families").await, 1);
    // The swept families' tokens went with them.
    assert_eq!(rows(&store, "refresh_tokens").await, 1);
    assert_eq!(rows(&store, "jti_denylist").await, 1);
    assert_eq!(rows(&store, "throttle").await, 1);
    let now = T0.add_secs(100);
    assert!(
        store
            .load_session(&live_session.key, now)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.is_jti_denied("live-jti", now).await.unwrap());
    assert_eq!(store.peek("live-key", now).await.unwrap().0, 1);
    let out = store
        .rotate(&[live_token], &hash(), 100, now)
        .await
        .unwrap();
    assert!(matches!(out, RotateOutcome::Rotated { .. }), "{out:?}");
}

/// A sweep deletes in batches and keeps going until everything expired is gone.
pub async fn sweep_goes_past_one_batch(store: SqlStore) {
    let n = 1_203;
    for _ in 0..n {
        store.create_session(&session(2, T0, 10, 20)).await.unwrap();
    }
    store
        .create_session(&session(2, T0, 1000, 2000))
        .await
        .unwrap();
    assert_eq!(store.sweep_sessions(T0.add_secs(10)).await.unwrap(), n);
    assert_eq!(rows(&store, "sessions").await, 1);
    assert_eq!(store.sweep_sessions(T0.add_secs(10)).await.unwrap(), 0);
}

fn corrupt(e: &StoreError) -> bool {
    matches!(e, StoreError::Backend(source) if source.downcast_ref::<CorruptRow>().is_some())
}

/// Rows edited by hand into values the engine refuses are backend errors, not panics.
pub async fn corrupt_rows_are_backend_errors(store: SqlStore) {
    exec(
        &store,
        "INSERT INTO users (username, role, password_hash, created_at) \
         VALUES ('not a name!', 'user', 'x', 0)",
    )
    .await;
    let e = store.user_by_name("not a name!").await.unwrap_err();
    assert!(corrupt(&e), "{e:?}");
    let e = store.list_users().await.unwrap_err();
    assert!(corrupt(&e), "{e:?}");

    let r = session(3, T0, 100, 200);
    store.create_session(&r).await.unwrap();
    exec(
        &store,
        &format!(
            "UPDATE sessions SET role = 'Admin!' WHERE key = '{}'",
            r.key
        ),
    )
    .await;
    let e = store.load_session(&r.key, T0).await.unwrap_err();
    assert!(corrupt(&e), "{e:?}");

    store.hit("negative", 60, T0).await.unwrap();
    exec(
        &store,
        "UPDATE throttle SET count = -1 WHERE key = 'negative'",
    )
    .await;
    let e = store.peek("negative", T0).await.unwrap_err();
    assert!(corrupt(&e), "{e:?}");
}

/// A store whose connections are all busy past the acquire timeout is unavailable (503),
/// not failed (500).
pub async fn exhausted_pool_is_unavailable(store: SqlStore) {
    let _held = match &store {
        SqlStore::Sqlite(s) => Held::Sqlite(s.write_pool().acquire().await.unwrap()),
        SqlStore::Postgres(s) => Held::Postgres(s.pool().acquire().await.unwrap()),
        _ => unreachable!(),
    };
    let e = store
        .create_session(&session(4, T0, 100, 200))
        .await
        .unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
}

#[allow(dead_code)] // held for its drop
enum Held {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

/// A deleted user's id is never given to a new user (ids are JWT subjects).
pub async fn user_ids_are_not_reused(store: SqlStore) {
    let make = |name: &str| NewUser {
        username: Username::parse(name).unwrap(),
        role: Role::user(),
        password_hash: PasswordHash::from_phc("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$x"),
        created_at: T0,
    };
    let first = store.create_user(make("first")).await.unwrap();
    let second = store.create_user(make("second")).await.unwrap();
    assert!(store.delete_user(second.id).await.unwrap());
    let third = store.create_user(make("third")).await.unwrap();
    assert!(
        third.id > second.id && second.id > first.id,
        "{first:?} {second:?} {third:?}"
    );
}

/// Migration 3 (second factors) on a database at version 2 that holds a session and a
/// refresh family: both read afterwards as password logins made when they were created,
/// and the new tables are there. `store` is connected, not migrated; `dialect` names the
/// migrations directory.
pub async fn migration_3_keeps_sessions_and_families(store: SqlStore, dialect: &str) {
    // The first two migrations, as released: a directory with just their files.
    let dir = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("0001_") || name.starts_with("0002_") {
            std::fs::copy(entry.path(), dir.path().join(name)).unwrap();
        }
    }
    let v2 = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    assert_eq!(v2.iter().count(), 2);
    match &store {
        SqlStore::Sqlite(s) => v2.run(s.write_pool()).await.unwrap(),
        SqlStore::Postgres(s) => v2.run(s.pool()).await.unwrap(),
        _ => unreachable!(),
    }

    let created = T0.add_secs(-100);
    let session = session(7, created, 3600, 7200);
    exec(
        &store,
        &format!(
            "INSERT INTO sessions (key, user_id, username, role, created_at, last_seen, \
             idle_deadline, absolute_deadline, expires_at, csrf_token, user_agent, ip) \
             VALUES ('{}', 7, 'someone', 'user', {c}, {c}, {i}, {a}, {i}, '{}', '', '')",
            session.key.as_str(),
            session.csrf_token,
            c = created.secs(),
            i = session.idle_deadline.secs(),
            a = session.absolute_deadline.secs(),
        ),
    )
    .await;
    let family = RefreshFamily::new(
        UserId(7),
        &RefreshPolicy {
            idle_secs: 3600,
            absolute_secs: 7200,
        },
        created,
    );
    let token = RefreshHash::from_stored(countersign::random::opaque_token());
    exec(
        &store,
        &format!(
            "INSERT INTO refresh_families (id, user_id, created_at, idle_deadline, \
             absolute_deadline, expires_at, revoked) VALUES ('{}', 7, {}, {i}, {}, {i}, FALSE)",
            family.id.0,
            created.secs(),
            family.absolute_deadline.secs(),
            i = family.idle_deadline.secs(),
        ),
    )
    .await;
    exec(
        &store,
        &format!(
            "INSERT INTO refresh_tokens (hash, family_id, retired) VALUES ('{}', '{}', FALSE)",
            token.as_str(),
            family.id.0
        ),
    )
    .await;

    store.migrate().await.unwrap();
    assert_eq!(rows(&store, "_sqlx_migrations").await, 3);
    // `SessionRecord::new` and `RefreshFamily::new` make password logins made at `created`.
    let loaded = store.load_session(&session.key, T0).await.unwrap().unwrap();
    assert_eq!(loaded, session);
    assert_eq!(loaded.auth_time, created);
    assert_eq!(loaded.amr.to_text(), "pwd");
    let peeked = store
        .peek_family(std::slice::from_ref(&token), T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(peeked, family);
    assert_eq!(rows(&store, "mfa_factors").await, 0);
    assert_eq!(rows(&store, "mfa_recovery_codes").await, 0);
}
