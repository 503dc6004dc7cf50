//! The WebDriver plumbing the browser tests of every crate share: Debian's headless
//! Chromium driven through ChromeDriver by `fantoccini`, with every process in a group
//! killed when the test ends, every wait bounded, screenshots in
//! `target/browser-artifacts/` (`$CARGO_TARGET_DIR` when set).
//!
//! Included by path (`#[path = "…/tests/support/webdriver.rs"] mod webdriver;`) from each
//! crate's single test binary, so that there is one copy and no extra crate to build.
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Headless, and none of the background traffic to Google's hosts.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1024,640",
];
/// How long any one wait (a process starting, a page loading, an element appearing) may take.
pub const PATIENCE: Duration = Duration::from_secs(20);

// ----- processes and the browser (as in countersign-server's browser test) -----

/// A child process killed with its whole process group when dropped (ChromeDriver leaves
/// the browsers it started behind when it is killed alone).
pub struct Group {
    pub child: Child,
}

impl Group {
    pub fn spawn(cmd: &mut Command) -> Self {
        let child = cmd.process_group(0).spawn().unwrap();
        Self { child }
    }

    pub fn exited(&mut self) -> bool {
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

/// `$CARGO_TARGET_DIR/browser-artifacts`, else the workspace's `target/browser-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    // crates/NAME or examples/NAME → the workspace root.
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

/// Whether the browser tools are installed; without them, under `CI=true`, a failure.
pub fn browser_installed() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "browser test: {} missing (Debian packages chromium and chromium-driver; \
         scripts/test installs them)",
        missing.join(" and ")
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("{why}; skipped");
    false
}

/// A port the OS says is free now; the caller retries should something take it first.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether ChromeDriver on `port` answers `GET /status` with `ready: true`.
pub async fn driver_ready(port: u16) -> bool {
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let request =
            format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        // ChromeDriver keeps the connection open: read until the body is whole JSON.
        let mut response = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await?;
            anyhow::ensure!(n > 0, "closed before a whole answer");
            response.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&response);
            if let Some((_, body)) = text.split_once("\r\n\r\n")
                && let Ok(status) = serde_json::from_str::<Value>(body)
            {
                return anyhow::Ok(status);
            }
        }
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ask).await,
        Ok(Ok(status)) if status["value"]["ready"] == true
    )
}

/// ChromeDriver on a free port, answering `/status` as ready; its URL.
pub async fn start_chromedriver(dir: &Path) -> (Group, String) {
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
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline && !driver.exited() {
            if driver_ready(port).await {
                return (driver, format!("http://127.0.0.1:{port}"));
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

/// A WebDriver session in a headless Chromium with a fresh profile.
pub async fn open_browser(driver: &str, profile: &Path) -> Client {
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let Value::Object(capabilities) = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
    }) else {
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

/// Wait (bounded) until the page's text contains `text`.
pub async fn see(client: &Client, text: &str) -> anyhow::Result<()> {
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

/// Wait (bounded) until the browser shows a loaded page of `app` (the origin).
pub async fn arrive(client: &Client, app: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let url = client.current_url().await?;
        if url.origin().ascii_serialization() == app
            && client
                .execute("return document.readyState;", vec![])
                .await?
                == "complete"
        {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "still at {url}");
        // Bounded polling: at most PATIENCE in all.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The HTTP status of the page now shown (Navigation Timing's `responseStatus`).
pub async fn status(client: &Client) -> anyhow::Result<u64> {
    let value = client
        .execute(
            "return performance.getEntriesByType('navigation')[0].responseStatus;",
            vec![],
        )
        .await?;
    value
        .as_u64()
        .with_context(|| format!("no response status: {value}"))
}

/// Save a screenshot as `name` in the artifacts directory.
pub async fn screenshot(client: &Client, name: &str) -> anyhow::Result<()> {
    let png = client.screenshot().await.context("screenshot")?;
    let path = artifacts_dir().join(name);
    std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("screenshot: {}", path.display());
    Ok(())
}
