//! The example in a real browser, as its README runs it: the `buggy-race` binary with its
//! default settings (plain-HTTP cookies, generated passwords printed once) on
//! `--addr 127.0.0.1:0`, driven in Debian's headless Chromium through ChromeDriver
//! (WebDriver) by `fantoccini`.
//!
//! alice logs in with her printed password, edits her buggy (a bad value is refused with
//! 422, a good one saved), and gets the 403 page at `/admin/buggies`; bob sees his own
//! buggy, not alice's; the admin's list shows every buggy. Then the login and logout forms
//! are sent under every Referrer-Policy a page may set: each one logs in and out.
//! Screenshots go to `target/browser-artifacts/` (`$CARGO_TARGET_DIR` when set).
//!
//! Without Chromium and ChromeDriver the test says why and passes, except under
//! `CI=true`, where it fails. Every wait is bounded; ChromeDriver gets a port picked by
//! the OS, and it (with the browsers it started) and the server are killed when the test
//! ends, however it ends.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_buggy-race");
#[path = "../../../../tests/support/webdriver.rs"]
mod webdriver;
use webdriver::*;

/// The whole scenario, start-up included.
const DEADLINE: Duration = Duration::from_secs(240);
/// The pictures the test takes, in `target/browser-artifacts/`.
const SCREENSHOTS: &[&str] = &[
    "buggy-race-alice.png",
    "buggy-race-forbidden.png",
    "buggy-race-admin.png",
    "buggy-race-failure.png",
];
/// Every value of Referrer-Policy, and what the page the login lands on gets as
/// `document.referrer` under it (a same-origin post from `/login`, redirected to `/buggy`).
const POLICIES: &[(&str, Referrer)] = &[
    ("no-referrer", Referrer::None),
    ("no-referrer-when-downgrade", Referrer::Url),
    ("origin", Referrer::Origin),
    ("origin-when-cross-origin", Referrer::Url),
    ("same-origin", Referrer::Url),
    ("strict-origin", Referrer::Origin),
    ("strict-origin-when-cross-origin", Referrer::Url),
    ("unsafe-url", Referrer::Url),
];

#[derive(Clone, Copy, Debug)]
enum Referrer {
    None,
    Origin,
    Url,
}

// ----- the example -----

/// The running example: its base URL, the printed passwords by username, and its log.
struct Example {
    _process: Group,
    base: String,
    passwords: BTreeMap<String, String>,
    log: Arc<Mutex<String>>,
}

/// `buggy-race --addr 127.0.0.1:0` with nothing set (no key, no passwords), as the README
/// runs it; returns once it logs its address.
fn start_example() -> Example {
    let mut cmd = Command::new(BIN);
    for var in [
        "SECRET_KEY",
        "BUGGY_ALICE_PASSWORD",
        "BUGGY_BOB_PASSWORD",
        "BUGGY_ADMIN_PASSWORD",
    ] {
        cmd.env_remove(var);
    }
    let mut process = Group::spawn(
        cmd.args(["--addr", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
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
    let mut passwords = BTreeMap::new();
    let deadline = Instant::now() + PATIENCE;
    let needle = "listening on http://";
    let line = loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains(needle) => break line,
            Ok(line) => {
                // "generated password for NAME: PASSWORD (set VAR to choose one)"
                if let Some(rest) = line.strip_prefix("generated password for ") {
                    let (name, rest) = rest.split_once(": ").unwrap();
                    let (password, _) = rest.split_once(" (set ").unwrap();
                    passwords.insert(name.to_owned(), password.to_owned());
                }
            }
            Err(RecvTimeoutError::Timeout) => panic!("no address logged:\n{}", log.lock().unwrap()),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the example exited:\n{}", log.lock().unwrap())
            }
        }
    };
    let start = line.find(needle).unwrap() + "listening on ".len();
    let base: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.'))
        .collect();
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{line}"
    );
    let names: Vec<&str> = passwords.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["admin", "alice", "bob"],
        "one password printed each"
    );
    Example {
        _process: process,
        base,
        passwords,
        log,
    }
}

