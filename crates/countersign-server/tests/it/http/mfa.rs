//! Second factors over HTTP, in the default configuration: the authenticator app enrolled
//! through the API and through `/account/security`, the two-step login of the form
//! (`/login/mfa`, its challenge cookie) and of the API (`mfa_required`, `/api/token/mfa`),
//! recovery codes, step-up for removal and new codes, `amr` and `auth_time` on `/api/me`,
//! and every refusal a client can cause (4xx, never 5xx).
//!
//! TOTP codes are computed by the Python `pyotp` package from what the server showed (the
//! `otpauth://` URI, or the secret as typed), at the test clock's time
//! (`tests/it/py/totp.py`). Python is `$COUNTERSIGN_PYTHON`, else `target/pyenv/bin/python`
//! (`bash scripts/pyenv.sh` makes it); without it the engine's own TOTP stands in and the
//! test says so, except under `CI=true`, where it fails.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use countersign::mfa::totp::TotpSecret;

use super::*;

const CHALLENGE_COOKIE: &str = "__Host-countersign-mfa";

/// The venv's python with pyotp, or `None` (outside CI only).
fn python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
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
            eprintln!("pyotp missing, the engine's TOTP computes the codes: {why}");
            None
        })
        .clone()
}

/// The codes of `source` (an `otpauth://` URI or a base32 secret) at `times`.
fn codes_at(source: &str, times: &[i64]) -> Vec<String> {
    let Some(python) = python() else {
        let secret = source
            .split_once("secret=")
            .map_or(source, |(_, rest)| rest.split('&').next().unwrap());
        let secret = TotpSecret::from_base32(secret).unwrap();
        return times
            .iter()
            .map(|t| secret.code_at(6, u64::try_from(*t).unwrap()).unwrap())
            .collect();
    };
    let mut child = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/py/totp.py"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = format!("{source}\n");
    for t in times {
        input.push_str(&format!("{t}\n"));
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "totp.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let codes: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), times.len());
    assert!(codes.iter().all(|c| c.len() == 6), "{codes:?}");
    codes
}

/// The code of `source` now, on the server's clock.
fn code_now(s: &Server, source: &str) -> String {
    codes_at(source, &[s.app.engine().now().secs()]).remove(0)
}

/// A six-digit code that is not `source`'s in the current window nor either neighbour.
fn wrong_code(s: &Server, source: &str) -> String {
    let now = s.app.engine().now().secs();
    let near = codes_at(source, &[now - 30, now, now + 30]);
    (0..10)
        .map(|d| d.to_string().repeat(6))
        .find(|c| !near.contains(c))
        .unwrap()
}

/// A request with a bearer token and a JSON body.
fn bearer_json(method: Method, path: &str, token: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// Enrol `token`'s user's authenticator app through the API; the `otpauth://` URI and the
/// recovery codes.
async fn enrol_by_api(s: &Server, token: &str) -> (String, Vec<String>) {
    let r = s.bearer(Method::POST, "/api/account/mfa/totp", token).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let uri = r.json()["otpauth_uri"].as_str().unwrap().to_owned();
    let code = code_now(s, &uri);
    let r = s
        .send(bearer_json(
            Method::POST,
            "/api/account/mfa/totp/confirm",
            token,
            &json!({ "code": code }),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let codes = r.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (uri, codes)
}

/// `POST /api/token` for `name`, expected to ask for the second step: the `mfa_token`.
async fn mfa_token(s: &Server, name: &str) -> String {
    let r = s
        .post_json("/api/token", &json!({"username": name, "password": PW}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    assert_eq!(r.error(), "mfa_required");
    r.json()["mfa_token"].as_str().unwrap().to_owned()
}

async fn token_mfa(s: &Server, mfa_token: &str, code: &str) -> Resp {
    s.post_json(
        "/api/token/mfa",
        &json!({ "mfa_token": mfa_token, "code": code }),
    )
    .await
}

/// The text between `start` (after it) and the next `end` in `body`.
fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let at = body
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in {body}"))
        + start.len();
    &body[at..at + body[at..].find(end).unwrap()]
}

/// The recovery codes a page shows.
fn page_codes(body: &str) -> Vec<String> {
    between(body, "data-recovery-codes>", "</ul>")
        .split("<code>")
        .skip(1)
        .map(|c| c.split("</code>").next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_api_enrols_an_app_and_token_logins_then_need_a_code() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let pair = s.tokens("alice").await;
    let token = pair["access_token"].as_str().unwrap();

    let status = s.bearer(Method::GET, "/api/account/mfa", token).await;
    assert_eq!(status.status, StatusCode::OK, "{status:?}");
    assert_eq!(status.json()["enrolled"], false);
    assert_eq!(status.json()["methods"], json!([]));
    // A password login says so on /api/me.
    let me = s.bearer(Method::GET, "/api/me", token).await.json();
    assert_eq!(me["amr"], json!(["pwd"]));
    assert_eq!(me["auth_time"], json!(T0));

    // Start, refuse bad confirmations, confirm.
    let r = s.bearer(Method::POST, "/api/account/mfa/totp", token).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let enrolment = r.json();
    let uri = enrolment["otpauth_uri"].as_str().unwrap().to_owned();
    assert!(
        uri.starts_with("otpauth://totp/countersign:alice?"),
        "{uri}"
    );
    let secret = enrolment["secret"].as_str().unwrap();
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    // pyotp reads the URI and the bare secret alike.
    assert_eq!(code_now(&s, &uri), code_now(&s, secret));
    let pending = s
        .bearer(Method::GET, "/api/account/mfa", token)
        .await
        .json();
    assert_eq!(pending["totp"]["pending"], true);
    assert_eq!(pending["enrolled"], false);
    // Not yet a second factor: the password alone still logs in.
    s.tokens("alice").await;

    let confirm = |body: Value| {
        s.send(bearer_json(
            Method::POST,
            "/api/account/mfa/totp/confirm",
            token,
            &body,
        ))
    };
    let r = confirm(json!({ "code": wrong_code(&s, &uri) })).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "invalid_code")
    );
    let r = confirm(json!({ "code": "" })).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let r = confirm(json!({ "code": "1".repeat(65) })).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let r = confirm(json!({})).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let r = confirm(json!({ "code": 123_456 })).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{r:?}");
    let first = code_now(&s, &uri);
    let r = confirm(json!({ "code": first })).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let codes = r.json()["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(codes.len(), 10);
    // Enrolled: no second enrolment, nothing left to confirm.
    let r = s.bearer(Method::POST, "/api/account/mfa/totp", token).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::CONFLICT, "already_enrolled")
    );
    let r = confirm(json!({ "code": code_now(&s, &uri) })).await;
    assert_eq!((r.status, r.error()), (StatusCode::CONFLICT, "not_pending"));
    let status = s
        .bearer(Method::GET, "/api/account/mfa", token)
        .await
        .json();
    assert_eq!(status["enrolled"], true);
    assert_eq!(status["methods"], json!(["totp", "recovery"]));
    assert_eq!(status["recovery_codes"]["left"], 10);

    // The password alone now gets a challenge, not tokens.
    let r = s
        .post_json("/api/token", &json!({"username": "alice", "password": PW}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    let body = r.json();
    assert_eq!(body["error"], "mfa_required");
    assert_eq!(body["methods"], json!(["totp", "recovery"]));
    assert_eq!(body["expires_in"], 300);
    assert!(body.get("access_token").is_none());
    let challenge = body["mfa_token"].as_str().unwrap().to_owned();
    // The mfa_token is no bearer token.
    let r = s.bearer(Method::GET, "/api/me", &challenge).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    // The code that confirmed the app was used: its step cannot log in.
    let r = token_mfa(&s, &challenge, &first).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "invalid_grant")
    );

    s.clock.advance(30);
    let next = code_now(&s, &uri);
    let r = token_mfa(&s, &challenge, &next).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let pair = r.json();
    let access = pair["access_token"].as_str().unwrap();
    let me = s.bearer(Method::GET, "/api/me", access).await.json();
    assert_eq!(me["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(me["auth_time"], json!(T0 + 30));
    // Used once.
    s.clock.advance(30);
    let r = token_mfa(&s, &challenge, &code_now(&s, &uri)).await;
    assert_eq!((r.status, r.error()), (StatusCode::UNAUTHORIZED, "expired"));
    // A refreshed token says the same.
    let r = s
        .post_json(
            "/api/token/refresh",
            &json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let refreshed = r.json()["access_token"].as_str().unwrap().to_owned();
    let me = s.bearer(Method::GET, "/api/me", &refreshed).await.json();
    assert_eq!(me["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(me["auth_time"], json!(T0 + 30));
}

#[tokio::test]
async fn token_mfa_refuses_every_bad_input_with_a_4xx() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let pair = s.tokens("alice").await;
    let (uri, _) = enrol_by_api(&s, pair["access_token"].as_str().unwrap()).await;
    let challenge = mfa_token(&s, "alice").await;
    s.clock.advance(30);
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"mfa_token": "", "code": "123456"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"mfa_token": "x", "code": "123456"}),
            StatusCode::UNAUTHORIZED,
            "expired",
        ),
        (
            json!({"mfa_token": "A".repeat(5000), "code": "123456"}),
            StatusCode::UNAUTHORIZED,
            "expired",
        ),
        (
            json!({"mfa_token": challenge, "code": ""}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"mfa_token": challenge, "code": "9".repeat(100)}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            json!({"mfa_token": challenge}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"code": "123456"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"mfa_token": 1, "code": 2}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            json!({"mfa_token": challenge, "code": "not a code"}),
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
        ),
    ];
    for (body, status, error) in cases {
        let r = s.post_json("/api/token/mfa", &body).await;
        assert_eq!((r.status, r.error()), (status, error), "{body}: {r:?}");
    }
    let r = s
        .send(
            Request::post("/api/token/mfa")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("x"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{r:?}");
    let r = s
        .send(
            Request::post("/api/token/mfa")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{not json"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
    // A form works as JSON does, and the challenge survived the failures above.
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("mfa_token", &challenge)
        .append_pair("code", &code_now(&s, &uri))
        .finish();
    let r = s
        .send(
            Request::post("/api/token/mfa")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[tokio::test]
async fn wrong_codes_are_throttled_like_passwords() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let pair = s.tokens("alice").await;
    let (uri, _) = enrol_by_api(&s, pair["access_token"].as_str().unwrap()).await;
    let challenge = mfa_token(&s, "alice").await;
    let wrong = wrong_code(&s, &uri);
    let mut throttled = None;
    for _ in 0..20 {
        let r = token_mfa(&s, &challenge, &wrong).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(r);
            break;
        }
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::UNAUTHORIZED, "invalid_grant")
        );
    }
    let r = throttled.expect("never throttled");
    assert_eq!(r.error(), "too_many_requests");
    assert!(
        r.header("retry-after")
            .is_some_and(|v| v.parse::<u64>().unwrap() > 0)
    );
}

#[tokio::test]
async fn the_right_password_does_not_reset_the_count_of_wrong_codes() {
    // Someone who knows the password, guessing codes: a successful password step between
    // rounds of guesses must not give the guesses a fresh budget.
    let s = Server::new();
    s.add_user("alice", "user").await;
    let pair = s.tokens("alice").await;
    let (uri, _) = enrol_by_api(&s, pair["access_token"].as_str().unwrap()).await;
    let wrong = wrong_code(&s, &uri);
    let mut throttled = None;
    'rounds: for _ in 0..20 {
        let challenge = mfa_token(&s, "alice").await;
        for _ in 0..2 {
            let r = token_mfa(&s, &challenge, &wrong).await;
            if r.status == StatusCode::TOO_MANY_REQUESTS {
                throttled = Some(r);
                break 'rounds;
            }
            assert_eq!(
                (r.status, r.error()),
                (StatusCode::UNAUTHORIZED, "invalid_grant")
            );
        }
    }
    let r = throttled.expect("wrong codes between right passwords were never throttled");
    assert_eq!(r.error(), "too_many_requests");
    // The right code is refused too until the window ends, as a password is.
    let r = token_mfa(&s, &mfa_token(&s, "alice").await, &code_now(&s, &uri)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    s.clock.advance(3600);
    let r = token_mfa(&s, &mfa_token(&s, "alice").await, &code_now(&s, &uri)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
}

#[tokio::test]
async fn a_recovery_code_logs_in_once_and_is_listed() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let pair = s.tokens("alice").await;
    let token = pair["access_token"].as_str().unwrap().to_owned();
    let (_, codes) = enrol_by_api(&s, &token).await;
    let typed = codes[4].to_uppercase().replace('-', " ");
    let r = token_mfa(&s, &mfa_token(&s, "alice").await, &typed).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let access = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.bearer(Method::GET, "/api/me", &access).await.json()["amr"],
        json!(["pwd", "otp", "mfa"])
    );
    let r = token_mfa(&s, &mfa_token(&s, "alice").await, &codes[4]).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "invalid_grant")
    );
    let status = s
        .bearer(Method::GET, "/api/account/mfa", &token)
        .await
        .json();
    assert_eq!(status["recovery_codes"]["left"], 9);
    assert_eq!(status["recovery_codes"]["total"], 10);
    assert_eq!(
        status["recovery_codes"]["used"],
        json!([{ "used_at": countersign_server::display::rfc3339(UnixTime(T0)) }])
    );
}

#[tokio::test]
async fn removal_and_new_codes_need_a_fresh_second_factor() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    // A password-only token: every sensitive change asks for a code.
    let pair = s.tokens("alice").await;
    let token = pair["access_token"].as_str().unwrap().to_owned();
    // Nothing to remove or back up yet.
    let r = s
        .bearer(Method::DELETE, "/api/account/mfa/totp", &token)
        .await;
    assert_eq!((r.status, r.error()), (StatusCode::NOT_FOUND, "not_found"));
    let r = s
        .bearer(Method::POST, "/api/account/mfa/recovery-codes", &token)
        .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::CONFLICT, "not_enrolled")
    );

    let (uri, old_codes) = enrol_by_api(&s, &token).await;
    s.clock.advance(30);
    for (method, path) in [
        (Method::DELETE, "/api/account/mfa/totp"),
        (Method::POST, "/api/account/mfa/recovery-codes"),
    ] {
        let r = s.bearer(method.clone(), path, &token).await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::FORBIDDEN, "mfa_required"),
            "{r:?}"
        );
        assert_eq!(r.json()["methods"], json!(["totp", "recovery"]));
        let wrong = json!({ "code": wrong_code(&s, &uri) });
        let r = s
            .send(bearer_json(method.clone(), path, &token, &wrong))
            .await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::FORBIDDEN, "mfa_required"),
            "{r:?}"
        );
        assert!(r.json()["message"].as_str().unwrap().contains("not valid"));
        let long = json!({ "code": "1".repeat(65) });
        let r = s
            .send(bearer_json(method.clone(), path, &token, &long))
            .await;
        assert_eq!(
            (r.status, r.error()),
            (StatusCode::BAD_REQUEST, "invalid_request")
        );
        let r = s
            .send(
                Request::builder()
                    .method(method.clone())
                    .uri(path)
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .header(header::CONTENT_TYPE, "text/plain")
                    .body(Body::from("code"))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{r:?}");
        // No credentials at all: refused by the CSRF guard or the extractor.
        let r = s
            .send(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert!(
            matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
            "{r:?}"
        );
    }

    // New codes with a code in the body: the old set stops working.
    let r = s
        .send(bearer_json(
            Method::POST,
            "/api/account/mfa/recovery-codes",
            &token,
            &json!({ "code": code_now(&s, &uri) }),
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let fresh_codes = r.json()["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(fresh_codes.len(), 10);
    let r = token_mfa(&s, &mfa_token(&s, "alice").await, &old_codes[0]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");

    // A login with a second factor may change things for five minutes without a code.
    let r = token_mfa(
        &s,
        &mfa_token(&s, "alice").await,
        fresh_codes[0].as_str().unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let strong = r.json()["access_token"].as_str().unwrap().to_owned();
    let status = s
        .bearer(Method::GET, "/api/account/mfa", &strong)
        .await
        .json();
    assert_eq!(status["fresh"], true);
    s.clock.advance(301);
    let r = s
        .bearer(Method::DELETE, "/api/account/mfa/totp", &strong)
        .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "mfa_required"),
        "{r:?}"
    );
    let r = token_mfa(
        &s,
        &mfa_token(&s, "alice").await,
        fresh_codes[1].as_str().unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let strong = r.json()["access_token"].as_str().unwrap().to_owned();
    let r = s
        .bearer(Method::POST, "/api/account/mfa/recovery-codes", &strong)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");

    // Removal with the code as a query parameter; the recovery codes go with the app.
    s.clock.advance(30);
    let path = format!("/api/account/mfa/totp?code={}", code_now(&s, &uri));
    let r = s.bearer(Method::DELETE, &path, &token).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json(), json!({"removed": true, "methods": []}));
    let status = s
        .bearer(Method::GET, "/api/account/mfa", &token)
        .await
        .json();
    assert_eq!(status["enrolled"], false);
    assert_eq!(status["recovery_codes"]["total"], 0);
    // The password is the whole login again.
    s.tokens("alice").await;
}

#[tokio::test]
async fn session_api_calls_need_the_csrf_token() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    b.login(&s, "alice", PW).await;
    // Without the token: refused before anything starts.
    let request = b
        .request(Method::POST, "/api/account/mfa/totp")
        .header(header::ORIGIN, "http://localhost")
        .body(Body::empty())
        .unwrap();
    let r = b.go(&s, request).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "csrf_failed")
    );
    // With it.
    let r = b.api(&s, Method::POST, "/api/account/mfa/totp").await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let r = b.api(&s, Method::GET, "/api/account/mfa").await;
    assert_eq!(r.json()["totp"]["pending"], true);
    let me = b.get(&s, "/api/me").await.json();
    assert_eq!(me["amr"], json!(["pwd"]));
    assert_eq!(me["auth_time"], json!(T0));
}

