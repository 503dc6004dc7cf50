//! The real binary: `countersign serve --addr 127.0.0.1:0` in a temporary data directory,
//! its address read back from the `listening on http://ADDR` log line, driven over HTTP.
//!
//! First run (key file 0600, reused on restart), `user add` while the server runs, form
//! login → cookie → `/protected`, `/api/token` → bearer, logout replay, SIGTERM draining
//! requests in flight and exiting 0, SIGHUP key rotation, start-up refusals (exit 2), and
//! that no password, token, cookie or key ever reaches the log.
//!
//! The only waiting is bounded: for a line of the child's log, or its exit.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use countersign::keys::SecretKey;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, SET_COOKIE};
use serde_json::{Value, json};

mod flask;
mod jwks;
mod setup;

const BIN: &str = env!("CARGO_BIN_EXE_countersign");
const PW: &str = "correct horse battery staple";
/// How long any one wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// A `Command` for the binary with none of the caller's countersign settings.
fn command(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("COUNTERSIGN_") || name.starts_with("SECRET_KEY") {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd.current_dir(cwd);
    cmd
}

/// A running `countersign serve` and its log.
struct Server {
    child: Child,
    base: String,
    lines: Receiver<String>,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Start `serve --addr 127.0.0.1:0 --data-dir DATA --insecure-cookies ARGS` and wait
    /// for its address.
    fn start(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut all = vec!["--insecure-cookies"];
        all.extend_from_slice(args);
        Self::start_default(data, &all, env)
    }

    /// Start `serve --addr 127.0.0.1:0 --data-dir DATA ARGS` (the default cookies:
    /// `Secure`, `__Host-`) and wait for its address.
    fn start_default(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let cwd = data.parent().unwrap();
        let mut cmd = command(cwd);
        cmd.args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
                drop(all);
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            base: String::new(),
            lines,
            log,
        };
        let line = server.wait_for("listening on http://");
        let start = line.find("listening on http://").unwrap() + "listening on ".len();
        let addr: String = line[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.'))
            .collect();
        assert!(!addr.ends_with(":0"), "the real port is named: {line}");
        server.base = addr;
        server
    }

    /// Wait (bounded) for a log line containing `needle`; return it.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {needle:?} in the log:\n{}", self.log())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the server exited before logging {needle:?}:\n{}",
                        self.log()
                    )
                }
            }
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then wait for the last log line and the exit.
    fn stop(mut self) -> (ExitStatus, String) {
        self.signal("TERM");
        self.wait_for("stopped");
        let status = self.child.wait().unwrap();
        let log = self.log();
        (status, log)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run the binary to completion with `stdin`.
fn cs(cwd: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = command(cwd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn add_user(data: &Path, name: &str, role: &str) {
    let (code, out, err) = cs(
        data.parent().unwrap(),
        &[
            "user",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &format!("{PW}\n"),
    );
    assert_eq!(code, 0, "{out}{err}");
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value `Set-Cookie` gives `name`.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let pair = v.split(';').next()?;
        let (k, val) = pair.split_once('=')?;
        (k == name).then(|| val.to_owned())
    })
}

fn form_token(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

async fn token(http: &reqwest::Client, s: &Server, name: &str) -> Value {
    let r = http
        .post(s.url("/api/token"))
        .json(&json!({"username": name, "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn assert_clean(log: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(!log.contains(secret), "a secret reached the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_login_logout_sigterm_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data, &[], &[]);
    // Logged before the address, so already read.
    assert!(
        s.log().contains("production must set SECRET_KEY"),
        "{}",
        s.log()
    );
    let key_file = data.join("secret.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert!(SecretKey::parse(key.trim_end()).is_ok());

    // An account, made while the server runs.
    add_user(&data, "alice", "admin");

    let http = client();
    // Form login: the pre-session CSRF cookie, then the session cookie.
    let page = http.get(s.url("/login")).send().await.unwrap();
    let csrf_cookie = set_cookie(page.headers(), "countersign-csrf").unwrap();
    let csrf = form_token(&page.text().await.unwrap());
    let r = http
        .post(s.url("/login"))
        .header(COOKIE, format!("countersign-csrf={csrf_cookie}"))
        .header("origin", &s.base)
        .form(&[
            ("username", "alice"),
            ("password", PW),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/");
    let session = set_cookie(r.headers(), "countersign").unwrap();
    let cookie = format!("countersign={session}");
    let r = http
        .get(s.url("/protected"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"message": "Hello alice, you have access to this protected route."})
    );
    let home = http
        .get(s.url("/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    let home = home.text().await.unwrap();
    assert!(home.contains("Logged in as alice"));
    let logout_token = form_token(&home);

    // Bearer: /api/token, then /protected and /api/me.
    let pair = token(&http, &s, "alice").await;
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    let r = http
        .get(s.url("/protected"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = http
        .get(s.url("/api/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["username"].as_str(), me["auth"].as_str()),
        (Some("alice"), Some("bearer"))
    );

    // Logout, then the old cookie is refused.
    let r = http
        .post(s.url("/logout"))
        .header(COOKIE, &cookie)
        .header("origin", &s.base)
        .form(&[("csrf_token", &logout_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = http
        .get(s.url("/protected"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_session");

    let (status, log1) = s.stop();
    assert_eq!(status.code(), Some(0), "{log1}");

    // Restart: the same key, from the same file, so the token still verifies.
    let s = Server::start(&data, &[], &[]);
    assert!(s.log().contains("generated earlier"), "{}", s.log());
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
    let r = http
        .get(s.url("/protected"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, log2) = s.stop();
    assert_eq!(status.code(), Some(0));

    let log = log1 + &log2;
    assert_clean(
        &log,
        &[
            PW,
            &access,
            &refresh,
            &session,
            &csrf_cookie,
            key.trim_end(),
        ],
    );
}

#[test]
fn production_without_a_key_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (args, env) in [
        (vec!["--production"], vec![]),
        (vec![], vec![("COUNTERSIGN_ENV", "production")]),
    ] {
        let mut all = vec![
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ];
        all.extend(args);
        let out = command(dir.path()).args(&all).envs(env).output().unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("countersign keygen"), "{stderr}");
        assert!(!data.join("secret.key").exists());
    }
}

#[test]
fn refusals_at_start_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 4] = [
        (
            &[],
            &[("SECRET_KEY", "your_secret_key")],
            "countersign keygen",
        ),
        (&[], &[("SECRET_KEY", "short")], "countersign keygen"),
        (
            &[
                "--session-store",
                "redis://127.0.0.1:6379",
                "--redis-ca-file",
                "ca.pem",
            ],
            &[],
            "use rediss://",
        ),
        (&["--addr", "nonsense"], &[], "--addr"),
    ];
    for (args, env, needle) in cases {
        let out = command(dir.path())
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir", d])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?} {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("your_secret_key"), "{stderr}");
    }
}

fn write_key(path: &Path) -> String {
    let (_, text) = SecretKey::generate(32).unwrap();
    std::fs::write(path, format!("{}\n", *text)).unwrap();
    text.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rotates_keys_and_json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key_path: PathBuf = dir.path().join("key");
    let k1 = write_key(&key_path);
    let mut s = Server::start(
        &data,
        &["--log-format", "json"],
        &[("SECRET_KEY_FILE", key_path.to_str().unwrap())],
    );
    assert!(
        !data.join("secret.key").exists(),
        "an explicit key: no key file"
    );
    add_user(&data, "alice", "user");
    let http = client();
    let old = token(&http, &s, "alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Emergency rotation: a new key and no fallback; old tokens die, new ones work.
    let k2 = write_key(&key_path);
    s.signal("HUP");
    s.wait_for("key ring reloaded");
    let r = http
        .get(s.url("/protected"))
        .bearer_auth(&old)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let new = token(&http, &s, "alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http
        .get(s.url("/protected"))
        .bearer_auth(&new)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A weak key is refused and the current ring kept.
    std::fs::write(&key_path, "changeme\n").unwrap();
    s.signal("HUP");
    s.wait_for("still using the current ones");
    let r = http
        .get(s.url("/protected"))
        .bearer_auth(&new)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let (status, log) = s.stop();
    assert_eq!(status.code(), Some(0));
    for line in log.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
    assert_clean(&log, &[PW, &old, &new, &k1, &k2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key_path = dir.path().join("key");
    write_key(&key_path);
    let env = [
        ("SECRET_KEY_FILE", key_path.to_str().unwrap()),
        ("COUNTERSIGN_LOG", "info,countersign_server=debug"),
    ];
    // One hashing worker: eight logins queue behind each other.
    let mut s = Server::start(&data, &["--hash-workers", "1"], &env);
    add_user(&data, "alice", "user");
    let http = client();
    let url = s.url("/api/token");
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let http = http.clone();
            let url = url.clone();
            tokio::spawn(async move {
                http.post(url)
                    .json(&json!({"username": "alice", "password": PW}))
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    for _ in 0..8 {
        s.wait_for("request started");
    }
    let (status, log) = tokio::task::spawn_blocking(move || s.stop()).await.unwrap();
    for request in requests {
        assert_eq!(request.await.unwrap().unwrap(), StatusCode::OK, "{log}");
    }
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("SIGTERM: finishing the requests in flight"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_file_in_the_working_directory_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(
        dir.path().join("countersign.toml"),
        "registration = \"open\"\naccess_ttl = \"5m\"\nsession_idle = 600\n",
    )
    .unwrap();
    // The environment beats the file.
    let s = Server::start(&data, &[], &[("COUNTERSIGN_ACCESS_TTL", "2m")]);
    let http = client();
    let r = http.get(s.url("/register")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    add_user(&data, "alice", "user");
    assert_eq!(token(&http, &s, "alice").await["expires_in"], 120);
    let (status, _) = s.stop();
    assert_eq!(status.code(), Some(0));

    // A mistake in the file stops the start, naming the file and the key.
    std::fs::write(
        dir.path().join("countersign.toml"),
        "registraton = \"open\"\n",
    )
    .unwrap();
    let out = command(dir.path())
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("countersign.toml") && stderr.contains("registraton"),
        "{stderr}"
    );
}