/// Set the page's Referrer-Policy as a page may: a `<meta name="referrer">` (it overrides
/// the header for requests the page makes from then on).
async fn set_referrer_policy(client: &Client, policy: &str) -> anyhow::Result<()> {
    client
        .execute(
            "const meta = document.createElement('meta'); \
             meta.name = 'referrer'; meta.content = arguments[0]; \
             document.head.append(meta);",
            vec![json!(policy)],
        )
        .await?;
    Ok(())
}

/// The login form, filled and sent; lands on the user's buggy. With `policy`, the login
/// page's Referrer-Policy is replaced first.
async fn log_in(
    client: &Client,
    ex: &Example,
    user: &str,
    policy: Option<&str>,
) -> anyhow::Result<()> {
    client.goto(&format!("{}/login", ex.base)).await?;
    ensure!(status(client).await? == 200, "GET /login");
    if let Some(policy) = policy {
        set_referrer_policy(client, policy).await?;
    }
    let form = client.find(Locator::Css("form[action='/login']")).await?;
    form.find(Locator::Id("username"))
        .await?
        .send_keys(user)
        .await?;
    form.find(Locator::Id("password"))
        .await?
        .send_keys(&ex.passwords[user])
        .await?;
    form.find(Locator::Css("button[type=submit]"))
        .await?
        .click()
        .await?;
    see(client, &format!("Logged in as {user}")).await?;
    let url = client.current_url().await?;
    ensure!(url.path() == "/buggy", "after {user}'s login: {url}");
    ensure!(status(client).await? == 200, "{user}'s buggy page");
    Ok(())
}

/// The logout button in the navigation bar; lands on the login form. With `policy`, the
/// page's Referrer-Policy is replaced first.
async fn log_out(client: &Client, policy: Option<&str>) -> anyhow::Result<()> {
    if let Some(policy) = policy {
        set_referrer_policy(client, policy).await?;
    }
    client
        .find(Locator::Css("form[action='/logout'] button[type=submit]"))
        .await?
        .click()
        .await?;
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("form[action='/login']"))
        .await
        .context("no login form after logging out")?;
    let url = client.current_url().await?;
    ensure!(url.path() == "/login", "after logout: {url}");
    ensure!(
        client
            .find_all(Locator::Css("form[action='/logout']"))
            .await?
            .is_empty(),
        "still logged in"
    );
    Ok(())
}

/// The value a field of the buggy form shows: a number input's value, a select's chosen
/// option, a checkbox's state as "on"/"off".
async fn field(client: &Client, name: &str) -> anyhow::Result<String> {
    let element = client.find(Locator::Id(name)).await?;
    Ok(match element.tag_name().await?.as_str() {
        "select" => element
            .find(Locator::Css("option:checked"))
            .await?
            .attr("value")
            .await?
            .unwrap_or_default(),
        _ if element.attr("type").await?.as_deref() == Some("checkbox") => {
            if element.is_selected().await? {
                "on".to_owned()
            } else {
                "off".to_owned()
            }
        }
        _ => element.prop("value").await?.unwrap_or_default(),
    })
}

/// `GET /api/buggy` in the browser (Chromium shows JSON as the text of a `<pre>`).
async fn api_buggy(client: &Client, base: &str) -> anyhow::Result<Value> {
    client.goto(&format!("{base}/api/buggy")).await?;
    ensure!(status(client).await? == 200, "GET /api/buggy");
    let text = client.find(Locator::Css("pre")).await?.text().await?;
    serde_json::from_str(&text).with_context(|| format!("/api/buggy: {text}"))
}

/// `/admin/buggies` refuses a user who is not an admin with the 403 page.
async fn admin_refused(client: &Client, base: &str) -> anyhow::Result<()> {
    client.goto(&format!("{base}/admin/buggies")).await?;
    see(client, "This page needs the admin role.").await?;
    ensure!(status(client).await? == 403, "/admin/buggies for a user");
    let h1 = client.find(Locator::Css("h1")).await?.text().await?;
    ensure!(h1 == "Admins only", "403 page heading: {h1:?}");
    ensure!(
        client.find_all(Locator::Css("table")).await?.is_empty(),
        "the 403 page lists buggies"
    );
    Ok(())
}

