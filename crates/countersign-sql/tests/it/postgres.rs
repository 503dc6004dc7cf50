//! PostgreSQL: the conformance suite against a real server, each test in a fresh schema.
//!
//! The server is `postgres://postgres@127.0.0.1:5432/test` unless `COUNTERSIGN_TEST_PG`
//! says otherwise. When it cannot be reached the tests skip with a message, except under
//! `CI=true`, where they fail.
//!
//! A fresh schema per test (not one shared schema) because some checks sweep: a sweep at a
//! late time would delete the sessions another test, running in parallel, just created.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use countersign_sql::{PgStore, PoolOptions, SqlStore, connect, redacted_url};

use crate::checks;

fn base_url() -> String {
    std::env::var("COUNTERSIGN_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A connection to the test server, or `None` (with the reason printed) when it cannot be
/// reached outside CI.
async fn server() -> Option<PgStore> {
    let url = base_url();
    let mut opts = PoolOptions::default();
    opts.acquire_timeout = Duration::from_secs(5);
    match PgStore::connect(&url, &opts).await {
        Ok(store) => Some(store),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "CI=true and PostgreSQL at {} is unreachable: {e:?}",
            redacted_url(&url)
        ),
        Err(e) => {
            eprintln!(
                "skipping: PostgreSQL at {} is unreachable ({e}; {:?}); set COUNTERSIGN_TEST_PG \
                 or start it; under CI=true this fails",
                redacted_url(&url),
                std::error::Error::source(&e).map(ToString::to_string)
            );
            None
        }
    }
}

/// A new, empty schema; schemas left by runs more than an hour old are dropped first.
async fn fresh_schema(server: &PgStore) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let now = unix_now();
    let stale: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'cs\\_it\\_%'",
    )
    .fetch_all(server.pool())
    .await
    .unwrap();
    for name in stale {
        let born = name.split('_').nth(2).and_then(|t| t.parse::<u64>().ok());
        if born.is_some_and(|t| t + 3600 < now) {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(server.pool())
                .await;
        }
    }
    let name = format!(
        "cs_it_{now}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    sqlx::query(&format!("CREATE SCHEMA {name}"))
        .execute(server.pool())
        .await
        .unwrap();
    name
}

/// The URL of the test server with `search_path` set to `schema`.
fn schema_url(schema: &str) -> String {
    with_param(&base_url(), &format!("options[search_path]={schema}"))
}

/// A migrated store in a fresh schema, or `None` when the server is unreachable.
async fn store_with(opts: &PoolOptions) -> Option<SqlStore> {
    let server = server().await?;
    let schema = fresh_schema(&server).await;
    server.close().await;
    let store = connect(&schema_url(&schema), opts).await.unwrap();
    store.migrate().await.unwrap();
    Some(store)
}

pub(crate) async fn store() -> Option<SqlStore> {
    store_with(&PoolOptions::default()).await
}

/// The conformance macros await `$make` inside the test function, so a block that returns
/// from the test when there is no server (and yields a ready future otherwise) skips it.
macro_rules! pg_store {
    () => {{
        let Some(store) = store().await else { return };
        std::future::ready(store)
    }};
}

countersign::user_store_tests!(pg_store!());
countersign::ephemeral_store_tests!(pg_store!());

