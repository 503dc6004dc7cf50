//! Passkeys over the JSON API, in process, with the engine's software authenticator
//! (`countersign::mfa::passkey::soft`) answering the options the server hands out: a
//! passkey registered with a bearer token, listed, renamed, used for a passwordless token
//! login and as the second step after `mfa_required`, removed; and what a client can get
//! wrong (4xx, never 5xx). The browser's side is `tests/it/browser/passkeys.rs`.

use countersign::mfa::passkey::soft::SoftAuthenticator;

use super::*;

const ORIGIN: &str = "https://auth.example.test";

fn with_public_url() -> Server {
    Server::with(|c| c.public_urls = vec![ORIGIN.to_owned()])
}

async fn call(s: &Server, method: Method, path: &str, token: Option<&str>, body: &Value) -> Resp {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    s.send(request.body(Body::from(body.to_string())).unwrap())
        .await
}

fn amr(me: &Resp) -> Vec<String> {
    me.json()["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn register_sign_in_and_second_step_over_the_api() {
    let s = with_public_url();
    s.add_user("alice", "user").await;
    let pair = s.tokens("alice").await;
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let token = Some(access.as_str());

    let r = call(&s, Method::GET, "/api/account/passkeys", token, &json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(
        r.json(),
        json!({"enabled": true, "rp_id": "auth.example.test", "passkeys": []})
    );

    // Register.
    let mut key = SoftAuthenticator::new(ORIGIN);
    let begun = call(
        &s,
        Method::POST,
        "/api/account/passkeys/register/begin",
        token,
        &json!({}),
    )
    .await;
    assert_eq!(begun.status, StatusCode::OK, "{begun:?}");
    let begun = begun.json();
    assert_eq!(begun["expires_in"], 300);
    let credential = key.create(&begun["options"]);
    let done = call(
        &s,
        Method::POST,
        "/api/account/passkeys/register/finish",
        token,
        &json!({"state": begun["state"], "credential": credential, "name": "Key"}),
    )
    .await;
    assert_eq!(done.status, StatusCode::CREATED, "{done:?}");
    let done = done.json();
    assert_eq!(done["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(done["passkey"]["name"], "Key");
    assert_eq!(done["passkey"]["synced"], false);
    let id = done["passkey"]["id"].as_str().unwrap().to_owned();
    // The same state again: used.
    let again = call(
        &s,
        Method::POST,
        "/api/account/passkeys/register/finish",
        token,
        &json!({"state": begun["state"], "credential": credential}),
    )
    .await;
    assert_eq!(
        (again.status, again.error()),
        (StatusCode::UNAUTHORIZED, "expired")
    );

    // Rename.
    let path = format!("/api/account/passkeys/{id}");
    let r = call(&s, Method::PATCH, &path, token, &json!({"name": "YubiKey"})).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json()["passkey"]["name"], "YubiKey");
    let r = call(&s, Method::PATCH, &path, token, &json!({"name": ""})).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let r = call(
        &s,
        Method::PATCH,
        "/api/account/passkeys/nope",
        token,
        &json!({"name": "x"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Passwordless, for a token pair.
    let begun = call(
        &s,
        Method::POST,
        "/api/token/passkey/begin",
        None,
        &json!({}),
    )
    .await;
    assert_eq!(begun.status, StatusCode::OK, "{begun:?}");
    let begun = begun.json();
    let assertion = key.get(&begun["options"]);
    let r = call(
        &s,
        Method::POST,
        "/api/token/passkey",
        None,
        &json!({"state": begun["state"], "credential": assertion}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let passwordless = r.json()["access_token"].as_str().unwrap().to_owned();
    let me = s.bearer(Method::GET, "/api/me", &passwordless).await;
    assert_eq!(amr(&me), ["hwk", "mfa"]);

    // The password now asks for the second step, which the passkey answers.
    let r = s
        .post_json("/api/token", &json!({"username": "alice", "password": PW}))
        .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "mfa_required"),
        "{r:?}"
    );
    let challenge = r.json();
    assert!(
        challenge["methods"]
            .as_array()
            .unwrap()
            .contains(&json!("webauthn")),
        "{challenge}"
    );
    let mfa_token = challenge["mfa_token"].clone();
    let begun = call(
        &s,
        Method::POST,
        "/api/token/mfa/passkey/begin",
        None,
        &json!({"mfa_token": mfa_token}),
    )
    .await;
    assert_eq!(begun.status, StatusCode::OK, "{begun:?}");
    let begun = begun.json();
    assert_eq!(
        begun["options"]["publicKey"]["allowCredentials"][0]["id"],
        json!(id)
    );
    // A key at another origin: refused, and the mfa_token survives.
    let mut phished = SoftAuthenticator::new("https://auth.example.test.evil.example");
    std::mem::swap(&mut phished.credentials, &mut key.credentials);
    let bad = phished.get(&begun["options"]);
    std::mem::swap(&mut phished.credentials, &mut key.credentials);
    let r = call(
        &s,
        Method::POST,
        "/api/token/mfa/passkey",
        None,
        &json!({"mfa_token": mfa_token, "state": begun["state"], "credential": bad}),
    )
    .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "invalid_grant"),
        "{r:?}"
    );
    let begun = call(
        &s,
        Method::POST,
        "/api/token/mfa/passkey/begin",
        None,
        &json!({"mfa_token": mfa_token}),
    )
    .await
    .json();
    let assertion = key.get(&begun["options"]);
    let r = call(
        &s,
        Method::POST,
        "/api/token/mfa/passkey",
        None,
        &json!({"mfa_token": mfa_token, "state": begun["state"], "credential": assertion}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let second = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        amr(&s.bearer(Method::GET, "/api/me", &second).await),
        ["pwd", "hwk", "mfa"]
    );
    // The mfa_token is used up.
    let r = call(
        &s,
        Method::POST,
        "/api/token/mfa/passkey/begin",
        None,
        &json!({"mfa_token": mfa_token}),
    )
    .await;
    assert_eq!((r.status, r.error()), (StatusCode::UNAUTHORIZED, "expired"));

    // With a passkey on the account, adding a factor or removing one asks the
    // password-only login for a fresh second factor; a recovery code is one.
    let codes: Vec<String> = done["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    for (method, path) in [
        (Method::POST, "/api/account/passkeys/register/begin"),
        (Method::POST, "/api/account/mfa/totp"),
        (Method::DELETE, path.as_str()),
    ] {
        let r = call(&s, method.clone(), path, token, &json!({})).await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::FORBIDDEN, "mfa_required"),
            "{method} {path}: {r:?}"
        );
        assert_eq!(r.json()["methods"], json!(["webauthn", "recovery"]));
        let r = call(
            &s,
            method.clone(),
            path,
            token,
            &json!({"code": "0000-0000-0000-0000"}),
        )
        .await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::FORBIDDEN, "mfa_required"),
            "{method} {path}: {r:?}"
        );
        assert!(r.json()["message"].as_str().unwrap().contains("not valid"));
    }
    // A second passkey, stepped up with a recovery code (used up by it).
    let mut spare = SoftAuthenticator::new(ORIGIN);
    let begun = call(
        &s,
        Method::POST,
        "/api/account/passkeys/register/begin",
        token,
        &json!({"code": codes[0]}),
    )
    .await;
    assert_eq!(begun.status, StatusCode::OK, "{begun:?}");
    let begun = begun.json();
    let credential = spare.create(&begun["options"]);
    let r = call(
        &s,
        Method::POST,
        "/api/account/passkeys/register/finish",
        token,
        &json!({"state": begun["state"], "credential": credential, "name": "Spare"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    assert!(r.json().get("recovery_codes").is_none(), "{r:?}");
    let spare_id = r.json()["passkey"]["id"].as_str().unwrap().to_owned();
    let r = call(
        &s,
        Method::POST,
        "/api/account/passkeys/register/begin",
        token,
        &json!({"code": codes[0]}),
    )
    .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "mfa_required"),
        "a recovery code steps up once: {r:?}"
    );
    // An authenticator app too, with the next recovery code.
    let r = call(
        &s,
        Method::POST,
        "/api/account/mfa/totp",
        token,
        &json!({"code": codes[1]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(
        r.json()["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://")
    );

    // Remove: the login that proved the passkey minutes ago needs no code; five
    // minutes on it does, and the code can ride in the query.
    let r = call(&s, Method::DELETE, &path, Some(&second), &json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    let r = call(&s, Method::DELETE, &path, Some(&second), &json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    s.clock.advance(301);
    let spare_path = format!("/api/account/passkeys/{spare_id}");
    let r = call(&s, Method::DELETE, &spare_path, Some(&second), &json!({})).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "mfa_required"),
        "{r:?}"
    );
    let with_code = format!("{spare_path}?code={}", codes[2]);
    let r = s.bearer(Method::DELETE, &with_code, &second).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    // The last second factor gone, nothing is asked of the password.
    let r = call(&s, Method::POST, "/api/account/mfa/totp", token, &json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[tokio::test]
async fn what_a_client_can_get_wrong_is_4xx() {
    let s = with_public_url();
    let begun = call(
        &s,
        Method::POST,
        "/api/token/passkey/begin",
        None,
        &json!({}),
    )
    .await
    .json();
    for (body, status, error) in [
        (
            json!({"state": begun["state"], "credential": {"id": 1}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"state": "junk", "credential": {"id": 1}}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"credential": {}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
    ] {
        let r = call(&s, Method::POST, "/api/token/passkey", None, &body).await;
        assert_eq!((r.status, r.error()), (status, error), "{body}: {r:?}");
    }
    // An assertion by a credential nobody registered.
    let mut stranger = SoftAuthenticator::new(ORIGIN);
    stranger.create(&json!({"publicKey": {"rp": {"id": "auth.example.test"}, "user": {"id": "AAAA"}, "challenge": "AAAA"}}));
    let assertion = stranger.get(&begun["options"]);
    let r = call(
        &s,
        Method::POST,
        "/api/token/passkey",
        None,
        &json!({"state": begun["state"], "credential": assertion}),
    )
    .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "invalid_grant"),
        "{r:?}"
    );
    // The browser route needs the page's CSRF token; the account routes a credential.
    let r = call(
        &s,
        Method::POST,
        "/api/passkey/login/begin",
        None,
        &json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    let r = call(&s, Method::GET, "/api/account/passkeys", None, &json!({})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(
        &s,
        Method::POST,
        "/login/mfa/passkey/begin",
        None,
        &json!({}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
}

#[tokio::test]
async fn without_a_public_url_passkeys_are_off() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let access = s.tokens("alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = call(
        &s,
        Method::GET,
        "/api/account/passkeys",
        Some(&access),
        &json!({}),
    )
    .await;
    assert_eq!(r.json()["enabled"], false);
    for path in [
        "/api/token/passkey/begin",
        "/api/account/passkeys/register/begin",
    ] {
        let r = call(&s, Method::POST, path, Some(&access), &json!({})).await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::NOT_FOUND, "passkeys_disabled"),
            "{path}"
        );
    }
    let page = s.get("/login").await;
    assert!(!page.body.contains("Sign in with a passkey"));
    let page = with_public_url().get("/login").await;
    assert!(page.body.contains("Sign in with a passkey"));
    assert!(page.body.contains("<script src=\"/passkeys.js\""));
    let script = s.get("/passkeys.js").await;
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(script.body.contains("navigator.credentials"));
}

#[tokio::test]
async fn the_security_page_asks_a_stale_session_for_a_code_to_add_an_app_next_to_a_passkey() {
    let s = with_public_url();
    s.add_user("alice", "user").await;
    // A browser signed in with the password alone, before the account had a passkey.
    let mut b = Browser::new();
    b.login(&s, "alice", PW).await;
    let page = b.get(&s, "/account/security").await;
    assert!(!page.body.contains(r#"id="passkey-code""#), "{}", page.body);
    assert!(!page.body.contains("setup-code"), "{}", page.body);

    // A passkey added over the API: the account now has a second factor.
    let pair = s.tokens("alice").await;
    let token = pair["access_token"].as_str().unwrap().to_owned();
    let mut key = SoftAuthenticator::new(ORIGIN);
    let begun = call(
        &s,
        Method::POST,
        "/api/account/passkeys/register/begin",
        Some(&token),
        &json!({}),
    )
    .await
    .json();
    let credential = key.create(&begun["options"]);
    let done = call(
        &s,
        Method::POST,
        "/api/account/passkeys/register/finish",
        Some(&token),
        &json!({"state": begun["state"], "credential": credential}),
    )
    .await;
    assert_eq!(done.status, StatusCode::CREATED, "{done:?}");
    let codes = done.json()["recovery_codes"].clone();

    // The page now asks for a code where a change needs one.
    let page = b.get(&s, "/account/security").await;
    assert!(page.body.contains(r#"id="passkey-code""#), "{}", page.body);
    assert!(page.body.contains(r#"id="setup-code""#), "{}", page.body);
    let used = codes[0].as_str().unwrap();
    // No code, a wrong one, a recovery code (the QR code), and that code again to start
    // over: a new enrolment asks again, and the used code no longer counts.
    for (code, status, text) in [
        (None, StatusCode::FORBIDDEN, "Enter a current code"),
        (
            Some("0000-0000-0000-0000"),
            StatusCode::FORBIDDEN,
            "not valid",
        ),
        (Some(used), StatusCode::OK, "<svg"),
        (Some(used), StatusCode::FORBIDDEN, "not valid"),
    ] {
        let fields: Vec<(&str, &str)> = code.map(|c| ("code", c)).into_iter().collect();
        let r = b
            .submit(&s, "/account/security", "/account/security/totp", &fields)
            .await;
        assert_eq!(r.status, status, "{code:?}: {r:?}");
        assert!(r.body.contains(text), "{code:?}: {}", r.body);
        if status != StatusCode::OK {
            assert!(!r.body.contains("<svg"), "no QR code without the step-up");
        }
    }
}
