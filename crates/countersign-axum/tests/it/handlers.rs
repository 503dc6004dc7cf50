//! The ready login and logout handlers: forms for browsers, JSON for scripts, every
//! outcome of a login, the redirect after it, and cookies under a configured name.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use countersign::auth::Auth;
use countersign::keys::{KeyRing, SecretKey};
use countersign::password::{HashParams, Hasher, HashingPool, Password};
use countersign_axum::{AuthState, CookieConfig, CsrfLayer, csrf_token_for, handlers};
use http::{Request, StatusCode, header};

use crate::common::*;

const PASSWORD: &str = "a long and unusual passphrase";
const HTML: &str = "text/html,application/xhtml+xml";

fn app(state: Arc<AuthState>) -> Router {
    async fn protected(
        countersign_axum::Authenticated(user): countersign_axum::Authenticated,
    ) -> String {
        format!("Hello {}", user.username)
    }
    Router::new()
        .route("/login", get(handlers::login_form).post(handlers::login))
        .route("/logout", post(handlers::logout))
        .route("/protected", get(protected))
        .layer(CsrfLayer::new(Arc::clone(&state)))
        .with_state(state)
}

/// `name=value` of a `Set-Cookie` header.
fn pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap()
}

/// The `Set-Cookie` header for cookie `name`.
fn set_cookie_named<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// The hidden `csrf_token` of a form page.
fn form_token(page: &str) -> String {
    let (_, rest) = page
        .split_once(r#"name="csrf_token" value=""#)
        .expect("the page has a token");
    rest.split('"').next().unwrap().to_owned()
}

/// A browser's form post: same-origin, `Accept: text/html`, with these cookies.
fn form_post(uri: &str, cookies: &str, body: &str) -> Request<Body> {
    post_req(uri)
        .header("sec-fetch-site", "same-origin")
        .header(header::ORIGIN, format!("https://{HOST}"))
        .header(header::ACCEPT, HTML)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookies)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// The login page as a browser gets it: the CSRF cookie pair and the form's token.
async fn open_form(app: &Router, uri: &str) -> (String, String) {
    let page = call(
        app,
        get_req(uri)
            .header(header::ACCEPT, HTML)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    page.assert_ok();
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let cookie = set_cookie_named(&page, "__Host-countersign-csrf").expect("a CSRF cookie");
    (pair(cookie).to_owned(), form_token(&page.body))
}

#[tokio::test]
async fn form_login_protected_logout() {
    let fx = fixture().await;
    let app = app(Arc::clone(&fx.state));
    let (csrf_cookie, token) = open_form(&app, "/login?next=/buggies%3Fpage%3D2").await;

    let body = format!(
        "username=alice&password={}&csrf_token={token}",
        PASSWORD.replace(' ', "+")
    );
    let signed = call(
        &app,
        form_post("/login?next=/buggies%3Fpage%3D2", &csrf_cookie, &body),
    )
    .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{signed:?}");
    assert_eq!(signed.header("location"), Some("/buggies?page=2"));
    assert_eq!(signed.header("cache-control"), Some("no-store"));
    let session = set_cookie_named(&signed, "__Host-countersign").expect("a session cookie");
    assert!(
        session.ends_with(&format!(
            "; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Lax",
            fx.auth.config().sessions.absolute_secs
        )),
        "{session}"
    );
    assert_eq!(
        set_cookie_named(&signed, "__Host-countersign-csrf"),
        Some("__Host-countersign-csrf=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
    );
    let session = pair(session).to_owned();

    let hello = call(
        &app,
        get_req("/protected")
            .header(header::COOKIE, &session)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    hello.assert_ok();
    assert_eq!(hello.body, "Hello alice");

    // Logging out takes the session's own CSRF token.
    let value = session.split_once('=').unwrap().1;
    let principal = Auth::principal_from_session(&fx.auth.session(value).await.unwrap());
    let session_token = csrf_token_for(&principal).unwrap();
    let out = call(
        &app,
        form_post("/logout", &session, &format!("csrf_token={session_token}")),
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{out:?}");
    assert_eq!(out.header("location"), Some("/"));
    assert_eq!(
        out.set_cookies(),
        ["__Host-countersign=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"]
    );
    let replay = call(
        &app,
        get_req("/protected")
            .header(header::COOKIE, &session)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    replay.assert_rejection(401, Some(WWW_REALM), INVALID_SESSION);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_show_the_form_again_alike() {
    let fx = fixture().await;
    let app = app(Arc::clone(&fx.state));
    let (csrf_cookie, token) = open_form(&app, "/login").await;
    let mut pages = Vec::new();
    for user in ["alice", "nobody"] {
        let body = format!("username={user}&password=wrong+password&csrf_token={token}");
        let r = call(&app, form_post("/login", &csrf_cookie, &body)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{r:?}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        // The browser keeps its CSRF cookie, and the form its token.
        assert!(r.set_cookies().is_empty(), "{r:?}");
        assert_eq!(form_token(&r.body), token);
        assert!(
            r.body
                .contains(r#"<p role="alert">Invalid username or password</p>"#),
            "{}",
            r.body
        );
        pages.push(r.body.replace(&format!(r#"value="{user}""#), "value=\"\""));
    }
    assert_eq!(pages[0], pages[1]);
    assert_eq!(fx.auth.hashing_stats().verifications, 2);
}

#[tokio::test]
async fn empty_fields_are_422() {
    let fx = fixture().await;
    let app = app(Arc::clone(&fx.state));
    let (csrf_cookie, token) = open_form(&app, "/login").await;
    let r = call(
        &app,
        form_post(
            "/login",
            &csrf_cookie,
            &format!("username=alice&csrf_token={token}"),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body.contains("Enter your username and password."),
        "{}",
        r.body
    );
    assert_eq!(fx.auth.hashing_stats().verifications, 0);
}

#[tokio::test]
async fn only_local_paths_are_followed() {
    let fx = fixture().await;
    let app = app(Arc::clone(&fx.state));
    for next in [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/%09/evil.example",
        "javascript:alert(1)",
        "buggies",
    ] {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("next", &next.replace("%09", "\t"))
            .finish();
        let uri = format!("/login?{query}");
        let (csrf_cookie, token) = open_form(&app, &uri).await;
        let body = format!(
            "username=alice&password={}&csrf_token={token}",
            PASSWORD.replace(' ', "+")
        );
        let r = call(&app, form_post(&uri, &csrf_cookie, &body)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(r.header("location"), Some("/"), "{next}");
    }
}

/// A JSON client: the token from `GET /login` as JSON, then JSON in and out.
async fn json_token(app: &Router) -> (String, String) {
    let r = call(
        app,
        get_req("/login")
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    r.assert_ok();
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let cookie = set_cookie_named(&r, "__Host-countersign-csrf").unwrap();
    let token = r.json()["csrf_token"].as_str().unwrap().to_owned();
    (pair(cookie).to_owned(), token)
}

fn json_post(uri: &str, cookie: &str, token: &str, body: &str) -> Request<Body> {
    post_req(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::COOKIE, cookie)
        .header("x-csrf-token", token)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn json_login_and_logout() {
    let fx = fixture().await;
    let app = app(Arc::clone(&fx.state));
    let (cookie, token) = json_token(&app).await;
    let body = format!(r#"{{"username":"root","password":"{PASSWORD}"}}"#);
    let r = call(
        &app,
        json_post("/login?next=/ignored", &cookie, &token, &body),
    )
    .await;
    r.assert_ok();
    assert_eq!(
        r.json(),
        serde_json::json!({ "username": "root", "role": "admin" })
    );
    assert_eq!(r.header("location"), None);
    let session = pair(set_cookie_named(&r, "__Host-countersign").unwrap()).to_owned();

    let value = session.split_once('=').unwrap().1;
    let principal = Auth::principal_from_session(&fx.auth.session(value).await.unwrap());
    let out = call(
        &app,
        post_req("/logout")
            .header(header::COOKIE, &session)
            .header("x-csrf-token", csrf_token_for(&principal).unwrap())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{out:?}");
    assert_eq!(
        out.set_cookies(),
        ["__Host-countersign=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"]
    );
    assert!(fx.auth.session(value).await.is_err());
}

#[tokio::test]
async fn json_failures() {
    let fx = fixture().await;
    let app = app(Arc::clone(&fx.state));
    let (cookie, token) = json_token(&app).await;
    let cases = [
        (
            r#"{"username":"alice","password":"wrong password"}"#,
            401,
            r#"{"error":"invalid_grant","message":"Invalid username or password"}"#,
        ),
        (
            r#"{"username":"alice"}"#,
            422,
            r#"{"error":"invalid_request","message":"Enter your username and password."}"#,
        ),
        (
            r#"{"username":"alice","password":7}"#,
            422,
            r#"{"error":"invalid_request","message":"Send a JSON object with the strings `username` and `password`."}"#,
        ),
        (
            r#"{"username":"#,
            400,
            r#"{"error":"invalid_request","message":"Send a JSON object with the strings `username` and `password`."}"#,
        ),
    ];
    for (body, status, answer) in cases {
        let r = call(&app, json_post("/login", &cookie, &token, body)).await;
        assert_eq!(r.status.as_u16(), status, "{body}");
        assert_eq!(r.body, answer, "{body}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(r.set_cookies().is_empty());
    }
    let r = call(
        &app,
        post_req("/login")
            .header(header::CONTENT_TYPE, "text/plain")
            .header(header::COOKIE, &cookie)
            .header("x-csrf-token", &token)
            .body(Body::from("alice"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        r.body,
        r#"{"error":"unsupported_media_type","message":"Send application/json or application/x-www-form-urlencoded."}"#
    );
}

#[tokio::test]
async fn throttled_is_429_with_retry_after() {
    let fx = fixture().await;
    let app = app(Arc::clone(&fx.state));
    let (cookie, token) = json_token(&app).await;
    let wrong = r#"{"username":"alice","password":"wrong password"}"#;
    let per_account = fx.auth.config().throttle.per_account;
    for _ in 0..per_account {
        let r = call(&app, json_post("/login", &cookie, &token, wrong)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let window = fx.auth.config().throttle.window_secs;
    let r = call(&app, json_post("/login", &cookie, &token, wrong)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some(window.to_string().as_str()));
    assert_eq!(
        r.json(),
        serde_json::json!({
            "error": "too_many_requests",
            "message": format!("Too many failed attempts. Try again in {window} seconds."),
        })
    );
    // The form says the same on the page.
    let (csrf_cookie, form) = open_form(&app, "/login").await;
    let body = format!("username=alice&password=x&csrf_token={form}");
    let r = call(&app, form_post("/login", &csrf_cookie, &body)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.header("retry-after"), Some(window.to_string().as_str()));
    assert!(r.body.contains("Too many failed attempts."), "{}", r.body);
}

#[tokio::test]
async fn a_store_outage_is_503_and_no_session() {
    let fx = fixture().await;
    let app = app(Arc::clone(&fx.state));
    let (cookie, token) = json_token(&app).await;
    fx.store.fail_all();
    let body = format!(r#"{{"username":"alice","password":"{PASSWORD}"}}"#);
    let r = call(&app, json_post("/login", &cookie, &token, &body)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=5).contains(&secs));
    assert_eq!(
        r.body,
        r#"{"error":"unavailable","message":"Authentication is temporarily unavailable; retry shortly."}"#
    );
    assert!(r.set_cookies().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_hashing_pool_is_503_with_retry_after() {
    // One worker, no queue, and slow parameters: a hash in flight fills the pool.
    let slow = Hasher::new(HashParams {
        m_cost_kib: 32 * 1024,
        t_cost: 16,
        p_cost: 1,
    })
    .unwrap();
    let pool = HashingPool::new(slow, 1, 0).unwrap();
    let auth = Auth::builder(KeyRing::single(SecretKey::generate(32).unwrap().0))
        .hashing_pool(pool.clone())
        .build()
        .unwrap();
    let state = Arc::new(AuthState::new(Arc::clone(&auth), CookieConfig::secure()));
    let app = app(state);
    let (cookie, token) = json_token(&app).await;
    let busy = tokio::spawn({
        let pool = pool.clone();
        async move { pool.hash(Password::new("long enough pw")).await }
    });
    while pool.depth() == 0 {
        tokio::task::yield_now().await;
    }
    let body = format!(r#"{{"username":"alice","password":"{PASSWORD}"}}"#);
    let r = call(&app, json_post("/login", &cookie, &token, &body)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(
        r.body,
        r#"{"error":"temporarily_unavailable","message":"The server is busy. Try again in a moment."}"#
    );
    assert!(busy.await.unwrap().is_ok());
}

#[tokio::test]
async fn a_configured_cookie_name_is_used_and_cleared() {
    let cookies = CookieConfig::secure().with_name("buggy-race").unwrap();
    let fx = fixture_with(cookies).await;
    let app = app(Arc::clone(&fx.state));
    let page = call(
        &app,
        get_req("/login")
            .header(header::ACCEPT, HTML)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let csrf_cookie = pair(set_cookie_named(&page, "__Host-buggy-race-csrf").unwrap()).to_owned();
    let token = form_token(&page.body);
    let body = format!(
        "username=alice&password={}&csrf_token={token}",
        PASSWORD.replace(' ', "+")
    );
    let signed = call(&app, form_post("/login", &csrf_cookie, &body)).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{signed:?}");
    let session = pair(set_cookie_named(&signed, "__Host-buggy-race").unwrap()).to_owned();
    assert!(
        set_cookie_named(&signed, "__Host-buggy-race-csrf")
            .unwrap()
            .contains("Max-Age=0")
    );

    let hello = call(
        &app,
        get_req("/protected")
            .header(header::COOKIE, &session)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    hello.assert_ok();
    // The default name means nothing to this app.
    let other = call(
        &app,
        get_req("/protected")
            .header(header::COOKIE, session.replace("buggy-race", "countersign"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    other.assert_rejection(401, Some(WWW_REALM), MISSING);
    // A dead cookie under the configured name is cleared under that name.
    fx.auth.logout_everywhere(fx.alice.id).await.unwrap();
    let dead = call(
        &app,
        get_req("/protected")
            .header(header::COOKIE, &session)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    dead.assert_rejection(401, Some(WWW_REALM), INVALID_SESSION);
    assert_eq!(
        set_cookie_named(&dead, "__Host-buggy-race"),
        Some("__Host-buggy-race=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
    );
}

#[tokio::test]
async fn a_signed_in_visitor_gets_the_session_token_on_the_form() {
    let fx = fixture().await;
    let app = app(Arc::clone(&fx.state));
    let (value, record) = fx.session(&fx.alice).await;
    let page = call(
        &app,
        get_req("/login")
            .header(header::ACCEPT, HTML)
            .header(header::COOKIE, fx.session_cookie(&value))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    page.assert_ok();
    assert!(page.set_cookies().is_empty(), "{page:?}");
    let principal = Auth::principal_from_session(&record);
    assert_eq!(form_token(&page.body), csrf_token_for(&principal).unwrap());
    // Signing in as someone else ends alice's session.
    let body = format!(
        "username=root&password={}&csrf_token={}",
        PASSWORD.replace(' ', "+"),
        form_token(&page.body)
    );
    let r = call(&app, form_post("/login", &fx.session_cookie(&value), &body)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert!(fx.auth.session(&value).await.is_err());
}