#[tokio::test]
async fn concurrent_migrators_on_a_new_database() {
    let Some(server) = server().await else { return };
    let db = format!("cs_it_{}_{}", unix_now(), std::process::id());
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(server.pool())
        .await
        .unwrap();
    let base = base_url();
    let url = match base.rfind('/') {
        Some(slash) if !base[slash..].contains('?') => format!("{}/{db}", &base[..slash]),
        _ => panic!("COUNTERSIGN_TEST_PG must end with /DATABASE (no query) for this test"),
    };
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
    countersign::conformance::users_crud(&stores[2]).await;
    for store in stores {
        store.close().await;
    }
    sqlx::query(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .execute(server.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn concurrent_migrators_on_a_new_schema() {
    let Some(server) = server().await else { return };
    let schema = fresh_schema(&server).await;
    let url = schema_url(&schema);
    let results = futures_join4(
        migrate_fresh(&url),
        migrate_fresh(&url),
        migrate_fresh(&url),
        migrate_fresh(&url),
    )
    .await;
    let stores: Vec<SqlStore> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(checks::rows(&stores[0], "_sqlx_migrations").await, 3);
    countersign::conformance::sessions_crud(&stores[1]).await;
}

async fn migrate_fresh(url: &str) -> Result<SqlStore, countersign_sql::SqlError> {
    let store = connect(url, &PoolOptions::default()).await?;
    store.migrate().await?;
    Ok(store)
}

async fn futures_join4<T>(
    a: impl Future<Output = T>,
    b: impl Future<Output = T>,
    c: impl Future<Output = T>,
    d: impl Future<Output = T>,
) -> Vec<T> {
    let (a, b, c, d) = tokio::join!(a, b, c, d);
    vec![a, b, c, d]
}

#[tokio::test]
async fn sweeper_removes_expired_rows() {
    let Some(store) = store().await else { return };
    checks::sweeper_removes_expired_rows(store).await;
}

#[tokio::test]
async fn sweep_goes_past_one_batch() {
    let Some(store) = store().await else { return };
    checks::sweep_goes_past_one_batch(store).await;
}

#[tokio::test]
async fn corrupt_rows_are_backend_errors() {
    let Some(store) = store().await else { return };
    checks::corrupt_rows_are_backend_errors(store).await;
}

#[tokio::test]
async fn user_ids_are_not_reused() {
    let Some(store) = store().await else { return };
    checks::user_ids_are_not_reused(store).await;
}

#[tokio::test]
async fn exhausted_pool_is_unavailable() {
    let mut opts = PoolOptions::default();
    opts.max_connections = Some(1);
    opts.acquire_timeout = Duration::from_millis(100);
    let Some(store) = store_with(&opts).await else {
        return;
    };
    checks::exhausted_pool_is_unavailable(store).await;
}

/// A password in the URL (trust authentication ignores it) never shows.
#[tokio::test]
async fn a_connected_store_does_not_show_its_password() {
    let Some(server) = server().await else { return };
    server.close().await;
    let url = base_url().replacen("://postgres@", "://postgres:hunter2@", 1);
    if !url.contains("hunter2") {
        eprintln!("skipping: COUNTERSIGN_TEST_PG is not of the form postgres://postgres@…");
        return;
    }
    let store = connect(&url, &PoolOptions::default()).await.unwrap();
    for shown in [
        store.to_string(),
        format!("{store:?}"),
        format!("{store:#?}"),
        store.url().to_owned(),
    ] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}

/// The server drops the store's connection (a restart, an admin's `pg_terminate_backend`):
/// the next call is unavailable (503), not failed (500), and the one after works again on a
/// fresh connection.
#[tokio::test]
async fn a_dropped_connection_is_unavailable_then_replaced() {
    let Some(server) = server().await else { return };
    let schema = fresh_schema(&server).await;
    let name = format!("{schema}_victim");
    let url = with_param(&schema_url(&schema), &format!("application_name={name}"));
    let mut opts = PoolOptions::default();
    opts.max_connections = Some(1);
    let store = connect(&url, &opts).await.unwrap();
    store.migrate().await.unwrap();
    countersign::store::UserStore::ping(&store).await.unwrap();
    // sqlx checks a released connection in the background before it goes back to the
    // idle queue; kill it only once it is there, or that check finds it dead first.
    let SqlStore::Postgres(pg) = &store else {
        unreachable!()
    };
    for _ in 0..1_000_000 {
        if pg.pool().num_idle() == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(pg.pool().num_idle(), 1);

    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&name)
    .fetch_all(server.pool())
    .await
    .unwrap();
    assert_eq!(killed, [true]);

    let e = countersign::store::UserStore::user_by_id(&store, countersign::user::UserId(1))
        .await
        .unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    // The broken connection was discarded on release; this call waits for the slot and
    // opens a fresh one.
    countersign::store::UserStore::ping(&store).await.unwrap();
}

/// `sslmode=require` gets an encrypted connection (the `tls` feature).
#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_connections() {
    let Some(server) = server().await else { return };
    let ssl_on: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(server.pool())
        .await
        .unwrap();
    if ssl_on != "on" {
        eprintln!("skipping: the test server has ssl = {ssl_on}");
        return;
    }
    let url = with_param(&base_url(), "sslmode=require");
    let Ok(SqlStore::Postgres(store)) = connect(&url, &PoolOptions::default()).await else {
        panic!("sslmode=require failed against a server with ssl = on")
    };
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(encrypted);
}

#[tokio::test]
async fn migration_3_keeps_sessions_and_families() {
    let Some(server) = server().await else { return };
    let schema = fresh_schema(&server).await;
    server.close().await;
    let store = connect(&schema_url(&schema), &PoolOptions::default())
        .await
        .unwrap();
    checks::migration_3_keeps_sessions_and_families(store, "postgres").await;
}
