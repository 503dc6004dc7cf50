//! What the scale-out tests share: the real binary as a child (`Server`), a fresh
//! PostgreSQL database per test (`PgDatabase`), a unique key prefix on the machine's Redis
//! (`RedisPrefix`), a private `redis-server` that a test may kill (`ChildRedis`), and the
//! HTTP steps (form login, tokens, `/protected`).
//!
//! Every wait is bounded ([`PATIENCE`]); polls sleep a few milliseconds between tries,
//! never a fixed "long enough".

use std::fmt::Display;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use countersign_sql::sqlx;
use countersign_sql::{PgStore, PoolOptions, redacted_url};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, RETRY_AFTER, SET_COOKIE};
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_countersign");
pub const PW: &str = "correct horse battery staple";
/// How long any one wait may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(60);
/// The session cookie's name with `--insecure-cookies`.
pub const COOKIE_NAME: &str = "countersign";

// ----- skipping outside CI -----

/// Under `CI=true` a missing PostgreSQL, Redis or `redis-server` fails the test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skip (print why, return `None`) outside CI; fail loudly under `CI=true`.
pub fn unavailable<T>(what: &str, why: impl Display) -> Option<T> {
    assert!(!in_ci(), "CI=true and {what}: {why}");
    eprintln!("skipping: {what}: {why} (under CI=true this fails)");
    None
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A name no other test (in this run or a parallel one) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        unix_now(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

// ----- PostgreSQL -----

/// The server the tests use (trust auth on loopback).
pub fn pg_base_url() -> String {
    std::env::var("COUNTERSIGN_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `url` with its database name replaced by `db` (query kept).
fn with_database(url: &str, db: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let base = match head[scheme_end..].find('/') {
        Some(i) => &head[..scheme_end + i],
        None => head,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// `url` with `password` as the user's password (`postgres://user:password@…`).
pub fn with_password(url: &str, password: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    match rest.split_once('@') {
        Some((user, host)) if !user.contains(':') => {
            format!("{}{user}:{password}@{host}", &url[..scheme_end])
        }
        _ => url.to_owned(),
    }
}

/// A database created for one test and dropped (with `FORCE`) when this drops, also when
/// the test panics. Databases of runs that died more than an hour ago are dropped first.
pub struct PgDatabase {
    name: String,
    /// The URL of the new database.
    pub url: String,
}

impl PgDatabase {
    /// Create one, or `None` (skip) when PostgreSQL is unreachable outside CI.
    pub async fn create() -> Option<Self> {
        let base = pg_base_url();
        let mut opts = PoolOptions::default();
        opts.acquire_timeout = Duration::from_secs(5);
        let admin = match PgStore::connect(&base, &opts).await {
            Ok(s) => s,
            Err(e) => {
                return unavailable(
                    &format!("PostgreSQL at {} is unreachable", redacted_url(&base)),
                    format!("{e}: {:?}", std::error::Error::source(&e)),
                );
            }
        };
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'cs\\_e2e\\_%'",
        )
        .fetch_all(admin.pool())
        .await
        .unwrap();
        let now = unix_now();
        for name in stale {
            let born = name.split('_').nth(2).and_then(|t| t.parse::<u64>().ok());
            if born.is_some_and(|t| t + 3600 < now) {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(admin.pool())
                    .await;
            }
        }
        let name = unique("cs_e2e");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin.pool())
            .await
            .unwrap();
        admin.close().await;
        Some(Self {
            url: with_database(&base, &name),
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop cannot await and may run inside the test's runtime: a thread with its own.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(admin) = PgStore::connect(&pg_base_url(), &PoolOptions::default()).await
                else {
                    return;
                };
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(admin.pool())
                    .await;
                admin.close().await;
            });
        })
        .join();
    }
}

// ----- Redis -----

/// The machine's Redis.
pub fn redis_url() -> String {
    std::env::var("COUNTERSIGN_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix on the machine's Redis for one test; its keys are deleted on drop.
pub struct RedisPrefix {
    /// The prefix (`countersign-e2e:…:`).
    pub prefix: String,
}

impl RedisPrefix {
    /// A fresh prefix, or `None` (skip) when Redis is unreachable outside CI.
    pub fn new() -> Option<Self> {
        let url = redis_url();
        let ping = redis::Client::open(url.as_str()).and_then(|c| {
            let mut conn = c.get_connection_with_timeout(Duration::from_secs(2))?;
            redis::cmd("PING").query::<String>(&mut conn)
        });
        if let Err(e) = ping {
            return unavailable(
                &format!(
                    "Redis at {} is unreachable",
                    countersign_redis::redact_url(&url)
                ),
                e,
            );
        }
        Some(Self {
            prefix: format!("{}:", unique("countersign-e2e")),
        })
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(redis_url()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        let pattern = format!("{}*", self.prefix);
        let mut cursor: u64 = 0;
        loop {
            let Ok((next, keys)) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query::<(u64, Vec<String>)>(&mut conn)
            else {
                return;
            };
            if !keys.is_empty() {
                let _ = redis::cmd("UNLINK").arg(&keys).query::<i64>(&mut conn);
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private `redis-server` on a free loopback port, no persistence, killed on drop.
pub struct ChildRedis {
    port: u16,
    extra: Vec<String>,
    child: Option<Child>,
}

impl ChildRedis {
    /// Start one with `extra` arguments, or `None` (skip) outside CI when `redis-server`
    /// cannot run.
    pub fn start(extra: &[&str]) -> Option<Self> {
        let mut server = Self {
            port: free_port(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
        };
        match server.spawn() {
            Ok(()) => Some(server),
            Err(e) => unavailable("cannot run redis-server", e),
        }
    }

    /// `redis://[:password@]127.0.0.1:PORT/0`.
    pub fn url(&self, password: Option<&str>) -> String {
        match password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}/0", self.port),
            None => format!("redis://127.0.0.1:{}/0", self.port),
        }
    }

    /// `SIGKILL`: the clients get no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port (empty: no persistence).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn().unwrap();
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(std::io::Error::other(format!(
                    "redis-server exited: {status}"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err(std::io::Error::other(
            "redis-server did not listen within 10 s",
        ))
    }
}

impl Drop for ChildRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

// ----- the binary -----

/// A `Command` for the binary with none of the caller's countersign settings.
pub fn command(cwd: &Path) -> Command {
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

/// Run the binary to completion with `stdin`: (status, stdout, stderr).
pub fn cs(cwd: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
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
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `user add NAME --role ROLE --password-stdin STORAGE…` must succeed.
pub fn add_user(cwd: &Path, storage: &[&str], name: &str, role: &str) {
    let mut args = vec!["user", "add", name, "--role", role, "--password-stdin"];
    args.extend(storage);
    let (code, out, err) = cs(cwd, &args, &format!("{PW}\n"));
    assert_eq!(code, 0, "user add {name}: {out}{err}");
}

/// A running `countersign serve` and its log.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    lines: Receiver<String>,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Start `serve --addr 127.0.0.1:0 --insecure-cookies ARGS` in `cwd` with `env`,
    /// without waiting: call [`Self::ready`].
    pub fn spawn(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = command(cwd)
            .args(["serve", "--addr", "127.0.0.1:0", "--insecure-cookies"])
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
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
        Self {
            child,
            base: String::new(),
            lines,
            log,
        }
    }

    /// Wait (bounded) for `listening on http://ADDR` and keep the address.
    pub fn ready(mut self) -> Self {
        let line = self.wait_for("listening on http://");
        let start = line.find("listening on http://").unwrap() + "listening on ".len();
        let addr: String = line[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.'))
            .collect();
        assert!(!addr.ends_with(":0"), "the real port is named: {line}");
        self.base = addr;
        self
    }

    /// [`Self::spawn`], then [`Self::ready`].
    pub fn start(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(cwd, args, env).ready()
    }

    /// Wait (bounded) for a log line containing `needle`; return it.
    pub fn wait_for(&mut self, needle: &str) -> String {
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

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Send a signal (`HUP`, `TERM`, …).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then wait for the exit: (status, log).
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.signal("TERM");
        let status = self.child.wait().unwrap();
        // The reader thread ends with the pipe; give it the bounded time to drain.
        let deadline = Instant::now() + PATIENCE;
        while !self.log().contains("stopped") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        (status, self.log())
    }

    /// SIGKILL (`kill -9`): no draining, no goodbye. Returns the log.
    pub fn kill9(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.log()
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

// ----- HTTP -----

/// A client that does not follow redirects and keeps no cookies of its own.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PATIENCE)
        .build()
        .unwrap()
}

/// The value `Set-Cookie` gives `name`.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let pair = v.split(';').next()?;
        let (k, val) = pair.split_once('=')?;
        (k == name && !val.is_empty()).then(|| val.to_owned())
    })
}

/// The `csrf_token` field of a form.
pub fn form_token(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// A form post from the login or registration page at `path` (`/login`, `/register`):
/// the pre-session CSRF pair first, then the post. The response.
pub async fn post_credentials(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    name: &str,
    password: &str,
) -> reqwest::Result<reqwest::Response> {
    let page = http.get(format!("{base}{path}")).send().await?;
    let csrf_cookie = set_cookie(page.headers(), "countersign-csrf").unwrap_or_default();
    let csrf = form_token(&page.text().await?);
    http.post(format!("{base}{path}"))
        .header(COOKIE, format!("countersign-csrf={csrf_cookie}"))
        .header("origin", base)
        .form(&[
            ("username", name),
            ("password", password),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
}

/// Form login that must succeed: the `Cookie` header value of the new session.
pub async fn form_login(http: &reqwest::Client, s: &Server, name: &str) -> String {
    let r = post_credentials(http, &s.base, "/login", name, PW)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login {name}");
    let session = set_cookie(r.headers(), COOKIE_NAME).unwrap();
    format!("{COOKIE_NAME}={session}")
}

/// `/api/token` with `password`: the response.
pub async fn token_request(
    http: &reqwest::Client,
    s: &Server,
    name: &str,
    password: &str,
) -> reqwest::Response {
    http.post(s.url("/api/token"))
        .json(&json!({"username": name, "password": password}))
        .send()
        .await
        .unwrap()
}

/// `/api/token` that must succeed: the access token.
pub async fn access_token(http: &reqwest::Client, s: &Server, name: &str) -> String {
    let r = token_request(http, s, name, PW).await;
    assert_eq!(r.status(), StatusCode::OK, "token for {name}");
    let pair: Value = r.json().await.unwrap();
    pair["access_token"].as_str().unwrap().to_owned()
}

/// How a request authenticates.
#[derive(Clone, Copy, Debug)]
pub enum Cred<'a> {
    /// `Cookie: countersign=…`.
    Cookie(&'a str),
    /// `Authorization: Bearer …`.
    Bearer(&'a str),
}

/// `GET path` with `cred`: status, `Retry-After` (seconds) and JSON body (`Null` when
/// not JSON).
pub async fn get_with(
    http: &reqwest::Client,
    s: &Server,
    path: &str,
    cred: Cred<'_>,
) -> (StatusCode, Option<u64>, Value) {
    let req = http.get(s.url(path));
    let req = match cred {
        Cred::Cookie(c) => req.header(COOKIE, c),
        Cred::Bearer(t) => req.bearer_auth(t),
    };
    let r = req.send().await.unwrap();
    let status = r.status();
    let retry = r
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = r.json().await.unwrap_or(Value::Null);
    (status, retry, body)
}

/// `GET /readyz`: status and body.
pub async fn readyz(http: &reqwest::Client, s: &Server) -> (StatusCode, Value) {
    let r = http.get(s.url("/readyz")).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Poll `check` (bounded by [`PATIENCE`], 50 ms apart) until it returns `Some`.
pub async fn poll<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// No secret reached the log.
pub fn assert_clean(log: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !log.contains(secret),
            "a secret ({}…) reached the log:\n{log}",
            &secret[..secret.len().min(6)]
        );
    }
}

/// A fresh strong key for `SECRET_KEY`.
pub fn secret_key() -> String {
    let (_, text) = countersign::keys::SecretKey::generate(32).unwrap();
    text.to_string()
}
