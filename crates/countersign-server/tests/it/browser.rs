//! A real browser against the real binary: Debian's Chromium, headless, driven through
//! ChromeDriver (WebDriver) by `fantoccini`.
//!
//! Each test starts `countersign serve --addr 127.0.0.1:0` in a temporary data directory and
//! goes through it as a person would. The cases:
//! - the default configuration (`Secure` `__Host-` cookies, plain HTTP on loopback) at
//!   `http://127.0.0.1:PORT` and at `http://localhost:PORT`: `/` says "You are not logged
//!   in", the login form logs in ("Logged in as …", a second tab on `/login` meanwhile does
//!   not break the first tab's form), `/protected` greets, the logout button logs out;
//! - the same with `--insecure-cookies`, a second case;
//! - behind a real nginx terminating TLS (`tests/it/nginx-tls.conf`, a self-signed
//!   certificate made by the test, Chromium told to accept it), the server started with
//!   `--trusted-proxies 127.0.0.1/32 --public-url https://localhost:PORT`: login, the session
//!   list showing the address nginx reported, logout; then an HTTP client on another
//!   loopback address checks that nginx's `X-Forwarded-For` names it, and that a spoofed
//!   `X-Forwarded-For` / `Forwarded` changes nothing, through nginx or straight to the server;
//! - a login form whose CSRF cookie was deleted: the form comes back with the sentence saying
//!   the browser dropped the cookie, and the form shown again logs in;
//! - the first-run `/setup?token=…` link `serve` logs while there are no users: the admin
//!   `alice` is made in the browser and logged in, and the link is then gone.
//!
//! Screenshots (the login page, the refused form, the setup page, each step, and
//! `CASE-failure.png` when a case fails, with the server's log as `CASE-server.log`) go to
//! `target/browser-artifacts/` (`$CARGO_TARGET_DIR` when set).
//!
//! Chromium, ChromeDriver, nginx, Caddy and openssl come from Debian (`scripts/test` installs them
//! when missing). Without them a test says why and passes, except under `CI=true`, where it
//! fails.
//!
//! Every wait is bounded (a process starting, a page loading, an element appearing: 20 s; a
//! whole case: 2 min). ChromeDriver and nginx get ports picked by the OS, and they (with the
//! browsers ChromeDriver started) and the servers are killed when the test ends, however it
//! ends.

mod forward_auth;
mod mfa;
mod passkeys;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{IpAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_countersign");
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const NGINX: &str = "/usr/sbin/nginx";
const OPENSSL: &str = "/usr/bin/openssl";
/// The nginx configuration, with `@LISTEN@`, `@CERT@`, `@KEY@` and `@UPSTREAM@` to fill in.
const NGINX_CONF: &str = include_str!("nginx-tls.conf");
/// The headless flags this machine needs: without the background-networking ones Chromium
/// tries to reach Google's hosts and its connections are refused.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // The same size every run, so screenshots compare.
    "--window-size=1024,640",
];
/// How long any one wait (a process starting, a page loading, an element appearing) may take.
const PATIENCE: Duration = Duration::from_secs(20);
/// A whole case, browser start-up included.
const DEADLINE: Duration = Duration::from_secs(120);
const USER: &str = "carol";
const SESSION_COOKIE: &str = "__Host-countersign";
const CSRF_COOKIE: &str = "__Host-countersign-csrf";
/// The start of what the login page says when a form came back without its cookie
/// (`pages::COOKIE_DROPPED`).
const COOKIE_DROPPED: &str = "Your browser did not send back the cookie this page set";

/// A child process killed with its whole process group when dropped (ChromeDriver leaves
/// the browsers it started behind when it is killed alone; nginx has workers).
struct Group {
    child: Child,
}

