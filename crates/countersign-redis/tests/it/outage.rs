//! Redis goes away and comes back: operations fail fast as `Unavailable` (the server's
//! 503), then succeed again without any help once the server is back.

use std::error::Error as _;
use std::future::Future;
use std::time::Duration;

use countersign::clock::{Clock, SystemClock};
use countersign::refresh::RefreshHash;
use countersign::session::{SessionPolicy, SessionRecord, SessionToken};
use countersign::store::{
    RefreshStore, RevocationStore, SessionStore, StoreError, StoreResult, ThrottleStore,
};
use countersign::user::{Role, UserId, Username};
use countersign_redis::{RedisError, RedisOptions, connect};

use crate::support::ChildRedis;

/// The call must come back by itself (the store's own timeouts bound it); this outer limit
/// only turns a hang into a failure instead of a stuck test run.
async fn returns<T>(call: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the store call hung instead of failing")
}

fn assert_unavailable<T: std::fmt::Debug>(what: &str, result: StoreResult<T>) {
    let err = result.expect_err(what);
    assert!(err.is_unavailable(), "{what}: {err:?}");
    // The cause is kept, typed, not flattened into a string.
    let source = err.source().expect("a source");
    assert!(
        source.downcast_ref::<redis::RedisError>().is_some()
            || matches!(
                source.downcast_ref::<RedisError>(),
                Some(RedisError::Timeout)
            ),
        "{what}: {source:?}"
    );
}

fn session() -> SessionRecord {
    SessionRecord::new(
        &SessionToken::generate(),
        UserId(42),
        Username::parse("outage").unwrap(),
        Role::user(),
        &SessionPolicy::default(),
        SystemClock.now(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fails_fast_then_recovers_by_itself() {
    let Some(mut server) = ChildRedis::start(&[]) else {
        return;
    };
    let mut opts = RedisOptions::default();
    opts.connect_timeout = Duration::from_millis(300);
    opts.command_timeout = Duration::from_millis(300);
    opts.reconnect_retries = 1;
    opts.reconnect_max_delay = Duration::from_millis(100);
    let store = connect(&server.url(None), &opts).await.unwrap();
    let now = SystemClock.now();
    let r = session();
    store.create_session(&r).await.unwrap();
    assert_eq!(
        store.load_session(&r.key, now).await.unwrap(),
        Some(r.clone())
    );

    server.stop();
    assert_unavailable("load", returns(store.load_session(&r.key, now)).await);
    assert_unavailable("create", returns(store.create_session(&session())).await);
    assert_unavailable(
        "touch",
        returns(store.touch_session(&r.key, now, now)).await,
    );
    assert_unavailable(
        "list",
        returns(store.list_user_sessions(r.user_id, now)).await,
    );
    assert_unavailable("ping", returns(store.ping_sessions()).await);
    let h = RefreshHash::from_stored("h");
    assert_unavailable(
        "rotate",
        returns(store.rotate(std::slice::from_ref(&h), &h, 60, now)).await,
    );
    assert_unavailable(
        "peek family",
        returns(store.peek_family(std::slice::from_ref(&h), now)).await,
    );
    assert_unavailable("jti", returns(store.is_jti_denied("j", now)).await);
    assert_unavailable("hit", returns(store.hit("k", 60, now)).await);
    assert_unavailable("peek", returns(store.peek("k", now)).await);
    // Still down a while later: every call keeps failing, none hangs.
    for _ in 0..5 {
        assert_unavailable("load again", returns(store.load_session(&r.key, now)).await);
    }

    server.restart();
    // The connection manager reconnects in the background; poll (bounded) until it has.
    let mut recovered = false;
    for _ in 0..100 {
        match returns(store.ping_sessions()).await {
            Ok(()) => {
                recovered = true;
                break;
            }
            Err(e) => assert!(e.is_unavailable(), "{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the store did not reconnect within 10 s");

    // The restarted server kept nothing (no persistence); scripts are loaded again on
    // first use and every kind of operation works.
    assert_eq!(store.load_session(&r.key, now).await.unwrap(), None);
    store.create_session(&r).await.unwrap();
    assert_eq!(
        store.load_session(&r.key, now).await.unwrap(),
        Some(r.clone())
    );
    assert_eq!(store.hit("k", 60, now).await.unwrap().0, 1);
    assert!(matches!(
        store.create_session(&r).await,
        Err(StoreError::Conflict)
    ));
}

#[tokio::test]
async fn connecting_to_nothing_fails_fast() {
    let port = crate::support::free_port();
    let mut opts = RedisOptions::default();
    opts.connect_timeout = Duration::from_millis(200);
    opts.reconnect_retries = 1;
    opts.reconnect_max_delay = Duration::from_millis(50);
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        connect(&format!("redis://127.0.0.1:{port}"), &opts),
    )
    .await
    .expect("connect hung");
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            RedisError::Connect { .. } | RedisError::ConnectTimeout { .. }
        ),
        "{err:?}"
    );
}
