//! The CSRF guard: origin checks, synchronizer tokens by header and form, pre-session
//! double submit, exemptions.

use axum::body::Body;
use countersign_axum::{CookieConfig, issue_pre_session_csrf};
use http::header;

use crate::common::*;

const FORM: &str = "application/x-www-form-urlencoded";

/// A POST to `uri` with the session cookie.
fn with_session(fx: &Fx, uri: &str, cookie: &str) -> http::request::Builder {
    post_req(uri).header(header::COOKIE, fx.session_cookie(cookie))
}

#[tokio::test]
async fn safe_methods_pass_without_a_token() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    for method in ["GET", "HEAD"] {
        let r = fx
            .call(
                get_req("/protected")
                    .method(method)
                    .header(header::COOKIE, fx.session_cookie(&cookie))
                    .header("sec-fetch-site", "cross-site")
                    .header(header::ORIGIN, "https://evil.example")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        r.assert_ok();
    }
}

#[tokio::test]
async fn missing_token_is_refused() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    let r = fx
        .call(
            with_session(&fx, "/act", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
    // A form without the field, too.
    let r = fx
        .call(
            with_session(&fx, "/submit", &cookie)
                .header(header::CONTENT_TYPE, FORM)
                .body(Body::from("note=hi"))
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
    // DELETE is a state change like POST.
    let r = fx
        .call(
            with_session(&fx, "/act", &cookie)
                .method("DELETE")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
}

#[tokio::test]
async fn wrong_token_is_refused() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    // Another session's token is as wrong as any other.
    let (_, other) = fx.session(&fx.alice).await;
    for token in [other.csrf_token.as_str(), "", "x"] {
        let r = fx
            .call(
                with_session(&fx, "/act", &cookie)
                    .header("x-csrf-token", token)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        r.assert_rejection(403, None, CSRF_FAILED);
    }
    let r = fx
        .call(
            with_session(&fx, "/submit", &cookie)
                .header(header::CONTENT_TYPE, FORM)
                .body(Body::from(format!("csrf_token={}", other.csrf_token)))
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
}

#[tokio::test]
async fn right_token_in_the_header() {
    let fx = fixture().await;
    let (cookie, record) = fx.session(&fx.alice).await;
    let r = fx
        .call(
            with_session(&fx, "/act", &cookie)
                .header("X-CSRF-Token", &record.csrf_token)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.body, "done by alice");
    // The guard's lookup is reused by the extractor: one load, not two.
    assert_eq!(fx.store.loads(), 1);
}

#[tokio::test]
async fn right_token_in_the_form_and_the_handler_gets_the_body() {
    let fx = fixture().await;
    let (cookie, record) = fx.session(&fx.alice).await;
    let body = format!("note=hello+world&csrf_token={}&n=%C3%A9", record.csrf_token);
    let r = fx
        .call(
            with_session(&fx, "/submit", &cookie)
                .header(
                    header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded; charset=UTF-8",
                )
                .header(header::CONTENT_LENGTH, body.len())
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    r.assert_ok();
    let json = r.json();
    assert_eq!(json["user"], "alice");
    assert_eq!(json["form"]["note"], "hello world");
    assert_eq!(json["form"]["n"], "é");
    assert_eq!(json["form"]["csrf_token"], record.csrf_token.as_str());
}

#[tokio::test]
async fn form_over_the_limit_is_413() {
    let fx = fixture().await;
    let (cookie, record) = fx.session(&fx.alice).await;
    let body = format!(
        "csrf_token={}&note={}",
        record.csrf_token,
        "a".repeat(64 * 1024)
    );
    // With and without a declared length (a chunked body is counted as it is read).
    for declare in [true, false] {
        let mut b = with_session(&fx, "/submit", &cookie).header(header::CONTENT_TYPE, FORM);
        if declare {
            b = b.header(header::CONTENT_LENGTH, body.len());
        }
        let r = fx.call(b.body(Body::from(body.clone())).unwrap()).await;
        r.assert_rejection(
            413,
            None,
            r#"{"error":"payload_too_large","message":"The form body is larger than 64 KiB."}"#,
        );
    }
    // The header route has no limit of ours.
    let r = fx
        .call(
            with_session(&fx, "/submit", &cookie)
                .header(header::CONTENT_TYPE, FORM)
                .header("x-csrf-token", &record.csrf_token)
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    r.assert_ok();
}

#[tokio::test]
async fn sec_fetch_site_must_be_same_origin_or_none() {
    let fx = fixture().await;
    let (cookie, record) = fx.session(&fx.alice).await;
    for (site, ok) in [
        ("same-origin", true),
        ("none", true),
        ("same-site", false),
        ("cross-site", false),
        ("", false),
    ] {
        let r = fx
            .call(
                with_session(&fx, "/act", &cookie)
                    .header("sec-fetch-site", site)
                    .header("x-csrf-token", &record.csrf_token)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        if ok {
            r.assert_ok();
        } else {
            r.assert_rejection(403, None, CSRF_FAILED);
        }
    }
}

#[tokio::test]
async fn origin_must_be_ours_or_allowed() {
    let fx = fixture().await;
    let (cookie, record) = fx.session(&fx.alice).await;
    for (origin, ok) in [
        ("https://auth.example", true),
        ("HTTPS://Auth.Example", true),
        ("https://auth.example:443", true),
        ("https://app.example", true),
        ("https://evil.example", false),
        ("http://auth.example", false),
        ("https://auth.example.evil", false),
        ("https://auth.example:8443", false),
        ("null", false),
    ] {
        let r = fx
            .call(
                with_session(&fx, "/act", &cookie)
                    .header(header::ORIGIN, origin)
                    .header("x-csrf-token", &record.csrf_token)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        if ok {
            r.assert_ok();
        } else {
            r.assert_rejection(403, None, CSRF_FAILED);
        }
    }
    // Without a Host there is no own origin to match.
    let r = fx
        .call(
            http::Request::builder()
                .method("POST")
                .uri("/act")
                .header(header::COOKIE, fx.session_cookie(&cookie))
                .header(header::ORIGIN, "https://auth.example")
                .header("x-csrf-token", &record.csrf_token)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
}

#[tokio::test]
async fn insecure_mode_own_origin_is_http() {
    let fx = fixture_with(CookieConfig { secure: false }).await;
    let (cookie, record) = fx.session(&fx.alice).await;
    for (origin, ok) in [
        ("http://auth.example", true),
        ("https://auth.example", false),
    ] {
        let r = fx
            .call(
                with_session(&fx, "/act", &cookie)
                    .header(header::ORIGIN, origin)
                    .header("x-csrf-token", &record.csrf_token)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status.as_u16(), if ok { 200 } else { 403 }, "{origin}");
    }
}

#[tokio::test]
async fn bearer_requests_are_exempt() {
    let fx = fixture().await;
    let token = fx.token(&fx.alice).await;
    let (cookie, _) = fx.session(&fx.root).await;
    let r = fx
        .call(
            post_req("/act")
                .header(header::AUTHORIZATION, bearer(&token))
                .header(header::COOKIE, fx.session_cookie(&cookie))
                .header("sec-fetch-site", "cross-site")
                .header(header::ORIGIN, "https://evil.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.body, "done by alice");
    // A non-bearer Authorization header earns no exemption.
    let r = fx
        .call(
            post_req("/act")
                .header(header::AUTHORIZATION, "Basic YTpi")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
}

#[tokio::test]
async fn pre_session_double_submit() {
    let fx = fixture().await;
    let (set_cookie, token) = issue_pre_session_csrf(&fx.state);
    let set_cookie = set_cookie.to_str().unwrap().to_owned();
    assert!(
        set_cookie.starts_with("__Host-countersign-csrf=")
            && set_cookie.ends_with("; Path=/; HttpOnly; Secure; SameSite=Lax"),
        "{set_cookie}"
    );
    let pair = set_cookie.split(';').next().unwrap().to_owned();
    let login = |cookie: Option<&str>, field: &str| {
        let mut b = post_req("/login").header(header::CONTENT_TYPE, FORM);
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        b.body(Body::from(format!("username=alice&csrf_token={field}")))
            .unwrap()
    };

    let r = fx.call(login(Some(&pair), &token)).await;
    r.assert_ok();
    assert_eq!(r.json()["form"]["username"], "alice");
    assert_eq!(r.json()["user"], serde_json::Value::Null);

    // Wrong token, no cookie, another pair's cookie, a forged cookie.
    let (other_cookie, other_token) = issue_pre_session_csrf(&fx.state);
    let other = other_cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let forged = format!("__Host-countersign-csrf={token}.{}", "A".repeat(43));
    for (cookie, field) in [
        (Some(pair.as_str()), "wrong"),
        (Some(pair.as_str()), other_token.as_str()),
        (None, token.as_str()),
        (Some(other.as_str()), token.as_str()),
        (Some(forged.as_str()), token.as_str()),
    ] {
        let r = fx.call(login(cookie, field)).await;
        r.assert_rejection(403, None, CSRF_FAILED);
    }
    // The header works for the pre-session token too.
    let r = fx
        .call(
            post_req("/login")
                .header(header::COOKIE, &pair)
                .header("x-csrf-token", &token)
                .header(header::CONTENT_TYPE, FORM)
                .body(Body::from("username=alice"))
                .unwrap(),
        )
        .await;
    r.assert_ok();
}

#[tokio::test]
async fn a_live_session_needs_its_own_token_not_a_pre_session_one() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    let (set_cookie, token) = issue_pre_session_csrf(&fx.state);
    let pair = set_cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = fx
        .call(
            post_req("/login")
                .header(
                    header::COOKIE,
                    format!("{}; {pair}", fx.session_cookie(&cookie)),
                )
                .header(header::CONTENT_TYPE, FORM)
                .body(Body::from(format!("csrf_token={token}")))
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
}

#[tokio::test]
async fn an_ended_session_falls_back_to_the_pre_session_token_and_is_cleared() {
    let fx = fixture().await;
    let (cookie, record) = fx.session(&fx.alice).await;
    fx.auth.end_session(&record.key).await.unwrap();
    let (set_cookie, token) = issue_pre_session_csrf(&fx.state);
    let pair = set_cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = fx
        .call(
            post_req("/login")
                .header(
                    header::COOKIE,
                    format!("{}; {pair}", fx.session_cookie(&cookie)),
                )
                .header(header::CONTENT_TYPE, FORM)
                .body(Body::from(format!("csrf_token={token}")))
                .unwrap(),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.json()["user"], serde_json::Value::Null);
    assert_eq!(
        r.set_cookies(),
        ["__Host-countersign=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"]
    );
    // The session's old token is no good either.
    let r = fx
        .call(
            with_session(&fx, "/act", &cookie)
                .header("x-csrf-token", &record.csrf_token)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(403, None, CSRF_FAILED);
    assert!(
        r.set_cookies()
            .contains(&"__Host-countersign=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
    );
}

#[tokio::test]
async fn a_handler_setting_a_new_session_is_not_undone() {
    use std::sync::Arc;

    use axum::Router;
    use axum::routing::post;
    use countersign_axum::{AuthState, CsrfLayer, MaybeAuthenticated};

    // A login handler that replaces a stale session cookie with a new one.
    let fx = fixture().await;
    let alice = fx.alice.clone();
    let app = Router::new()
        .route(
            "/login",
            post(
                move |axum::extract::State(state): axum::extract::State<Arc<AuthState>>,
                      MaybeAuthenticated(_): MaybeAuthenticated| {
                    let alice = alice.clone();
                    async move {
                        let (value, record) =
                            state.auth.start_session(&alice, "", "").await.unwrap();
                        let ttl = record.absolute_deadline.secs() - state.auth.now().secs();
                        [(
                            header::SET_COOKIE,
                            state.cookies.session_cookie(&value, ttl),
                        )]
                    }
                },
            ),
        )
        .layer(CsrfLayer::new(Arc::clone(&fx.state)))
        .with_state(Arc::clone(&fx.state));
    let (cookie, record) = fx.session(&fx.alice).await;
    fx.auth.end_session(&record.key).await.unwrap();
    let (set_cookie, token) = issue_pre_session_csrf(&fx.state);
    let pair = set_cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = call(
        &app,
        post_req("/login")
            .header(
                header::COOKIE,
                format!("{}; {pair}", fx.session_cookie(&cookie)),
            )
            .header("x-csrf-token", token)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    r.assert_ok();
    let cookies = r.set_cookies();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].contains("Max-Age=43200"), "{cookies:?}");
}

#[tokio::test]
async fn skipped_routes_and_unmatched_requests_pass_the_others_are_checked() {
    use std::sync::Arc;

    use axum::Router;
    use axum::routing::post;
    use countersign_axum::CsrfLayer;

    let fx = fixture().await;
    let routes = || {
        Router::new()
            .route("/token", post(|| async { "token" }))
            .route("/items/{id}", post(|| async { "item" }))
            .fallback(|| async { (http::StatusCode::NOT_FOUND, "none") })
    };
    let skipping = routes().layer(
        CsrfLayer::new(Arc::clone(&fx.state))
            .skip_routes(["/token"])
            .skip_unmatched(),
    );
    let strict = routes().layer(CsrfLayer::new(Arc::clone(&fx.state)));
    // A cross-site POST with no token: only the skipped route and, with
    // `skip_unmatched`, the fallback are reached.
    let cross_site = |uri: &str| {
        post_req(uri)
            .header("sec-fetch-site", "cross-site")
            .body(Body::empty())
            .unwrap()
    };
    let r = call(&skipping, cross_site("/token")).await;
    assert_eq!((r.status, r.body.as_str()), (http::StatusCode::OK, "token"));
    // The pattern is matched, not a prefix of the path, and a parameter route is checked.
    assert_eq!(
        call(&skipping, cross_site("/token/x")).await.status,
        http::StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&skipping, cross_site("/items/1")).await.status,
        http::StatusCode::FORBIDDEN
    );
    for uri in ["/token", "/items/1", "/nowhere"] {
        let r = call(&strict, cross_site(uri)).await;
        assert_eq!(r.status, http::StatusCode::FORBIDDEN, "{uri}: {r:?}");
    }
}