impl Group {
    fn spawn(cmd: &mut Command) -> Self {
        let child = cmd.process_group(0).spawn().unwrap();
        Self { child }
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // The group id is the child's pid (`process_group(0)`); members may outlive it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// Whether the tools are installed. When one is missing: under `CI=true` the test fails,
/// otherwise it says why and returns `false` (skipped).
fn have(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "browser test: {} missing (Debian packages chromium, chromium-driver, nginx, caddy \
         and openssl; scripts/test installs them)",
        missing.join(" and ")
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("{why}; skipped");
    false
}

/// Where the screenshots go: `$CARGO_TARGET_DIR/browser-artifacts`, else the workspace's
/// `target/browser-artifacts`.
fn artifacts_dir() -> PathBuf {
    // crates/countersign-server → the workspace root.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    let dir = target.join("browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Remove what an earlier run of `case` left in the artifacts directory.
fn clear_artifacts(case: &str) {
    let prefix = format!("{case}-");
    for entry in std::fs::read_dir(artifacts_dir()).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A `Command` for the binary in `cwd`, with none of the caller's countersign settings.
fn countersign(cwd: &Path) -> Command {
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

/// A running `serve`: its process, its base URL, its log so far and the lines to come.
struct Served {
    _process: Group,
    /// `http://127.0.0.1:PORT`.
    base: String,
    port: u16,
    log: Arc<Mutex<String>>,
    lines: Receiver<String>,
}

impl Served {
    /// `serve --addr 127.0.0.1:0 --data-dir DATA ARGS…`, once it logs its address.
    fn start(dir: &Path, data: &Path, args: &[&str]) -> Self {
        let mut process = Group::spawn(
            countersign(dir)
                .args(["serve", "--addr", "127.0.0.1:0"])
                .args(args)
                .arg("--data-dir")
                .arg(data)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        );
        let stderr = process.child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        let (tx, lines) = channel();
        // Reads the log to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
                drop(all);
                let _ = tx.send(line);
            }
        });
        let mut served = Self {
            _process: process,
            base: String::new(),
            port: 0,
            log,
            lines,
        };
        let line = served.wait_for("listening on http://");
        served.base = url_in(&line, "http://");
        let port = served.base.rsplit(':').next().unwrap();
        served.port = port.parse().unwrap();
        assert_ne!(served.port, 0, "the real port is named: {line}");
        served
    }

    /// The next log line containing `needle` (bounded wait).
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{needle:?} not logged:\n{}", self.log())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the server exited:\n{}", self.log())
                }
            }
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// The URL starting with `scheme` in a log line, up to the first character a URL here
/// cannot hold (a space, a quote, a colour code).
fn url_in(line: &str, scheme: &str) -> String {
    let start = line
        .find(scheme)
        .unwrap_or_else(|| panic!("no {scheme} URL in {line:?}"));
    line[start..]
        .chars()
        .take_while(|c| {
            c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '?' | '=' | '-' | '_' | '~')
        })
        .collect()
}

/// `user add NAME --password-stdin` while the server runs.
fn add_user(dir: &Path, data: &Path, name: &str, password: &str) {
    let mut child = countersign(dir)
        .args(["user", "add", name, "--password-stdin", "--data-dir"])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A password made for this run: 24 random bytes as hex.
fn generated_password() -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A port the OS says is free now. It is released before ChromeDriver or nginx binds it;
/// the caller retries with another should something take it in between.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// ChromeDriver on a free port, answering `/status` as ready; its URL.
async fn start_chromedriver(dir: &Path) -> (Group, String) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut failures = Vec::new();
    for attempt in 0..3 {
        let port = free_port();
        let log = dir.join(format!("chromedriver-{attempt}.log"));
        let mut driver = Group::spawn(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline && !driver.exited() {
            if let Ok(r) = http.get(format!("{url}/status")).send().await
                && let Ok(status) = r.json::<serde_json::Value>().await
                && status["value"]["ready"] == true
            {
                return (driver, url);
            }
            // Bounded polling: at most PATIENCE in all.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        failures.push(format!(
            "port {port}: {}\n{}",
            if driver.exited() {
                "exited"
            } else {
                "not ready in time"
            },
            std::fs::read_to_string(&log).unwrap_or_default()
        ));
    }
    panic!("ChromeDriver did not start:\n{}", failures.join("\n"));
}

/// A WebDriver session in a headless Chromium with a fresh profile; `insecure_certs`
/// accepts a self-signed certificate (WebDriver's `acceptInsecureCerts`).
async fn open_browser(driver: &str, profile: &Path, insecure_certs: bool) -> Client {
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let capabilities = json!({
        "browserName": "chrome",
        "acceptInsecureCerts": insecure_certs,
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object literal")
    };
    let client = tokio::time::timeout(
        PATIENCE * 2,
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(driver),
    )
    .await
    .expect("no WebDriver session in time")
    .expect("WebDriver session");
    client
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(PATIENCE),
            Some(PATIENCE),
            None,
        ))
        .await
        .unwrap();
    client
}

