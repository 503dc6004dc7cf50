//! Passkeys in Chromium, with WebDriver's virtual authenticator (CTAP2, an internal
//! platform authenticator with resident keys and user verification) standing in for a
//! phone or a laptop's fingerprint reader. The server runs its default configuration with
//! `--public-url http://localhost:PORT` (RP ID `localhost`).
//!
//! As a person would: log in with the password, add a passkey on `/account/security`
//! (named, its recovery codes shown once); the password-only session cannot remove it
//! without a code (the step-up rule), and removes it with a recovery code typed in the
//! section's field; add it again (nothing asked once no factor is left), set up an
//! authenticator app next to it with a recovery code typed into the set-up form, log out, "Sign in with a passkey" without a
//! username, rename it, and log in with the password again, where `/login/mfa` now asks
//! for the second step: "Use a passkey". Then what must be refused: a copy of the key whose signature
//! counter is behind the server's (refused, logged, and the passkey page says so), and
//! the same data served under another public URL (`other.localhost`): the browser does
//! not offer the `localhost` credential there, and the key moved there by hand is refused
//! by the server, since it was registered for another RP ID. Last, the passkey is removed
//! and signs in no more.
//!
//! Screenshots of each step go to `target/browser-artifacts/passkeys-*.png`.

use std::path::Path;

use anyhow::{Context as _, ensure};
use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use super::forward_auth::serve_on;
use super::{
    CHROMEDRIVER, CHROMIUM, Served, add_user, clear_artifacts, free_port, generated_password, have,
    in_chromium, log_in, screenshot, see,
};

const CASE: &str = "passkeys";
const USER: &str = "dana";

/// A WebDriver extension command of the Web Authentication spec
/// (`/session/{id}/webauthn/…`).
#[derive(Debug)]
struct WebAuthn {
    method: Method,
    path: String,
    body: Option<Value>,
}

impl WebDriverCompatibleCommand for WebAuthn {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/webauthn/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}

async fn webauthn(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    client
        .issue_cmd(WebAuthn {
            method,
            path: path.to_owned(),
            body,
        })
        .await
        .with_context(|| format!("webauthn/{path}"))
}

/// A virtual platform authenticator, as a phone or laptop has; its id.
async fn add_authenticator(client: &Client) -> anyhow::Result<String> {
    let id = webauthn(
        client,
        Method::POST,
        "authenticator",
        Some(json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        })),
    )
    .await?;
    id.as_str()
        .map(str::to_owned)
        .with_context(|| format!("authenticator id: {id}"))
}

/// The authenticator's one credential (with its private key, as the spec's endpoint gives).
async fn only_credential(client: &Client, authenticator: &str) -> anyhow::Result<Value> {
    let all = webauthn(
        client,
        Method::GET,
        &format!("authenticator/{authenticator}/credentials"),
        None,
    )
    .await?;
    let all = all.as_array().context("credentials")?;
    ensure!(all.len() == 1, "credentials: {all:?}");
    Ok(all[0].clone())
}

/// Replace the authenticator's credential with `credential` (the same key, changed).
async fn replace_credential(
    client: &Client,
    authenticator: &str,
    credential: &Value,
) -> anyhow::Result<()> {
    let id = credential["credentialId"]
        .as_str()
        .context("credentialId")?;
    webauthn(
        client,
        Method::DELETE,
        &format!("authenticator/{authenticator}/credentials/{id}"),
        None,
    )
    .await?;
    let mut added = json!({});
    for field in [
        "credentialId",
        "isResidentCredential",
        "rpId",
        "privateKey",
        "userHandle",
        "signCount",
    ] {
        added[field] = credential[field].clone();
    }
    webauthn(
        client,
        Method::POST,
        &format!("authenticator/{authenticator}/credential"),
        Some(added),
    )
    .await?;
    Ok(())
}

/// The home page's logout button.
async fn log_out(client: &Client, base: &str) -> anyhow::Result<()> {
    client.goto(&format!("{base}/")).await?;
    client
        .find(Locator::Css("form[action='/logout'] button[type=submit]"))
        .await?
        .click()
        .await?;
    see(client, "You are not logged in").await
}

/// The login page's "Sign in with a passkey".
async fn passkey_button(client: &Client, base: &str) -> anyhow::Result<()> {
    client.goto(&format!("{base}/login")).await?;
    let button = client
        .wait()
        .at_most(super::PATIENCE)
        .for_element(Locator::Css("[data-passkey-login]:not([hidden])"))
        .await
        .context("no visible passkey button")?;
    ensure!(
        button.text().await? == "Sign in with a passkey",
        "the button says {:?}",
        button.text().await?
    );
    button.click().await?;
    Ok(())
}

