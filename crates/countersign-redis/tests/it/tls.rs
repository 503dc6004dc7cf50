//! `rediss://` against a private `redis-server` speaking TLS only, with a CA and a server
//! certificate made here by `openssl`: the store works (and its invalidation listener
//! subscribes) with the CA file set; a CA that did not sign the server's certificate, or
//! the public roots, are refused at connect with [`RedisError::Certificate`]; a plain
//! `redis://` URL does not get a connection either.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use countersign::clock::UnixTime;
use countersign::invalidation::Receiver;
use countersign::session::{SessionPolicy, SessionRecord, SessionToken};
use countersign::store::SessionStore as _;
use countersign::user::{Role, UserId, Username};
use countersign_redis::{RedisError, RedisOptions, connect};

use crate::invalidation::Recorder;
use crate::support::{free_port, unavailable};

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
pub(crate) fn make_certificates(dir: &Path) -> std::io::Result<()> {
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

/// A `redis-server` listening with TLS only, killed on drop.
pub(crate) struct TlsRedis {
    pub(crate) port: u16,
    child: Child,
}

impl TlsRedis {
    pub(crate) fn start(dir: &Path) -> std::io::Result<Self> {
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

fn opts(ca: Option<PathBuf>) -> RedisOptions {
    let mut o = RedisOptions::default();
    o.ca_file = ca;
    o.reconnect_retries = 0;
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_the_ca_file_works_and_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    if let Err(e) = make_certificates(dir.path()) {
        return unavailable("openssl cannot make certificates", &e).unwrap_or(());
    }
    let server = match TlsRedis::start(dir.path()) {
        Ok(s) => s,
        Err(e) => return unavailable("cannot run redis-server with TLS", &e).unwrap_or(()),
    };
    let url = format!("rediss://127.0.0.1:{}/0", server.port);

    // The CA that signed the server's certificate: a working store, and a listener.
    let store = connect(&url, &opts(Some(dir.path().join("ca.pem"))))
        .await
        .unwrap();
    let now = UnixTime(1_800_000_000);
    let record = SessionRecord::new(
        &SessionToken::generate(),
        UserId(1),
        Username::parse("alice").unwrap(),
        Role::user(),
        &SessionPolicy::default(),
        now,
    );
    store.create_session(&record).await.unwrap();
    let loaded = store.load_session(&record.key, now).await.unwrap().unwrap();
    assert_eq!(loaded.username, record.username);
    let recorder = Arc::new(Recorder::default());
    let task = tokio::spawn(countersign_redis::listen(
        store.clone(),
        Arc::clone(&recorder) as Arc<dyn Receiver>,
    ));
    recorder.wait_for("+", 1).await;
    store.broadcast().unwrap().publish("u:9").await.unwrap();
    recorder.wait_for("u:9", 1).await;
    task.abort();

    // Another CA, and the public roots: refused, saying why.
    for ca in [Some(dir.path().join("other-ca.pem")), None] {
        let e = connect(&url, &opts(ca.clone())).await.unwrap_err();
        assert!(matches!(e, RedisError::Certificate { .. }), "{ca:?}: {e:?}");
        let message = e.to_string();
        assert!(message.contains("TLS certificate"), "{message}");
        match &ca {
            Some(path) => assert!(message.contains(&path.display().to_string()), "{message}"),
            None => assert!(message.contains("public root"), "{message}"),
        }
    }

    // Plain text to the TLS port: no connection, whatever the client makes of the bytes.
    let plain = format!("redis://127.0.0.1:{}/0", server.port);
    let mut o = opts(None);
    o.connect_timeout = Duration::from_millis(500);
    o.command_timeout = Duration::from_millis(500);
    o.reconnect_max_delay = Duration::from_millis(50);
    assert!(connect(&plain, &o).await.is_err());
}