/// Run `scenario` in a fresh Chromium for `case`, within [`DEADLINE`]. On failure: a
/// screenshot `CASE-failure.png`, the server's log `CASE-server.log`, and a panic with
/// the error and `diagnostics()` (the logs).
async fn in_chromium(
    case: &str,
    dir: &Path,
    insecure_certs: bool,
    scenario: impl AsyncFnOnce(&Client) -> anyhow::Result<()>,
    diagnostics: impl Fn() -> String,
) {
    let started = Instant::now();
    let run = async {
        let (_driver, driver_url) = start_chromedriver(dir).await;
        let profile = dir.join(format!("profile-{case}"));
        let client = open_browser(&driver_url, &profile, insecure_certs).await;
        let outcome = scenario(&client).await;
        if outcome.is_err() {
            let _ = screenshot(&client, case, "failure.png").await;
        }
        // Ends the session, which quits the browser; the driver's group is killed anyway.
        let _ = client.close().await;
        outcome
    };
    let outcome = tokio::time::timeout(DEADLINE, run)
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the case took over {DEADLINE:?}")));
    if let Err(e) = outcome {
        let logs = diagnostics();
        let path = artifacts_dir().join(format!("{case}-server.log"));
        let _ = std::fs::write(&path, &logs);
        panic!("{case}: {e:#}\n{logs}");
    }
    eprintln!("{case}: {:?}", started.elapsed());
}

/// Wait (bounded) until the page's text contains `text`.
async fn see(client: &Client, text: &str) -> anyhow::Result<()> {
    ensure!(
        !text.contains('\''),
        "no quotes in XPath literals: {text:?}"
    );
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::XPath(&format!("//body[contains(., '{text}')]")))
        .await
        .with_context(|| format!("{text:?} never appeared"))?;
    Ok(())
}

/// Save the page as `CASE-NAME` in the artifacts directory.
async fn screenshot(client: &Client, case: &str, name: &str) -> anyhow::Result<PathBuf> {
    let png = client.screenshot().await.context("screenshot")?;
    let path = artifacts_dir().join(format!("{case}-{name}"));
    std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("screenshot: {}", path.display());
    Ok(path)
}

/// Fill in and submit the login form of the page shown.
async fn log_in(client: &Client, name: &str, password: &str) -> anyhow::Result<()> {
    let form = client.find(Locator::Css("form[action='/login']")).await?;
    form.find(Locator::Id("username"))
        .await?
        .send_keys(name)
        .await?;
    form.find(Locator::Id("password"))
        .await?
        .send_keys(password)
        .await?;
    form.find(Locator::Css("button[type=submit]"))
        .await?
        .click()
        .await?;
    Ok(())
}

/// Home page, `Logged in as …`, with the session cookie out of scripts' reach.
async fn logged_in(client: &Client, name: &str) -> anyhow::Result<()> {
    see(client, &format!("Logged in as {name}")).await?;
    let url = client.current_url().await?;
    ensure!(url.path() == "/", "after login: {url}");
    let cookie = client.get_named_cookie(SESSION_COOKIE).await;
    let cookie = match cookie {
        Ok(c) => c,
        // `--insecure-cookies`: the name has no `__Host-` prefix.
        Err(_) => client.get_named_cookie("countersign").await?,
    };
    ensure!(
        cookie.http_only() == Some(true),
        "session cookie not HttpOnly"
    );
    Ok(())
}

/// `/protected` greets `USER` (Chromium shows a JSON response as its text in a `<pre>`).
async fn protected_greets(client: &Client, base: &str) -> anyhow::Result<()> {
    client.goto(&format!("{base}/protected")).await?;
    let greeting = format!("Hello {USER}, you have access to this protected route.");
    see(client, &greeting).await?;
    let body = client.find(Locator::Css("pre")).await?.text().await?;
    let body: serde_json::Value =
        serde_json::from_str(&body).with_context(|| format!("/protected: {body}"))?;
    ensure!(body == json!({ "message": greeting }), "/protected: {body}");
    Ok(())
}

/// Back home, the logout button, and the session is over.
async fn log_out(client: &Client, base: &str, case: &str) -> anyhow::Result<()> {
    client.goto(&format!("{base}/")).await?;
    see(client, &format!("Logged in as {USER}")).await?;
    client
        .find(Locator::Css("form[action='/logout'] button[type=submit]"))
        .await?
        .click()
        .await?;
    see(client, "You are not logged in").await?;
    screenshot(client, case, "logged-out.png").await?;
    // The session ended: the protected route no longer greets.
    client.goto(&format!("{base}/protected")).await?;
    let body = client.find(Locator::Css("body")).await?.text().await?;
    if body.contains("Hello") {
        bail!("/protected after logout: {body}");
    }
    Ok(())
}

