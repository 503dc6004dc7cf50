//! An authenticator app in Chromium, against the real binary in its default configuration,
//! as a person would: log in with the password, set up the app on `/account/security` (the
//! QR code drawn, the secret read off the page, the first code typed, the ten recovery
//! codes shown once), log out, log in with the password and then a code; the same with a
//! recovery code, which a second time is refused. Between the two steps the browser is
//! half logged in: it holds only the challenge cookie (`HttpOnly`, five minutes), and
//! nothing answers it as a session. Once the browser drops that cookie (its five minutes
//! are up; the HTTP tests expire the challenge itself with a moved clock), the second step
//! sends it back to the login page saying so.
//!
//! The codes are computed by `pyotp` from the secret the page shows (`tests/it/py/totp.py`):
//! the current window's to confirm the app, the next window's to log in, which the server
//! accepts (one step of skew) and which comes after the confirming code's window whenever
//! it is typed (a window's code is accepted once).
//!
//! Screenshots of each step go to `target/browser-artifacts/mfa-*.png`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use fantoccini::cookies::Cookie;
use fantoccini::{Client, Locator};

use super::{
    CHROMEDRIVER, CHROMIUM, SESSION_COOKIE, Served, USER, add_user, clear_artifacts,
    generated_password, have, in_chromium, log_in, log_out, logged_in, screenshot, see,
};

const CASE: &str = "mfa";
const CHALLENGE_COOKIE: &str = "__Host-countersign-mfa";

/// The venv's python with pyotp: `None` (the test skipped, saying why) when missing,
/// except under `CI=true`, where it fails.
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("COUNTERSIGN_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv/bin/python")
        });
    let ok = Command::new(&path)
        .args(["-c", "import pyotp"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(path);
    }
    let why = format!(
        "{} cannot import pyotp: run `bash scripts/pyenv.sh` or set COUNTERSIGN_PYTHON",
        path.display()
    );
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI=true: {why}");
    eprintln!("browser test {CASE}: {why}; skipped");
    None
}

/// pyotp's code for `secret`, `ahead` windows after the current one.
fn totp_code(python: &Path, secret: &str, ahead: u64) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut child = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/py/totp.py"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(format!("{secret}\n{}\n", now + 30 * ahead).as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "totp.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8(out.stdout)?.trim().to_owned();
    ensure!(code.len() == 6, "pyotp answered {code:?}");
    Ok(code)
}

/// Type `code` into the second step's form and send it.
async fn second_step(client: &Client, code: &str) -> anyhow::Result<()> {
    let form = client
        .find(Locator::Css("form[action='/login/mfa']"))
        .await?;
    form.find(Locator::Id("code"))
        .await?
        .send_keys(code)
        .await?;
    form.find(Locator::Css("button[type=submit]"))
        .await?
        .click()
        .await?;
    Ok(())
}

/// After the password: the second step's page, the challenge cookie and no session.
async fn half_logged_in(client: &Client) -> anyhow::Result<Cookie<'static>> {
    see(client, "Two-step login").await?;
    let url = client.current_url().await?;
    ensure!(url.path() == "/login/mfa", "after the password: {url}");
    let cookie = client.get_named_cookie(CHALLENGE_COOKIE).await?;
    ensure!(
        cookie.http_only() == Some(true),
        "challenge cookie not HttpOnly"
    );
    ensure!(
        client.get_named_cookie(SESSION_COOKIE).await.is_err(),
        "a session cookie before the second step"
    );
    Ok(cookie)
}

/// What a half-logged-in browser reaches: nothing that needs a session.
async fn grants_nothing(client: &Client, base: &str) -> anyhow::Result<()> {
    client.goto(&format!("{base}/protected")).await?;
    let body = client.find(Locator::Css("body")).await?.text().await?;
    if body.contains("Hello") {
        bail!("/protected with the challenge cookie: {body}");
    }
    client.goto(&format!("{base}/api/me")).await?;
    let body = client.find(Locator::Css("body")).await?.text().await?;
    ensure!(body.contains("missing_token"), "/api/me: {body}");
    client.goto(&format!("{base}/")).await?;
    see(client, "You are not logged in").await?;
    client.goto(&format!("{base}/account/security")).await?;
    see(client, "Log in").await?;
    let url = client.current_url().await?;
    ensure!(url.path() == "/login", "/account/security sent to {url}");
    Ok(())
}