/// Replace the text of a number input.
async fn type_into(client: &Client, id: &str, text: &str) -> anyhow::Result<()> {
    let input = client.find(Locator::Id(id)).await?;
    input.clear().await?;
    input.send_keys(text).await?;
    Ok(())
}

async fn save(client: &Client) -> anyhow::Result<()> {
    client
        .find(Locator::Css("form[action='/buggy'] button[type=submit]"))
        .await?
        .click()
        .await?;
    Ok(())
}

async fn alice(client: &Client, ex: &Example) -> anyhow::Result<()> {
    let base = &ex.base;
    // Not logged in: the buggy page sends to the login form.
    client.goto(&format!("{base}/buggy")).await?;
    let url = client.current_url().await?;
    ensure!(url.path() == "/login", "/buggy before login: {url}");

    log_in(client, ex, "alice", None).await?;
    ensure!(field(client, "qty_wheels").await? == "4", "a new buggy");

    // An odd number of wheels is refused, with the error in the form.
    type_into(client, "qty_wheels", "5").await?;
    save(client).await?;
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("div.error[role=alert]"))
        .await
        .context("no error summary")?;
    ensure!(status(client).await? == 422, "an odd number of wheels");
    ensure!(
        field(client, "qty_wheels").await? == "5",
        "the refused value shown again"
    );
    client.find(Locator::Id("qty_wheels-error")).await?;

    // A good buggy is saved.
    type_into(client, "qty_wheels", "6").await?;
    type_into(client, "qty_tyres", "8").await?;
    client
        .find(Locator::Id("flag_color"))
        .await?
        .select_by_value("red")
        .await?;
    client.find(Locator::Id("fireproof")).await?.click().await?;
    save(client).await?;
    see(client, "Your buggy was saved.").await?;
    let url = client.current_url().await?;
    ensure!(
        url.path() == "/buggy" && url.query() == Some("saved"),
        "after saving: {url}"
    );
    screenshot(client, "buggy-race-alice.png").await?;

    // It stays saved.
    client.goto(&format!("{base}/buggy")).await?;
    for (name, value) in [
        ("qty_wheels", "6"),
        ("qty_tyres", "8"),
        ("flag_color", "red"),
        ("fireproof", "on"),
    ] {
        let shown = field(client, name).await?;
        ensure!(shown == value, "alice's {name}: {shown:?}, not {value:?}");
    }
    let api = api_buggy(client, base).await?;
    ensure!(
        api["username"] == "alice"
            && api["buggy"]["qty_wheels"] == 6
            && api["buggy"]["flag_color"] == "red"
            && api["buggy"]["fireproof"] == true,
        "alice's /api/buggy: {api}"
    );

    admin_refused(client, base).await?;
    screenshot(client, "buggy-race-forbidden.png").await?;
    // The 403 page keeps her logged in, with the logout button.
    log_out(client, None).await
}

async fn bob(client: &Client, ex: &Example) -> anyhow::Result<()> {
    log_in(client, ex, "bob", None).await?;
    for (name, value) in [
        ("qty_wheels", "4"),
        ("qty_tyres", "4"),
        ("flag_color", "white"),
        ("fireproof", "off"),
    ] {
        let shown = field(client, name).await?;
        ensure!(shown == value, "bob's {name}: {shown:?}, not {value:?}");
    }
    let api = api_buggy(client, &ex.base).await?;
    ensure!(
        api["username"] == "bob"
            && api["buggy"]["qty_wheels"] == 4
            && api["buggy"]["flag_color"] == "white",
        "bob's /api/buggy: {api}"
    );
    admin_refused(client, &ex.base).await?;
    log_out(client, None).await
}