/// The scenario, as a person would go through it: the login page, a second tab on it, the
/// first tab's form, `/protected`, logout.
async fn scenario(client: &Client, base: &str, password: &str, case: &str) -> anyhow::Result<()> {
    client.goto(&format!("{base}/")).await?;
    see(client, "You are not logged in").await?;
    screenshot(client, case, "login.png").await?;

    // A second tab on the login page must not break the first tab's form.
    let first = client.window().await?;
    let second = client.new_window(true).await?.handle;
    client.switch_to_window(second).await?;
    client.goto(&format!("{base}/login")).await?;
    see(client, "Log in").await?;
    client.close_window().await?;
    client.switch_to_window(first).await?;

    // The login form on the home page, shown before the second tab opened.
    log_in(client, USER, password).await?;
    logged_in(client, USER).await?;
    screenshot(client, case, "logged-in.png").await?;

    protected_greets(client, base).await?;
    screenshot(client, case, "protected.png").await?;
    log_out(client, base, case).await
}

/// A server with one user, and the scenario at `host` (`127.0.0.1` or `localhost`).
async fn login_case(case: &str, host: &str, args: &[&str]) {
    if !have(&[CHROMIUM, CHROMEDRIVER]) {
        return;
    }
    clear_artifacts(case);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Served::start(dir.path(), &data, args);
    let password = generated_password();
    add_user(dir.path(), &data, USER, &password);
    let base = format!("http://{host}:{}", server.port);
    in_chromium(
        case,
        dir.path(),
        false,
        async |client| scenario(client, &base, &password, case).await,
        || format!("server log:\n{}", server.log()),
    )
    .await;
    assert!(
        !server.log().contains(&password),
        "the password reached the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_configuration_at_127_0_0_1() {
    login_case("default-127.0.0.1", "127.0.0.1", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_configuration_at_localhost() {
    login_case("default-localhost", "localhost", &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_cookies_at_127_0_0_1() {
    login_case("insecure-cookies", "127.0.0.1", &["--insecure-cookies"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_whose_cookie_was_dropped_comes_back_saying_why() {
    const CASE: &str = "cookie-dropped";
    if !have(&[CHROMIUM, CHROMEDRIVER]) {
        return;
    }
    clear_artifacts(CASE);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Served::start(dir.path(), &data, &[]);
    let password = generated_password();
    add_user(dir.path(), &data, USER, &password);
    let base = server.base.clone();
    in_chromium(
        CASE,
        dir.path(),
        false,
        async |client| {
            client.goto(&format!("{base}/login")).await?;
            see(client, "Log in").await?;
            screenshot(client, CASE, "login.png").await?;
            // What a browser does with a Secure cookie it will not keep: the form goes back
            // without it.
            client.get_named_cookie(CSRF_COOKIE).await?;
            client.delete_cookie(CSRF_COOKIE).await?;
            log_in(client, USER, &password).await?;
            see(client, COOKIE_DROPPED).await?;
            see(client, "--insecure-cookies").await?;
            screenshot(client, CASE, "refused.png").await?;
            let url = client.current_url().await?;
            ensure!(url.path() == "/login", "the refused form: {url}");
            // The form came back with a new cookie, and this time it is sent: it logs in.
            client.get_named_cookie(CSRF_COOKIE).await?;
            log_in(client, USER, &password).await?;
            logged_in(client, USER).await?;
            log_out(client, &base, CASE).await
        },
        || format!("server log:\n{}", server.log()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_from_the_setup_link() {
    const CASE: &str = "setup";
    if !have(&[CHROMIUM, CHROMEDRIVER]) {
        return;
    }
    clear_artifacts(CASE);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // No users: `serve` logs the one-time link.
    let server = Served::start(dir.path(), &data, &[]);
    let line = server.wait_for("/setup?token=");
    let link = url_in(&line, "http://");
    assert!(
        link.starts_with(&format!("{}/setup?token=", server.base)),
        "{link} in {line}"
    );
    let password = generated_password();
    in_chromium(
        CASE,
        dir.path(),
        false,
        async |client| {
            client.goto(&link).await?;
            see(client, "Create the administrator").await?;
            screenshot(client, CASE, "setup.png").await?;
            let form = client.find(Locator::Css("form[action='/setup']")).await?;
            for (id, value) in [
                ("username", "alice"),
                ("password", &password),
                ("password_confirm", &password),
            ] {
                form.find(Locator::Id(id)).await?.send_keys(value).await?;
            }
            form.find(Locator::Id("submit")).await?.click().await?;
            logged_in(client, "alice").await?;
            screenshot(client, CASE, "logged-in.png").await?;
            client.goto(&format!("{}/api/me", server.base)).await?;
            let me = client.find(Locator::Css("pre")).await?.text().await?;
            let me: serde_json::Value =
                serde_json::from_str(&me).with_context(|| format!("/api/me: {me}"))?;
            ensure!(
                me["username"] == "alice" && me["role"] == "admin",
                "/api/me: {me}"
            );
            // Used once, the link is gone.
            client.goto(&link).await?;
            see(client, "Setup link not valid").await?;
            Ok(())
        },
        || format!("server log:\n{}", server.log()),
    )
    .await;
    assert!(
        !server.log().contains(&password),
        "the password reached the log"
    );
}

/// nginx with TLS on `port`, in front of `upstream`; its certificate made here. The
/// process and the directory holding its files (and its stderr, `nginx.stderr`).
fn start_nginx(dir: &Path, port: u16, upstream: u16) -> Group {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if !cert.exists() {
        let out = Command::new(OPENSSL)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .arg("ec_paramgen_curve:prime256v1")
            .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let conf = NGINX_CONF
        .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
        .replace("@CERT@", &cert.display().to_string())
        .replace("@KEY@", &key.display().to_string())
        .replace("@UPSTREAM@", &format!("127.0.0.1:{upstream}"));
    assert!(!conf.contains('@'), "a placeholder left: {conf}");
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let stderr = std::fs::File::create(dir.join("nginx.stderr")).unwrap();
    Group::spawn(
        Command::new(NGINX)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf_path)
            .arg("-g")
            .arg(format!(
                "daemon off; pid {}; error_log stderr;",
                dir.join("nginx.pid").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr),
    )
}

/// What nginx logged: its stderr and access log.
fn nginx_logs(dir: &Path) -> String {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    format!(
        "nginx stderr:\n{}\nnginx access log:\n{}",
        read("nginx.stderr"),
        read("access.log")
    )
}

/// An HTTP client that accepts the self-signed certificate, follows no redirects and,
/// with `from`, connects from that local address.
fn http_client(from: Option<IpAddr>) -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PATIENCE)
        .local_address(from)
        .build()
        .unwrap()
}

/// The value a response's `Set-Cookie` gives `name`.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=')?;
            (k == name && !v.is_empty()).then(|| v.to_owned())
        })
}

/// Log in with a form at `base` as a browser at `origin` would (the page's cookie and
/// token, `Origin`), every request carrying `extra` headers; the address the session list
/// then shows for the new session.
async fn ip_after_form_login(
    http: &reqwest::Client,
    base: &str,
    origin: &str,
    extra: &[(&str, &str)],
    password: &str,
) -> anyhow::Result<String> {
    let with = |mut b: reqwest::RequestBuilder| {
        for (name, value) in extra {
            b = b.header(*name, *value);
        }
        b
    };
    let page = with(http.get(format!("{base}/login"))).send().await?;
    ensure!(page.status() == 200, "GET /login: {}", page.status());
    let csrf = set_cookie(&page, CSRF_COOKIE).context("no CSRF cookie")?;
    let body = page.text().await?;
    let marker = "name=\"csrf_token\" value=\"";
    let start = body.find(marker).context("no token")? + marker.len();
    let token = &body[start..start + body[start..].find('"').context("no token end")?];
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("username", USER),
            ("password", password),
            ("csrf_token", token),
        ])
        .finish();
    let r = with(http.post(format!("{base}/login")))
        .header("origin", origin)
        .header("cookie", format!("{CSRF_COOKIE}={csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await?;
    ensure!(r.status() == 303, "POST /login: {}", r.status());
    let session = set_cookie(&r, SESSION_COOKIE).context("no session cookie")?;
    let list: serde_json::Value = http
        .get(format!("{base}/api/sessions"))
        .header("cookie", format!("{SESSION_COOKIE}={session}"))
        .send()
        .await?
        .json()
        .await?;
    let current = list["sessions"]
        .as_array()
        .context("no sessions")?
        .iter()
        .find(|s| s["current"] == true)
        .with_context(|| format!("no current session: {list}"))?;
    Ok(current["ip"].as_str().context("no ip")?.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_with_tls() {
    const CASE: &str = "nginx-tls";
    if !have(&[CHROMIUM, CHROMEDRIVER, NGINX, OPENSSL]) {
        return;
    }
    clear_artifacts(CASE);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let password = generated_password();
    let probe = http_client(None);

    // nginx's port goes into the server's public URL, so both start again should the port
    // be taken between the probe and nginx's bind.
    let mut failures = Vec::new();
    let mut running = None;
    for _ in 0..3 {
        let port = free_port();
        let public = format!("https://localhost:{port}");
        let server = Served::start(
            dir.path(),
            &data,
            &["--trusted-proxies", "127.0.0.1/32", "--public-url", &public],
        );
        let mut nginx = start_nginx(dir.path(), port, server.port);
        let deadline = Instant::now() + PATIENCE;
        let mut ready = false;
        while Instant::now() < deadline && !nginx.exited() {
            if let Ok(r) = probe
                .get(format!("https://127.0.0.1:{port}/healthz"))
                .send()
                .await
                && r.status() == 200
            {
                ready = true;
                break;
            }
            // Bounded polling: at most PATIENCE in all.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if ready {
            running = Some((server, nginx, port));
            break;
        }
        failures.push(nginx_logs(dir.path()));
    }
    let Some((server, _nginx, port)) = running else {
        panic!("nginx did not start:\n{}", failures.join("\n"));
    };
    add_user(dir.path(), &data, USER, &password);
    let base = format!("https://localhost:{port}");
    let diagnostics = || format!("server log:\n{}\n{}", server.log(), nginx_logs(dir.path()));

    in_chromium(
        CASE,
        dir.path(),
        true,
        async |client| {
            client.goto(&format!("{base}/")).await?;
            see(client, "You are not logged in").await?;
            screenshot(client, CASE, "login.png").await?;
            log_in(client, USER, &password).await?;
            logged_in(client, USER).await?;
            ensure!(client.current_url().await?.scheme() == "https", "left TLS");
            screenshot(client, CASE, "logged-in.png").await?;

            // The session list shows the address nginx reported for the browser.
            client.goto(&format!("{base}/account/sessions")).await?;
            see(client, "This session").await?;
            let cell = client
                .find(Locator::XPath(
                    "//tr[.//strong[contains(., 'This session')]]/td[3]",
                ))
                .await?
                .text()
                .await?;
            let ip = cell.lines().next().unwrap_or_default().trim();
            ensure!(ip == "127.0.0.1", "the session list's address: {cell:?}");
            screenshot(client, CASE, "sessions.png").await?;

            protected_greets(client, &base).await?;
            log_out(client, &base, CASE).await
        },
        &diagnostics,
    )
    .await;

    // Chromium and nginx share 127.0.0.1, so the address above is also the proxy's own. A
    // client on another loopback address tells them apart: nginx reports it, and what it
    // claims for itself in X-Forwarded-For or Forwarded is never believed.
    let client_ip: IpAddr = "127.0.0.5".parse().unwrap();
    let from_other = http_client(Some(client_ip));
    let via_nginx = format!("https://127.0.0.1:{port}");
    let spoof: &[(&str, &str)] = &[
        ("x-forwarded-for", "203.0.113.9"),
        (
            "forwarded",
            "for=203.0.113.10;proto=https;host=evil.example",
        ),
        ("x-real-ip", "203.0.113.11"),
    ];
    /// A case: its name, the base URL, and the headers the client adds.
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let cases: [Case; 3] = [
        ("through nginx", &via_nginx, &[]),
        ("through nginx, spoofing", &via_nginx, spoof),
        // Straight to the server: the peer is not a trusted proxy, so nothing forwarded
        // counts, not even a claimed scheme and host.
        (
            "straight to the server, spoofing",
            &server.base,
            &[
                ("x-forwarded-for", "203.0.113.9"),
                (
                    "forwarded",
                    "for=203.0.113.10;proto=https;host=evil.example",
                ),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.example"),
            ],
        ),
    ];
    for (what, base, extra) in cases {
        // The browser's origin is where it sent the request.
        let ip = ip_after_form_login(&from_other, base, base, extra, &password)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:#}\n{}", diagnostics()));
        assert_eq!(ip, "127.0.0.5", "{what}\n{}", diagnostics());
    }
    assert!(
        !server.log().contains(&password),
        "the password reached the log"
    );
}
