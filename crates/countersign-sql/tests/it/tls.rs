//! TLS to PostgreSQL: `sslmode=require` connects over TLS; `sslmode=verify-full` with a CA
//! that did not sign the server's certificate, or for a host name the certificate does not
//! name, is refused at connect with [`SqlError::Certificate`], never retried in plain text.
//!
//! Against the machine's PostgreSQL (`COUNTERSIGN_TEST_PG`), which must have TLS on
//! (Debian's default: its snakeoil certificate, for `localhost`); nothing is reconfigured.
//! The other CA is made here with `openssl`. Without the server, or without TLS on it, or
//! without `openssl`, the tests skip with a message (under `CI=true` they fail).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use countersign_sql::{PoolOptions, SqlError, connect};

fn base_url() -> String {
    std::env::var("COUNTERSIGN_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

fn skip(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and {why}"
    );
    eprintln!("skipping: {why} (under CI=true this fails)");
}

fn opts() -> PoolOptions {
    let mut opts = PoolOptions::default();
    opts.acquire_timeout = Duration::from_secs(5);
    opts
}

/// A self-signed CA certificate made by `openssl` in `dir`, or `None` without openssl.
fn other_ca(dir: &Path) -> Option<std::path::PathBuf> {
    let cert = dir.join("other-ca.pem");
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=countersign test other CA", "-keyout"])
        .arg(dir.join("other-ca.key"))
        .arg("-out")
        .arg(&cert)
        .output()
        .ok()?;
    status.status.success().then_some(cert)
}

#[tokio::test]
async fn sslmode_require_connects_and_verify_full_refuses_a_certificate_it_cannot_verify() {
    let base = base_url();
    // Does the server offer TLS at all? (Not a test of ours: skip when it does not.)
    let required = with_param(&base, "sslmode=require");
    let store = match connect(&required, &opts()).await {
        Ok(store) => store,
        Err(SqlError::NoTls { .. }) => return skip("the PostgreSQL server has TLS off"),
        Err(e) => return skip(&format!("PostgreSQL is unreachable: {e}")),
    };
    countersign::store::UserStore::ping(&store).await.unwrap();
    store.close().await;

    let dir = tempfile::tempdir().unwrap();
    let Some(ca) = other_ca(dir.path()) else {
        return skip("openssl cannot make a CA");
    };
    let refused = with_param(
        &base,
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    );
    let e = connect(&refused, &opts()).await.unwrap_err();
    assert!(matches!(e, SqlError::Certificate { .. }), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("TLS certificate"), "{message}");
    assert!(message.contains("sslrootcert"), "{message}");
}

#[tokio::test]
async fn verify_full_checks_the_host_name() {
    // The server's own certificate as the trusted root: it verifies for the name it is
    // made out to, and is refused for another (an IP address it does not name).
    let snakeoil = Path::new("/etc/ssl/certs/ssl-cert-snakeoil.pem");
    let base = base_url();
    if !snakeoil.exists() || !base.contains("@127.0.0.1:") {
        return skip("no snakeoil certificate, or a PostgreSQL other than the local one");
    }
    let param = format!("sslmode=verify-full&sslrootcert={}", snakeoil.display());
    let by_ip = with_param(&base, &param);
    match connect(&by_ip, &opts()).await {
        Err(SqlError::Certificate { .. }) => {}
        Err(SqlError::NoTls { .. }) => return skip("the PostgreSQL server has TLS off"),
        Err(e) => panic!("expected a refused certificate, got {e:?}"),
        Ok(_) => panic!("a certificate for localhost verified for 127.0.0.1"),
    }
    let by_name = with_param(&base.replace("@127.0.0.1:", "@localhost:"), &param);
    match connect(&by_name, &opts()).await {
        Ok(store) => {
            countersign::store::UserStore::ping(&store).await.unwrap();
            store.close().await;
        }
        // Another certificate than Debian's snakeoil (one not for localhost): say so.
        Err(e) => skip(&format!(
            "the server's certificate is not for localhost: {e}"
        )),
    }
}