async fn admin(client: &Client, ex: &Example) -> anyhow::Result<()> {
    log_in(client, ex, "admin", None).await?;
    client.goto(&format!("{}/admin/buggies", ex.base)).await?;
    see(client, "All buggies").await?;
    ensure!(status(client).await? == 200, "/admin/buggies for the admin");
    let mut rows = Vec::new();
    for row in client.find_all(Locator::Css("tbody tr")).await? {
        let user = row.find(Locator::Css("th")).await?.text().await?;
        let mut cells = Vec::new();
        for cell in row.find_all(Locator::Css("td")).await? {
            cells.push(cell.text().await?);
        }
        // role, wheels, tyres, power, flag, armour, strategy, fireproof
        ensure!(cells.len() == 8, "{user}'s row: {cells:?}");
        rows.push((
            user,
            cells[0].clone(),
            cells[1].clone(),
            cells[4].clone(),
            cells[7].clone(),
        ));
    }
    rows.sort();
    let expected = [
        ("admin", "admin", "4", "plain, white", "no"),
        ("alice", "user", "6", "plain, red", "yes"),
        ("bob", "user", "4", "plain, white", "no"),
    ]
    .map(|(u, r, w, f, p)| {
        (
            u.to_owned(),
            r.to_owned(),
            w.to_owned(),
            f.to_owned(),
            p.to_owned(),
        )
    });
    ensure!(rows == expected, "the admin's list: {rows:?}");
    screenshot(client, "buggy-race-admin.png").await?;
    log_out(client, None).await
}

/// The login and logout forms under every Referrer-Policy a page may set.
async fn every_policy(client: &Client, ex: &Example) -> anyhow::Result<()> {
    for &(policy, referrer) in POLICIES {
        log_in(client, ex, "bob", Some(policy))
            .await
            .with_context(|| format!("login under Referrer-Policy: {policy}"))?;
        // The policy was in force: the landing page got the referrer it allows.
        let got = client.execute("return document.referrer;", vec![]).await?;
        let want = match referrer {
            Referrer::None => String::new(),
            Referrer::Origin => format!("{}/", ex.base),
            Referrer::Url => format!("{}/login", ex.base),
        };
        ensure!(
            got == json!(want),
            "document.referrer under {policy}: {got}, not {want:?}"
        );
        log_out(client, Some(policy))
            .await
            .with_context(|| format!("logout under Referrer-Policy: {policy}"))?;
    }
    Ok(())
}

async fn scenario(client: &Client, ex: &Example) -> anyhow::Result<()> {
    alice(client, ex).await.context("alice")?;
    bob(client, ex).await.context("bob")?;
    admin(client, ex).await.context("admin")?;
    every_policy(client, ex).await?;
    // Nothing failed on the way: no CSRF refusal was shown.
    let body = client.find(Locator::Css("body")).await?.text().await?;
    if body.contains("csrf_failed") {
        bail!("CSRF refusal: {body}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_walkthrough_in_chromium() {
    if !browser_installed() {
        return;
    }
    // Only this run's pictures: none left from an earlier one.
    let artifacts = artifacts_dir();
    for name in SCREENSHOTS {
        let _ = std::fs::remove_file(artifacts.join(name));
    }

    let ex = start_example();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = async {
        let (_driver, driver_url) = start_chromedriver(dir.path()).await;
        let client = open_browser(&driver_url, &dir.path().join("profile")).await;
        let outcome = scenario(&client, &ex).await;
        if outcome.is_err() {
            let _ = screenshot(&client, "buggy-race-failure.png").await;
        }
        // Ends the session, which quits the browser; the driver's group is killed anyway.
        let _ = client.close().await;
        outcome
    };
    let outcome = tokio::time::timeout(DEADLINE, run)
        .await
        .unwrap_or_else(|_| panic!("the browser test took over {DEADLINE:?}"));
    if let Err(e) = outcome {
        panic!("{e:#}\nexample log:\n{}", ex.log.lock().unwrap());
    }
    eprintln!("browser scenario: {:?}", started.elapsed());
}
