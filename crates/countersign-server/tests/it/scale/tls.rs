//! The managed services over TLS, end to end with the real binary:
//!
//! - a private `redis-server` speaking TLS only, with a CA and a server certificate made
//!   here by `openssl`: `serve --session-store rediss://… --redis-ca-file ca.pem` logs in,
//!   serves sessions and subscribes to invalidations over TLS; with a CA that did not sign
//!   the server's certificate the start is refused, saying the certificate was refused
//!   (and `user list` likewise);
//! - PostgreSQL with `sslmode=verify-full` and an `sslrootcert` that did not sign the
//!   server's certificate: the start is refused, saying so (the machine's PostgreSQL is
//!   used as it is; nothing is reconfigured).
//!
//! Without `openssl` or a TLS-capable `redis-server` the tests skip outside CI.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;

use super::support::{
    Cred, PgDatabase, Server, access_token, add_user, client, command, free_port, get_with, poll,
    readyz, secret_key, unavailable,
};

/// Run `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> std::io::Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }
}

/// `ca.pem` (signs) with `server.pem`/`server.key` for 127.0.0.1 and localhost, and
/// `other-ca.pem`, which signed nothing here.
fn make_certificates(dir: &Path) -> std::io::Result<()> {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (name, cn) in [("ca", "countersign test CA"), ("other-ca", "another CA")] {
        let subj = format!("/CN={cn}");
        let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend(["-days", "1", "-subj", &subj, "-keyout", &key, "-out", &pem]);
        openssl(dir, &args)?;
    }
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    openssl(dir, &args)?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    )
}

/// A `redis-server` listening with TLS only on a free port, killed on drop.
struct TlsRedis {
    port: u16,
    child: Child,
}

impl TlsRedis {
    fn start(dir: &Path) -> std::io::Result<Self> {
        let port = free_port();
        let file = |name: &str| dir.join(name).display().to_string();
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--tls-cert-file", &file("server.pem")])
            .args(["--tls-key-file", &file("server.key")])
            .args(["--tls-ca-cert-file", &file("ca.pem")])
            .args(["--tls-auth-clients", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Self { port, child });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(std::io::Error::other(format!(
                    "redis-server exited: {status} (built without TLS?)"
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        Err(std::io::Error::other(
            "redis-server did not listen within 5 s",
        ))
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `countersign ARGS` in `cwd` to its end: (exit code, stderr).
fn run(cwd: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = command(cwd)
        .args(args)
        .env("SECRET_KEY", secret_key())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_over_rediss_with_a_ca_file_and_another_ca_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    if let Err(e) = make_certificates(cwd) {
        return unavailable("openssl cannot make certificates", e).unwrap_or(());
    }
    let redis = match TlsRedis::start(cwd) {
        Ok(r) => r,
        Err(e) => return unavailable("cannot run redis-server with TLS", e).unwrap_or(()),
    };
    let url = format!("rediss://127.0.0.1:{}/0", redis.port);
    let ca = cwd.join("ca.pem").display().to_string();
    let other = cwd.join("other-ca.pem").display().to_string();

    // The CA that signed the server's certificate.
    let storage = [
        "--session-store",
        url.as_str(),
        "--redis-ca-file",
        ca.as_str(),
    ];
    let key = secret_key();
    let s = Server::start(cwd, &storage, &[("SECRET_KEY", key.as_str())]);
    add_user(cwd, &storage, "alice", "user");
    let http = client();
    let token = access_token(&http, &s, "alice").await;
    let (status, _, body) = get_with(&http, &s, "/protected", Cred::Bearer(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    poll("the invalidation listener subscribes over TLS", || async {
        let (_, body) = readyz(&http, &s).await;
        (body["cache"] == "subscribed").then_some(())
    })
    .await;
    s.stop();

    // Another CA: no start, and the message says why.
    for sub in [
        &["serve", "--addr", "127.0.0.1:0"][..],
        &["user", "list"][..],
    ] {
        let mut args = sub.to_vec();
        args.extend([
            "--session-store",
            url.as_str(),
            "--redis-ca-file",
            other.as_str(),
        ]);
        let (code, stderr) = run(cwd, &args);
        assert_eq!(code, Some(2), "{sub:?}: {stderr}");
        assert!(stderr.contains("TLS certificate"), "{sub:?}: {stderr}");
        assert!(stderr.contains("other-ca.pem"), "{sub:?}: {stderr}");
    }
    // No CA file: the public roots do not know the test CA either.
    let (code, stderr) = run(
        cwd,
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--session-store",
            url.as_str(),
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("public root"), "{stderr}");
}

#[tokio::test]
async fn postgres_verify_full_with_a_ca_that_did_not_sign_the_server_is_refused_at_start() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    if let Err(e) = make_certificates(cwd) {
        return unavailable("openssl cannot make certificates", e).unwrap_or(());
    }
    let sep = if db.url.contains('?') { '&' } else { '?' };
    let required = format!("{}{sep}sslmode=require", db.url);
    let (code, stderr) = run(cwd, &["user", "list", "--database-url", required.as_str()]);
    if stderr.contains("does not offer TLS") {
        return unavailable("the PostgreSQL server has TLS off", stderr).unwrap_or(());
    }
    assert_eq!(code, Some(0), "sslmode=require works: {stderr}");
    let refused = format!(
        "{}{sep}sslmode=verify-full&sslrootcert={}",
        db.url,
        cwd.join("other-ca.pem").display()
    );
    let (code, stderr) = run(
        cwd,
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--database-url",
            refused.as_str(),
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("TLS certificate of the database"),
        "{stderr}"
    );
}