/// `serve` on a free port with `--public-url http://HOST:PORT` over `data`.
fn serve_public(dir: &Path, data: &Path, host: &str) -> (Served, String) {
    for _ in 0..3 {
        let port = free_port();
        let base = format!("http://{host}:{port}");
        if let Some(served) = serve_on(dir, data, port, &["--public-url", &base]) {
            return (served, base);
        }
    }
    panic!("serve did not start on a free port three times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_register_sign_in_and_refuse_what_they_must() {
    if !have(&[CHROMIUM, CHROMEDRIVER]) {
        return;
    }
    clear_artifacts(CASE);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, base) = serve_public(dir.path(), &data, "localhost");
    assert!(server.log().contains("passkeys are on"), "{}", server.log());
    let password = generated_password();
    add_user(dir.path(), &data, USER, &password);
    let server = std::sync::Mutex::new(server);
    let other = std::sync::Mutex::new(None::<Served>);
    in_chromium(
        CASE,
        dir.path(),
        false,
        async |client| {
            let authenticator = add_authenticator(client).await?;

            // Log in with the password; add a passkey.
            client.goto(&format!("{base}/login")).await?;
            log_in(client, USER, &password).await?;
            see(client, &format!("Logged in as {USER}")).await?;
            client.goto(&format!("{base}/account/security")).await?;
            see(client, "You have no passkeys yet.").await?;
            let codes = add_laptop(client).await?;

            // The password-only session now needs a code to remove it (or add another):
            // refused without one, done with a recovery code typed in the section's field.
            client
                .find(Locator::Css("[data-passkey-remove]"))
                .await?
                .click()
                .await?;
            see(client, "This change needs a current code").await?;
            client
                .find(Locator::Css("[data-passkey-code]"))
                .await?
                .send_keys(&codes[0])
                .await?;
            client
                .find(Locator::Css("[data-passkey-remove]"))
                .await?
                .click()
                .await?;
            see(client, "You have no passkeys yet.").await?;
            server.lock().unwrap().wait_for("passkey removed");
            // The authenticator forgets it too (a phone would keep a passkey its site no
            // longer knows, and offer it in vain), so that one credential is left below.
            webauthn(
                client,
                Method::DELETE,
                &format!("authenticator/{authenticator}/credentials"),
                None,
            )
            .await?;
            // The last factor gone, adding one asks for nothing again.
            ensure!(
                client
                    .find_all(Locator::Css("[data-passkey-code]"))
                    .await?
                    .is_empty(),
                "a code field without a second factor"
            );
            let codes = add_laptop(client).await?;
            // An authenticator app next to the passkey is another factor: the set-up form
            // asks this session for a code, and a recovery code shows the QR code.
            client
                .find(Locator::Id("setup-code"))
                .await
                .context("no code field on the set-up form")?
                .send_keys(&codes[0])
                .await?;
            client
                .find(Locator::XPath(
                    "//button[normalize-space()='Set up an authenticator app']",
                ))
                .await?
                .click()
                .await?;
            client
                .wait()
                .at_most(super::PATIENCE)
                .for_element(Locator::Css("figure.qr svg"))
                .await
                .context("no QR code after the step-up")?;
            screenshot(client, CASE, "totp-stepped-up.png").await?;
            let credential = only_credential(client, &authenticator).await?;
            ensure!(
                credential["rpId"] == "localhost" && credential["isResidentCredential"] == true,
                "the credential: {credential}"
            );
            // Sign in without a password.
            log_out(client, &base).await?;
            passkey_button(client, &base).await?;
            see(client, &format!("Logged in as {USER}")).await?;
            server.lock().unwrap().wait_for("passkey login succeeded");
            screenshot(client, CASE, "signed-in.png").await?;

            // Rename it.
            client.goto(&format!("{base}/account/security")).await?;
            let rename = client
                .find(Locator::Css("form[data-passkey-rename]"))
                .await?;
            let name = rename.find(Locator::Css("input[name=name]")).await?;
            name.clear().await?;
            name.send_keys("Work laptop").await?;
            rename
                .find(Locator::Css("button[type=submit]"))
                .await?
                .click()
                .await?;
            see(client, "Work laptop").await?;

            // The passkey as the second step after the password.
            log_out(client, &base).await?;
            client.goto(&format!("{base}/login")).await?;
            log_in(client, USER, &password).await?;
            see(client, "Two-step login").await?;
            client
                .wait()
                .at_most(super::PATIENCE)
                .for_element(Locator::Css("[data-passkey-mfa]:not([hidden])"))
                .await
                .context("no visible \"Use a passkey\" button")?
                .click()
                .await?;
            see(client, &format!("Logged in as {USER}")).await?;
            server.lock().unwrap().wait_for("amr=pwd hwk mfa");
            screenshot(client, CASE, "second-factor.png").await?;

            // A copy of the key whose counter is behind the server's: refused and logged.
            let stored = only_credential(client, &authenticator).await?;
            let signed = stored["signCount"].as_u64().context("signCount")?;
            ensure!(
                signed >= 1,
                "the authenticator counts its signatures: {stored}"
            );
            let mut behind = stored.clone();
            behind["signCount"] = json!(0);
            replace_credential(client, &authenticator, &behind).await?;
            log_out(client, &base).await?;
            passkey_button(client, &base).await?;
            see(client, "The passkey could not be verified.").await?;
            server
                .lock()
                .unwrap()
                .wait_for("signature counter went backwards");
            screenshot(client, CASE, "counter-refused.png").await?;
            // The genuine key, ahead of it, still signs in; the page shows the warning.
            let mut ahead = stored.clone();
            ahead["signCount"] = json!(signed + 10);
            replace_credential(client, &authenticator, &ahead).await?;
            passkey_button(client, &base).await?;
            see(client, &format!("Logged in as {USER}")).await?;
            client.goto(&format!("{base}/account/security")).await?;
            see(client, "its signature counter went backwards").await?;
            screenshot(client, CASE, "counter-warning.png").await?;

            // The same accounts under another public URL, so another RP ID.
            let (moved, other_base) = serve_public(dir.path(), &data, "other.localhost");
            ensure!(
                moved.log().contains("rp_id=\"other.localhost\""),
                "passkeys at other.localhost:\n{}",
                moved.log()
            );
            *other.lock().unwrap() = Some(moved);
            passkey_button(client, &other_base).await?;
            // The browser offers no `localhost` credential to `other.localhost`.
            see(client, "cancelled or timed out").await?;
            // The key moved there by hand: the server refuses it.
            let mut moved_key = ahead.clone();
            moved_key["rpId"] = json!("other.localhost");
            moved_key["signCount"] = json!(signed + 20);
            replace_credential(client, &authenticator, &moved_key).await?;
            passkey_button(client, &other_base).await?;
            see(client, "The passkey could not be verified.").await?;
            other
                .lock()
                .unwrap()
                .as_ref()
                .context("the second server")?
                .wait_for("a passkey registered for another RP ID was refused");
            screenshot(client, CASE, "other-rp-refused.png").await?;
            replace_credential(client, &authenticator, &ahead).await?;

            // Remove it: it signs in no more.
            client.goto(&format!("{base}/account/security")).await?;
            client
                .find(Locator::Css("[data-passkey-remove]"))
                .await?
                .click()
                .await?;
            see(client, "You have no passkeys yet.").await?;
            log_out(client, &base).await?;
            passkey_button(client, &base).await?;
            see(client, "The passkey could not be verified.").await?;
            screenshot(client, CASE, "removed.png").await?;
            Ok(())
        },
        || {
            let mut logs = format!("server log:\n{}", server.lock().unwrap().log());
            if let Some(other) = other.lock().unwrap().as_ref() {
                logs.push_str(&format!("\nother.localhost server log:\n{}", other.log()));
            }
            logs
        },
    )
    .await;
}

/// "Add a passkey" named Laptop on the security page; the ten recovery codes it shows,
/// then "I have saved them".
async fn add_laptop(client: &fantoccini::Client) -> anyhow::Result<Vec<String>> {
    let form = client
        .find(Locator::Css("form[data-passkey-register]:not([hidden])"))
        .await?;
    form.find(Locator::Id("passkey-name"))
        .await?
        .send_keys("Laptop")
        .await?;
    form.find(Locator::Css("button[type=submit]"))
        .await?
        .click()
        .await?;
    client
        .wait()
        .at_most(super::PATIENCE)
        .for_element(Locator::Css("[data-passkey-codes]:not([hidden]) li code"))
        .await
        .context("the recovery codes never appeared")?;
    let mut codes = Vec::new();
    for code in client
        .find_all(Locator::Css("[data-passkey-codes] li code"))
        .await?
    {
        codes.push(code.text().await?);
    }
    ensure!(codes.len() == 10, "{} recovery codes shown", codes.len());
    screenshot(client, CASE, "registered.png").await?;
    client
        .find(Locator::LinkText("I have saved them"))
        .await?
        .click()
        .await?;
    see(client, "Laptop").await?;
    Ok(codes)
}
