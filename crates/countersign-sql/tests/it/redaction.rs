//! A store URL with a password never shows it: not in `Display`, `Debug`, nor any error
//! (or its sources).

use countersign_sql::{PoolOptions, SqlError, connect, redacted_url};

fn assert_hidden(e: &SqlError) {
    let mut shown = vec![e.to_string(), format!("{e:?}"), format!("{e:#?}")];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        shown.push(s.to_string());
        shown.push(format!("{s:?}"));
        source = s.source();
    }
    for s in shown {
        assert!(!s.contains("hunter2"), "{s}");
    }
}

#[test]
fn redacted_url_hides_the_password() {
    let shown = redacted_url("postgres://user:hunter2@host/db");
    assert_eq!(shown, "postgres://user:[redacted]@host/db");
}

#[tokio::test]
async fn unreachable_server() {
    // Port 1 on loopback: connection refused, at once.
    let e = connect(
        "postgres://user:hunter2@127.0.0.1:1/db",
        &PoolOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, SqlError::Connect { .. }), "{e:?}");
    assert!(
        e.to_string().contains("user:[redacted]@127.0.0.1:1/db"),
        "{e}"
    );
    assert_hidden(&e);
}

#[tokio::test]
async fn invalid_url() {
    let e = connect(
        "postgres://user:hunter2@host:notaport/db",
        &PoolOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, SqlError::InvalidUrl { .. }), "{e:?}");
    assert_hidden(&e);

    let e = connect(
        "postgres://host/db?sslmode=nonsense&password=hunter2",
        &PoolOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, SqlError::InvalidUrl { .. }), "{e:?}");
    assert_hidden(&e);
}

#[tokio::test]
async fn unsupported_scheme() {
    let e = connect("mysql://user:hunter2@host/db", &PoolOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, SqlError::UnsupportedUrl { .. }), "{e:?}");
    assert_hidden(&e);
}

/// sqlx logs unknown query parameters with their values: a secret-looking one other than
/// `password` is refused before the driver sees the URL.
#[tokio::test]
async fn secret_parameters_the_driver_would_log_are_refused() {
    for url in [
        "postgres://user@127.0.0.1:1/db?sslpassword=hunter2",
        "postgres://user@127.0.0.1:1/db?sslmode=disable&passwrd=hunter2",
        "postgres://user@127.0.0.1:1/db?auth_token=hunter2",
    ] {
        let e = connect(url, &PoolOptions::default()).await.unwrap_err();
        assert!(
            matches!(e, SqlError::SecretParameter { .. }),
            "{url}: {e:?}"
        );
        assert!(e.to_string().contains("[redacted]"), "{e}");
        assert_hidden(&e);
    }
    // `password=` is the driver's own: it gets as far as connecting.
    let e = connect(
        "postgres://user@127.0.0.1:1/db?password=hunter2",
        &PoolOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, SqlError::Connect { .. }), "{e:?}");
    assert_hidden(&e);
}