/// The scenario.
async fn scenario(
    client: &Client,
    base: &str,
    password: &str,
    python: &Path,
) -> anyhow::Result<()> {
    client.goto(&format!("{base}/login")).await?;
    log_in(client, USER, password).await?;
    logged_in(client, USER).await?;

    // Set up the app.
    client.goto(&format!("{base}/account/security")).await?;
    see(client, "Not set up").await?;
    client
        .find(Locator::Css("form[action='/account/security/totp'] button"))
        .await?
        .click()
        .await?;
    see(client, "Scan this QR code").await?;
    client.find(Locator::Css("figure.qr svg")).await?;
    screenshot(client, CASE, "qr-code.png").await?;
    let secret = client
        .find(Locator::Css("[data-totp-secret]"))
        .await?
        .text()
        .await?
        .replace(' ', "");
    ensure!(secret.len() >= 32, "the secret shown: {secret:?}");
    let code = totp_code(python, &secret, 0)?;
    let form = client
        .find(Locator::Css(
            "form[action='/account/security/totp/confirm']",
        ))
        .await?;
    form.find(Locator::Id("confirm-code"))
        .await?
        .send_keys(&code)
        .await?;
    form.find(Locator::Css("button[type=submit]"))
        .await?
        .click()
        .await?;
    see(client, "Your recovery codes").await?;
    screenshot(client, CASE, "recovery-codes.png").await?;
    let mut codes = Vec::new();
    for element in client
        .find_all(Locator::Css("[data-recovery-codes] code"))
        .await?
    {
        codes.push(element.text().await?);
    }
    ensure!(codes.len() == 10, "recovery codes shown: {codes:?}");
    see(client, "On since").await?;
    log_out(client, base, CASE).await?;

    // Password, then the app's code. The confirming code's window is spent; the next
    // window's code is taken.
    client.goto(&format!("{base}/login")).await?;
    log_in(client, USER, password).await?;
    half_logged_in(client).await?;
    screenshot(client, CASE, "second-step.png").await?;
    grants_nothing(client, base).await?;
    client.goto(&format!("{base}/login/mfa")).await?;
    second_step(client, "000000").await?;
    see(client, "That code is not valid").await?;
    let code = totp_code(python, &secret, 1)?;
    second_step(client, &code).await?;
    logged_in(client, USER).await?;
    ensure!(
        client.get_named_cookie(CHALLENGE_COOKIE).await.is_err(),
        "the challenge cookie outlived the login"
    );
    client.goto(&format!("{base}/api/me")).await?;
    let me = client.find(Locator::Css("pre")).await?.text().await?;
    let me: serde_json::Value =
        serde_json::from_str(&me).with_context(|| format!("/api/me: {me}"))?;
    ensure!(
        me["amr"] == serde_json::json!(["pwd", "otp", "mfa"]),
        "/api/me: {me}"
    );
    screenshot(client, CASE, "logged-in.png").await?;
    log_out(client, base, CASE).await?;

    // The challenge cookie lives five minutes; once the browser has dropped it, the second
    // step sends it back to the password, saying why.
    client.goto(&format!("{base}/login")).await?;
    log_in(client, USER, password).await?;
    let cookie = half_logged_in(client).await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let expires = cookie
        .expires_datetime()
        .context("the challenge cookie has no expiry")?
        .unix_timestamp();
    let left = expires - i64::try_from(now)?;
    ensure!(
        0 < left && left <= 300,
        "the challenge cookie expires in {left} s"
    );
    client.delete_cookie(CHALLENGE_COOKIE).await?;
    let code = totp_code(python, &secret, 1)?;
    second_step(client, &code).await?;
    see(client, "Your two-step login expired").await?;
    ensure!(client.current_url().await?.path() == "/login");
    screenshot(client, CASE, "expired.png").await?;

    // A recovery code, once.
    log_in(client, USER, password).await?;
    half_logged_in(client).await?;
    second_step(client, &codes[0]).await?;
    logged_in(client, USER).await?;
    client.goto(&format!("{base}/account/security")).await?;
    see(client, "9 of 10 left").await?;
    see(client, "Codes used").await?;
    screenshot(client, CASE, "security.png").await?;
    log_out(client, base, CASE).await?;
    client.goto(&format!("{base}/login")).await?;
    log_in(client, USER, password).await?;
    half_logged_in(client).await?;
    second_step(client, &codes[0]).await?;
    see(client, "That code is not valid").await?;
    screenshot(client, CASE, "recovery-code-reused.png").await?;
    second_step(client, &codes[1]).await?;
    logged_in(client, USER).await?;
    log_out(client, base, CASE).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticator_app_and_recovery_codes_in_chromium() {
    if !have(&[CHROMIUM, CHROMEDRIVER]) {
        return;
    }
    let Some(python) = python() else { return };
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
        async |client| scenario(client, &base, &password, &python).await,
        || format!("server log:\n{}", server.log()),
    )
    .await;
    let log = server.log();
    assert!(!log.contains(&password), "the password reached the log");
    assert!(log.contains("second factor accepted"), "{log}");
}
