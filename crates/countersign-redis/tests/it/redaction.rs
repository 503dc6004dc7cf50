//! A Redis URL's password never shows: not in `Display`, `Debug`, errors or their sources.

use std::error::Error;
use std::fmt::Write as _;
use std::time::Duration;

use countersign_redis::{RedisOptions, connect, redact_url};

use crate::support::ChildRedis;

const SECRET: &str = "hunter2-s3cr3t";

/// Display and Debug of an error and of every source below it.
fn everything(err: &(dyn Error + 'static)) -> String {
    let mut out = String::new();
    let mut cur: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let _ = write!(out, "{e} | {e:?} | ");
        cur = e.source();
    }
    out
}

#[test]
fn urls_are_redacted() {
    for (url, want) in [
        (
            "redis://:hunter2-s3cr3t@cache:6379/0",
            "redis://:[redacted]@cache:6379/0",
        ),
        (
            "rediss://app:hunter2-s3cr3t@cache.example:6380",
            "rediss://app:[redacted]@cache.example:6380",
        ),
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        ("redis://app@127.0.0.1", "redis://app@127.0.0.1"),
        (
            "unix:///run/redis.sock?db=2&pass=hunter2-s3cr3t",
            "unix:///run/redis.sock?db=2&pass=[redacted]",
        ),
        // Not a well-formed URL: everything before the last `@` may be secret.
        ("redis://:hunter2-s3cr3t@[::1", "redis://:[redacted]@[::1"),
        // A password with an unescaped `/`: a URL parser takes it for a port and a path.
        (
            "redis://:1234/hunter2-s3cr3t@cache",
            "redis://:[redacted]@cache",
        ),
        ("hunter2-s3cr3t", "[redacted]"),
    ] {
        let got = redact_url(url);
        assert_eq!(got, want, "{url}");
        assert!(!got.contains(SECRET));
    }
}

#[tokio::test]
async fn connect_errors_do_not_show_the_password() {
    let mut opts = RedisOptions::default();
    opts.connect_timeout = Duration::from_millis(200);
    opts.reconnect_retries = 0;
    // Nothing listens there.
    let port = crate::support::free_port();
    let url = format!("redis://:{SECRET}@127.0.0.1:{port}");
    let err = connect(&url, &opts).await.unwrap_err();
    let shown = everything(&err);
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
    // TLS (`rediss://`) to nothing: a connect error, still redacted.
    let err = connect(&format!("rediss://:{SECRET}@127.0.0.1:{port}"), &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(err, countersign_redis::RedisError::Connect { .. }),
        "{err:?}"
    );
    let shown = everything(&err);
    assert!(!shown.contains(SECRET), "{shown}");
    // Not a valid URL at all.
    let err = connect(&format!("redis://:{SECRET}@[::1"), &opts)
        .await
        .unwrap_err();
    let shown = everything(&err);
    assert!(!shown.contains(SECRET), "{shown}");
}

#[tokio::test]
async fn a_server_with_a_password() {
    let Some(server) = ChildRedis::start(&["--requirepass", SECRET]) else {
        return;
    };
    let mut opts = RedisOptions::default();
    opts.reconnect_retries = 0;
    // The wrong password is refused, and neither password shows.
    let wrong = "wrong-pa55word";
    let err = connect(&server.url(Some(wrong)), &opts).await.unwrap_err();
    let shown = everything(&err);
    assert!(!shown.contains(wrong) && !shown.contains(SECRET), "{shown}");

    let store = connect(&server.url(Some(SECRET)), &opts).await.unwrap();
    let shown = format!("{store:?} {}", store.url());
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
    countersign::store::SessionStore::ping_sessions(&store)
        .await
        .unwrap();
}