/// Enrol `b`'s user on `/account/security` as a person would; the secret as shown and the
/// recovery codes.
async fn enrol_on_the_page(s: &Server, b: &mut Browser) -> (String, Vec<String>) {
    let page = b.get(s, "/account/security").await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    assert!(
        page.body.contains("data-totp-status=\"none\""),
        "{}",
        page.body
    );
    let r = b
        .submit(s, "/account/security", "/account/security/totp", &[])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(r.body.contains("<svg"), "the QR code is inline");
    assert!(!r.body.contains("<?xml"), "no XML declaration inside HTML");
    let secret = between(&r.body, "data-totp-secret>", "</code>").replace(' ', "");
    assert!(r.body.contains("action=\"/account/security/totp/confirm\""));
    // A wrong code: the form again.
    let wrong = wrong_code(s, &secret);
    let r = b
        .submit(
            s,
            "/account/security",
            "/account/security/totp/confirm",
            &[("code", &wrong)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    assert!(r.body.contains("That code is not valid"));
    assert!(r.body.contains("action=\"/account/security/totp/confirm\""));
    let r = b
        .submit(
            s,
            "/account/security",
            "/account/security/totp/confirm",
            &[("code", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{r:?}");
    // Typed with a space, as people copy it.
    let code = code_now(s, &secret);
    let typed = format!("{} {}", &code[..3], &code[3..]);
    let r = b
        .submit(
            s,
            "/account/security",
            "/account/security/totp/confirm",
            &[("code", &typed)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let codes = page_codes(&r.body);
    assert_eq!(codes.len(), 10, "{}", r.body);
    // Shown once: the page after it does not show them.
    let page = b.get(s, "/account/security").await;
    assert!(page.body.contains("data-totp-status=\"enrolled\""));
    assert!(!page.body.contains(&codes[0]));
    assert!(page.body.contains("data-recovery-left=\"10\""));
    (secret, codes)
}

#[tokio::test]
async fn a_form_login_with_an_app_takes_two_steps() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    b.login(&s, "alice", PW).await;
    let (secret, _) = enrol_on_the_page(&s, &mut b).await;
    b.submit(&s, "/", "/logout", &[]).await;
    assert!(b.session().is_none());

    // The password: no session, the challenge cookie and the second step.
    let r = b.login(&s, "alice", PW).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(r.header("location"), Some("/login/mfa"));
    assert!(r.cookie(SESSION).is_none(), "{r:?}");
    let set = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with(CHALLENGE_COOKIE))
        .unwrap()
        .to_owned();
    for attr in [
        "Path=/",
        "Max-Age=300",
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
    ] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    let challenge = b.jar[CHALLENGE_COOKIE].clone();

    // Half logged in is not logged in.
    assert_grants_nothing(&s, &mut b, &challenge).await;

    let form = b.get(&s, "/login/mfa").await;
    assert_eq!(form.status, StatusCode::OK, "{form:?}");
    assert!(form.body.contains("action=\"/login/mfa\""));
    assert!(form.body.contains("autocomplete=\"one-time-code\""));
    let r = b
        .submit(&s, "/login/mfa", "/login/mfa", &[("code", "")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{r:?}");
    let wrong = wrong_code(&s, &secret);
    let r = b
        .submit(&s, "/login/mfa", "/login/mfa", &[("code", &wrong)])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    assert!(r.body.contains("That code is not valid"));
    assert!(b.session().is_none());
    // The code that confirmed the app is spent; the next window's works.
    s.clock.advance(30);
    let code = code_now(&s, &secret);
    let r = b
        .submit(&s, "/login/mfa", "/login/mfa", &[("code", &code)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(r.header("location"), Some("/"));
    assert!(b.session().is_some());
    assert!(
        !b.jar.contains_key(CHALLENGE_COOKIE),
        "the challenge cookie is deleted"
    );
    let me = b.get(&s, "/api/me").await.json();
    assert_eq!(me["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(me["auth_time"], json!(T0 + 30));
    assert!(b.get(&s, "/").await.body.contains("Logged in as alice"));

    // Replaying the used challenge: back to the password, with a fresh code and the
    // login page's CSRF token.
    let mut replay = Browser::new();
    replay
        .jar
        .insert(CHALLENGE_COOKIE.to_owned(), challenge.clone());
    let r = replay.get(&s, "/login/mfa").await;
    assert_eq!(r.header("location"), Some("/login?mfa=expired"), "{r:?}");
    // (The answer deleted the cookie; a replaying client sends it anyway.)
    replay.jar.insert(CHALLENGE_COOKIE.to_owned(), challenge);
    s.clock.advance(30);
    let code = code_now(&s, &secret);
    let r = replay
        .submit(&s, "/login", "/login/mfa", &[("code", &code)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(r.header("location"), Some("/login?mfa=expired"));
    assert!(replay.session().is_none());
}

/// The challenge cookie (and its value in any other place) reaches nothing.
async fn assert_grants_nothing(s: &Server, b: &mut Browser, challenge: &str) {
    for path in ["/protected", "/api/me", "/api/sessions", "/api/account/mfa"] {
        let r = b.get(s, path).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {r:?}");
    }
    let r = b.get(s, "/").await;
    assert!(r.body.contains("You are not logged in"), "{r:?}");
    let r = b.get(s, "/account/security").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = b.get(s, "/account/sessions").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // As a bearer token, or as a session cookie.
    let r = s.bearer(Method::GET, "/protected", challenge).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    let r = s
        .send(
            Request::get("/protected")
                .header(header::COOKIE, format!("{SESSION}={challenge}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    // Forward authentication does not take it either.
    let r = b.get(s, "/auth/request").await;
    assert!(r.status.is_client_error(), "{r:?}");
    assert!(r.header("remote-user").is_none());
    // Nor does the second step without its form's token.
    let request = b.form("/login/mfa", &[("code", "123456")]);
    let r = b.go(s, request).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
}

#[tokio::test]
async fn the_second_step_keeps_the_return_url_and_takes_a_recovery_code_once() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    b.login(&s, "alice", PW).await;
    let (_, codes) = enrol_on_the_page(&s, &mut b).await;
    b.submit(&s, "/", "/logout", &[]).await;

    let r = b
        .submit(
            &s,
            "/login?rd=/account/sessions",
            "/login",
            &[
                ("username", "alice"),
                ("password", PW),
                ("rd", "/account/sessions"),
            ],
        )
        .await;
    assert_eq!(
        r.header("location"),
        Some("/login/mfa?rd=%2Faccount%2Fsessions")
    );
    let form = b.get(&s, "/login/mfa?rd=%2Faccount%2Fsessions").await;
    assert!(
        form.body
            .contains("name=\"rd\" value=\"/account/sessions\""),
        "{}",
        form.body
    );
    let r = b
        .submit(
            &s,
            "/login/mfa?rd=%2Faccount%2Fsessions",
            "/login/mfa",
            &[("code", &codes[0]), ("rd", "/account/sessions")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(r.header("location"), Some("/account/sessions"));
    // A return URL that is not allowed is dropped on the way.
    b.submit(&s, "/", "/logout", &[]).await;
    let r = b
        .submit(
            &s,
            "/login",
            "/login",
            &[
                ("username", "alice"),
                ("password", PW),
                ("rd", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(r.header("location"), Some("/login/mfa"));
    // The same recovery code again: refused; the page shows the code as used.
    let r = b
        .submit(&s, "/login/mfa", "/login/mfa", &[("code", &codes[0])])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
    let r = b
        .submit(&s, "/login/mfa", "/login/mfa", &[("code", &codes[1])])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    let page = b.get(&s, "/account/security").await;
    assert!(
        page.body.contains("data-recovery-left=\"8\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("Codes used"));
}

#[tokio::test]
async fn the_second_step_expires() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    b.login(&s, "alice", PW).await;
    let (secret, _) = enrol_on_the_page(&s, &mut b).await;
    b.submit(&s, "/", "/logout", &[]).await;

    // No challenge at all.
    let r = b.get(&s, "/login/mfa").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/login?mfa=expired"));
    // A form without a code is refused as such, challenge or not.
    let r = b.submit(&s, "/login", "/login/mfa", &[("code", "")]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{r:?}");
    let long = "1".repeat(65);
    let r = b
        .submit(&s, "/login", "/login/mfa", &[("code", &long)])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{r:?}");

    b.login(&s, "alice", PW).await;
    let form = b.get(&s, "/login/mfa").await;
    assert_eq!(form.status, StatusCode::OK);
    let token = form.form_token();
    s.clock.advance(301);
    // The page shown before the five minutes ran out, posted after.
    let code = code_now(&s, &secret);
    let request = b.form("/login/mfa", &[("code", &code), ("csrf_token", &token)]);
    let r = b.go(&s, request).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(r.header("location"), Some("/login?mfa=expired"));
    assert!(b.session().is_none());
    assert!(
        !b.jar.contains_key(CHALLENGE_COOKIE),
        "the cookie is deleted"
    );
    let login = b.get(&s, "/login?mfa=expired").await;
    assert!(
        login.body.contains("Your two-step login expired"),
        "{}",
        login.body
    );
    // Only known notices are shown; nothing is echoed.
    let login = b.get(&s, "/login?mfa=%3Cscript%3E").await;
    assert!(!login.body.contains("<script>"));
    assert!(!login.body.contains("expired"));

    // An expired challenge seen by the form page too.
    b.login(&s, "alice", PW).await;
    s.clock.advance(301);
    let r = b.get(&s, "/login/mfa").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // A disabled account's challenge dies at once.
    b.login(&s, "alice", PW).await;
    let user = s.app.engine().user_by_name("alice").await.unwrap().unwrap();
    s.app.engine().disable_user(user.id).await.unwrap();
    let r = b.get(&s, "/login/mfa").await;
    assert_eq!(r.header("location"), Some("/login?mfa=expired"));
}

#[tokio::test]
async fn the_security_page_asks_for_a_code_to_remove_or_renew() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    // Anonymous: to the login page, coming back here.
    let r = b.get(&s, "/account/security").await;
    assert_eq!(r.header("location"), Some("/login?rd=/account/security"));
    for path in [
        "/account/security/totp",
        "/account/security/totp/confirm",
        "/account/security/totp/remove",
        "/account/security/recovery-codes",
    ] {
        let request = b.form(path, &[]);
        let r = b.go(&s, request).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{path} without a token: {r:?}"
        );
    }
    b.login(&s, "alice", PW).await;
    // Nothing to confirm, remove or back up yet.
    let r = b
        .submit(
            &s,
            "/account/security",
            "/account/security/totp/confirm",
            &[("code", "123456")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
    let r = b
        .submit(
            &s,
            "/account/security",
            "/account/security/totp/remove",
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{r:?}");
    let r = b
        .submit(
            &s,
            "/account/security",
            "/account/security/recovery-codes",
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
    let (secret, codes) = enrol_on_the_page(&s, &mut b).await;
    // Enrolled: starting again is refused.
    let r = b
        .submit(&s, "/account/security", "/account/security/totp", &[])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
    // A password session: the forms ask for a code.
    let page = b.get(&s, "/account/security").await;
    assert!(page.body.contains("id=\"remove-code\""));
    assert!(page.body.contains("id=\"regenerate-code\""));
    let every_form_has_the_token = page.body.matches("method=\"post\"").count()
        == page.body.matches("name=\"csrf_token\"").count();
    assert!(every_form_has_the_token, "{}", page.body);
    let r = b
        .submit(
            &s,
            "/account/security",
            "/account/security/totp/remove",
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    assert!(r.body.contains("Enter a current code"));
    let wrong = wrong_code(&s, &secret);
    let r = b
        .submit(
            &s,
            "/account/security",
            "/account/security/recovery-codes",
            &[("code", &wrong)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    assert!(r.body.contains("not valid"));
    let long = "1".repeat(65);
    for action in [
        "/account/security/totp/remove",
        "/account/security/recovery-codes",
    ] {
        let r = b
            .submit(&s, "/account/security", action, &[("code", &long)])
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{action}: {r:?}"
        );
    }
    // New codes with a recovery code: the page shows ten new ones.
    let r = b
        .submit(
            &s,
            "/account/security",
            "/account/security/recovery-codes",
            &[("code", &codes[9])],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let renewed = page_codes(&r.body);
    assert_eq!(renewed.len(), 10);
    assert!(!renewed.contains(&codes[0]));
    // Remove with the app's code: back to the page, which says so.
    s.clock.advance(30);
    let code = code_now(&s, &secret);
    let r = b
        .submit(
            &s,
            "/account/security",
            "/account/security/totp/remove",
            &[("code", &code)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some("/account/security?done=totp-removed")
    );
    let page = b.get(&s, "/account/security?done=totp-removed").await;
    assert!(page.body.contains("The authenticator app was removed."));
    assert!(page.body.contains("data-totp-status=\"none\""));
    assert!(page.body.contains("data-recovery-left=\"0\""));
    // Unreadable forms are 400, not 500.
    let token = b.csrf(&s).await;
    let request = b
        .request(Method::POST, "/account/security/totp/remove")
        .header(header::ORIGIN, "http://localhost")
        .header("sec-fetch-site", "same-origin")
        .header("x-csrf-token", token)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let r = b.go(&s, request).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}");
}

#[tokio::test]
async fn a_fresh_second_factor_skips_the_code_for_five_minutes() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    b.login(&s, "alice", PW).await;
    let (secret, _) = enrol_on_the_page(&s, &mut b).await;
    b.submit(&s, "/", "/logout", &[]).await;
    b.login(&s, "alice", PW).await;
    s.clock.advance(30);
    let code = code_now(&s, &secret);
    b.submit(&s, "/login/mfa", "/login/mfa", &[("code", &code)])
        .await;
    let page = b.get(&s, "/account/security").await;
    assert!(!page.body.contains("id=\"remove-code\""), "no code asked");
    let r = b
        .submit(
            &s,
            "/account/security",
            "/account/security/recovery-codes",
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    s.clock.advance(301);
    let page = b.get(&s, "/account/security").await;
    assert!(page.body.contains("id=\"remove-code\""), "asked again");
    let r = b
        .submit(
            &s,
            "/account/security",
            "/account/security/totp/remove",
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
}
