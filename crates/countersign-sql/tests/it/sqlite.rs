//! SQLite: the conformance suite on a fresh database file per test, and the rest.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use countersign::session::{SessionPolicy, SessionRecord, SessionToken};
use countersign::store::{SessionStore, StoreError, UserStore};
use countersign::user::{Role, UserId, Username};
use countersign_sql::{DB_FILE, PoolOptions, SqlStore, SqliteStore, connect};
use tempfile::TempDir;

use crate::checks::{self, T0};

/// One directory for this process's databases. The conformance macros keep only the store
/// a factory returns, so a per-test `TempDir` guard would delete the file under the open
/// store; this one lives as long as the process. Directories of earlier runs (older than
/// an hour) are removed when it is made.
static DIR: LazyLock<TempDir> = LazyLock::new(|| {
    let parent = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if let Ok(entries) = std::fs::read_dir(&parent) {
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(3600)));
            if old && entry.file_name().to_string_lossy().starts_with("sql-it-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    tempfile::Builder::new()
        .prefix("sql-it-")
        .tempdir_in(parent)
        .unwrap()
});

/// A path for a new database in this process's directory.
fn fresh_path() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    DIR.path()
        .join(format!("t{}.db", N.fetch_add(1, Ordering::Relaxed)))
}

/// A migrated store on a new file.
async fn store() -> SqlStore {
    let url = format!("sqlite://{}?mode=rwc", fresh_path().display());
    let store = connect(&url, &PoolOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    store
}

countersign::user_store_tests!(store());
countersign::ephemeral_store_tests!(store());

#[tokio::test]
async fn memory_database_conformance_smoke() {
    // One connection for reads and writes, or each would see its own empty database.
    let store = connect("sqlite::memory:", &PoolOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    countersign::conformance::users_crud(&store).await;
    countersign::conformance::sessions_user_index(&store).await;
    countersign::conformance::refresh_rotation_and_reuse(&store).await;
}

#[tokio::test]
async fn uses_wal_and_the_pragmas() {
    let store = store().await;
    let SqlStore::Sqlite(s) = &store else {
        unreachable!()
    };
    for pool in [s.read_pool(), s.write_pool()] {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(sync, 1, "NORMAL");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(busy, 5000);
    }
    // Readers cannot write.
    let e = sqlx::query("DELETE FROM users")
        .execute(s.read_pool())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("readonly"), "{e}");
}

#[tokio::test]
async fn data_survives_reopening_the_file() {
    let dir = tempfile::tempdir_in(DIR.path()).unwrap();
    let data_dir = dir.path().join("data");
    let store = SqlStore::open_sqlite_in(&data_dir, &PoolOptions::default())
        .await
        .unwrap();
    assert!(data_dir.join(DB_FILE).exists());
    assert!(store.url().ends_with(DB_FILE), "{store}");
    store.migrate().await.unwrap();
    let user = store
        .create_user(countersign::user::NewUser {
            username: Username::parse("durable").unwrap(),
            role: Role::admin(),
            password_hash: countersign::password::PasswordHash::from_phc("$argon2id$x"),
            created_at: T0,
        })
        .await
        .unwrap();
    let session = SessionRecord::new(
        &SessionToken::generate(),
        user.id,
        user.username.clone(),
        user.role.clone(),
        &SessionPolicy::default(),
        T0,
    );
    store.create_session(&session).await.unwrap();
    store.close().await;
    drop(store);

    let store = SqlStore::open_sqlite_in(&data_dir, &PoolOptions::default())
        .await
        .unwrap();
    // Migrating an up-to-date database is a no-op.
    store.migrate().await.unwrap();
    assert_eq!(store.user_by_name("durable").await.unwrap(), Some(user));
    assert_eq!(
        store.load_session(&session.key, T0).await.unwrap(),
        Some(session)
    );
}

#[tokio::test]
async fn concurrent_migrators_on_a_new_file() {
    let url = format!("sqlite://{}?mode=rwc", fresh_path().display());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let url = url.clone();
        tasks.spawn(async move {
            let store = connect(&url, &PoolOptions::default()).await?;
            store.migrate().await?;
            Ok::<_, countersign_sql::SqlError>(store)
        });
    }
    let mut stores = Vec::new();
    while let Some(done) = tasks.join_next().await {
        stores.push(done.unwrap().unwrap());
    }
    assert_eq!(checks::rows(&stores[0], "_sqlx_migrations").await, 3);
    countersign::conformance::users_crud(&stores[3]).await;
}

#[tokio::test]
async fn sweeper_removes_expired_rows() {
    checks::sweeper_removes_expired_rows(store().await).await;
}

#[tokio::test]
async fn sweep_goes_past_one_batch() {
    checks::sweep_goes_past_one_batch(store().await).await;
}

#[tokio::test]
async fn corrupt_rows_are_backend_errors() {
    checks::corrupt_rows_are_backend_errors(store().await).await;
}

#[tokio::test]
async fn user_ids_are_not_reused() {
    checks::user_ids_are_not_reused(store().await).await;
}

#[tokio::test]
async fn exhausted_pool_is_unavailable() {
    let url = format!("sqlite://{}?mode=rwc", fresh_path().display());
    let mut opts = PoolOptions::default();
    opts.acquire_timeout = Duration::from_millis(100);
    let store = connect(&url, &opts).await.unwrap();
    store.migrate().await.unwrap();
    checks::exhausted_pool_is_unavailable(store).await;
}

/// Another process holding the write lock past the busy timeout: unavailable, not failed.
#[tokio::test]
async fn locked_database_is_unavailable() {
    let url = format!("sqlite://{}?mode=rwc", fresh_path().display());
    let mut opts = PoolOptions::default();
    opts.busy_timeout = Duration::from_millis(100);
    let ours = SqliteStore::connect(&url, &opts).await.unwrap();
    ours.migrate().await.unwrap();
    let theirs = SqliteStore::connect(&url, &opts).await.unwrap();
    let mut lock = theirs
        .write_pool()
        .begin_with("BEGIN IMMEDIATE")
        .await
        .unwrap();
    sqlx::query("DELETE FROM throttle")
        .execute(&mut *lock)
        .await
        .unwrap();
    let e = ours.delete_user_sessions(UserId(1)).await.unwrap_err();
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    lock.rollback().await.unwrap();
    assert_eq!(ours.delete_user_sessions(UserId(1)).await.unwrap(), 0);
}

#[tokio::test]
async fn missing_file_without_rwc_is_a_connect_error() {
    let url = format!("sqlite://{}", fresh_path().display());
    let e = connect(&url, &PoolOptions::default()).await.unwrap_err();
    assert!(
        matches!(e, countersign_sql::SqlError::Connect { .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn migration_3_keeps_sessions_and_families() {
    let url = format!("sqlite://{}?mode=rwc", fresh_path().display());
    let store = connect(&url, &PoolOptions::default()).await.unwrap();
    checks::migration_3_keeps_sessions_and_families(store, "sqlite").await;
}
