//! Cookie names and `Set-Cookie` values.

use std::sync::Arc;

use countersign_axum::{
    AuthRejection, AuthState, BadCookieName, CookieConfig, issue_pre_session_csrf, read_cookie,
};
use http::{HeaderMap, HeaderValue, header};

use crate::common::*;

#[test]
fn names() {
    let secure = CookieConfig::secure();
    let insecure = CookieConfig::insecure();
    assert_eq!(CookieConfig::default(), secure);
    assert_eq!(secure.session_name(), "__Host-countersign");
    assert_eq!(secure.csrf_name(), "__Host-countersign-csrf");
    assert_eq!(insecure.session_name(), "countersign");
    assert_eq!(insecure.csrf_name(), "countersign-csrf");
    assert!(secure.is_secure());
    assert!(!insecure.is_secure());
}

#[test]
fn configured_names() {
    let mine = CookieConfig::secure().with_name("buggy_race.v2").unwrap();
    assert_eq!(mine.session_name(), "__Host-buggy_race.v2");
    assert_eq!(mine.csrf_name(), "__Host-buggy_race.v2-csrf");
    assert_eq!(
        mine.session_cookie("v", 5),
        "__Host-buggy_race.v2=v; Path=/; Max-Age=5; HttpOnly; Secure; SameSite=Lax"
    );
    let dev = CookieConfig::insecure().with_name("buggy").unwrap();
    assert_eq!(dev.session_name(), "buggy");
    assert_eq!(dev.csrf_name(), "buggy-csrf");
    assert!(!dev.is_secure());
    let long = "a".repeat(65);
    for bad in [
        "",
        "a b",
        "a;b",
        "a=b",
        "a\"b",
        "a\r\nSet-Cookie: x",
        "é",
        "__Host-x",
        "__host-x",
        "__Secure-x",
        long.as_str(),
    ] {
        assert_eq!(
            CookieConfig::secure().with_name(bad),
            Err(BadCookieName(bad.to_owned())),
            "{bad:?}"
        );
    }
    assert!(CookieConfig::secure().with_name(&"a".repeat(64)).is_ok());
}

/// A rejection's response carries the rejection, so an application can reword it in a
/// layer of its own (the doc example on `AuthRejection`).
#[tokio::test]
async fn rejections_ride_on_their_response() {
    use axum::middleware::map_response;
    use axum::response::{IntoResponse, Response};

    async fn reword(response: Response) -> Response {
        match response.extensions().get::<AuthRejection>() {
            Some(AuthRejection::MissingToken) => {
                let (parts, _) = response.into_parts();
                let body = axum::Json(serde_json::json!({
                    "error": "missing_token",
                    "message": "Please sign in.",
                }));
                (parts, body).into_response()
            }
            _ => response,
        }
    }
    let fx = fixture().await;
    let app = fx.app.clone().layer(map_response(reword));
    let r = call(
        &app,
        get_req("/protected")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    r.assert_rejection(
        401,
        Some(WWW_REALM),
        r#"{"error":"missing_token","message":"Please sign in."}"#,
    );
    let r = call(
        &app,
        get_req("/protected")
            .header(header::AUTHORIZATION, "Bearer nonsense")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await;
    r.assert_rejection(401, Some(WWW_INVALID), INVALID);
}

#[test]
fn set_cookie_values() {
    let secure = CookieConfig::secure();
    let insecure = CookieConfig::insecure();
    assert_eq!(
        secure.session_cookie("abc.def", 3600),
        "__Host-countersign=abc.def; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"
    );
    assert_eq!(
        insecure.session_cookie("abc.def", 3600),
        "countersign=abc.def; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"
    );
    assert_eq!(
        secure.clear_session_cookie(),
        "__Host-countersign=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
    );
    assert_eq!(
        insecure.clear_session_cookie(),
        "countersign=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
    );
    assert_eq!(
        secure.csrf_cookie("t.m"),
        "__Host-countersign-csrf=t.m; Path=/; HttpOnly; Secure; SameSite=Lax"
    );
    assert_eq!(
        insecure.csrf_cookie("t.m"),
        "countersign-csrf=t.m; Path=/; HttpOnly; SameSite=Lax"
    );
    // No attribute injection, no panic, no negative lifetimes.
    assert_eq!(
        secure.session_cookie("a; Domain=evil\r\n\"b\\,é", -5),
        "__Host-countersign=aDomain=evilb; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
    );
}

#[test]
fn reading_cookies() {
    let mut headers = HeaderMap::new();
    headers.append(header::COOKIE, HeaderValue::from_static("a=1;b=\"2\""));
    headers.append(header::COOKIE, HeaderValue::from_bytes(b"c=\xff").unwrap());
    headers.append(header::COOKIE, HeaderValue::from_static(" d = 4 ; a=5"));
    assert_eq!(read_cookie(&headers, "a"), Some("1"));
    assert_eq!(read_cookie(&headers, "b"), Some("2"));
    assert_eq!(read_cookie(&headers, "c"), None);
    assert_eq!(read_cookie(&headers, "d"), Some("4"));
    assert_eq!(read_cookie(&headers, "e"), None);
    assert_eq!(read_cookie(&HeaderMap::new(), "a"), None);
}

#[tokio::test]
async fn pre_session_pair_verifies_with_the_engine() {
    let fx = fixture().await;
    let state: Arc<AuthState> = Arc::clone(&fx.state);
    let (set_cookie, token) = issue_pre_session_csrf(&state);
    let value = set_cookie
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("__Host-countersign-csrf=")
        .unwrap()
        .to_owned();
    assert!(fx.auth.check_pre_session_csrf(&value, &token));
    assert!(!fx.auth.check_pre_session_csrf(&value, "other"));
}

#[test]
fn rejection_metadata() {
    use http::StatusCode;
    let cases = [
        (
            AuthRejection::MissingToken,
            StatusCode::UNAUTHORIZED,
            "missing_token",
        ),
        (
            AuthRejection::ExpiredToken,
            StatusCode::UNAUTHORIZED,
            "expired_token",
        ),
        (
            AuthRejection::InvalidToken,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            AuthRejection::InvalidSession,
            StatusCode::UNAUTHORIZED,
            "invalid_session",
        ),
        (
            AuthRejection::InsufficientScope { required: "admin" },
            StatusCode::FORBIDDEN,
            "insufficient_scope",
        ),
        (
            AuthRejection::CsrfFailed,
            StatusCode::FORBIDDEN,
            "csrf_failed",
        ),
        (
            AuthRejection::Unavailable {
                retry_after_secs: 3,
            },
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        ),
    ];
    for (rejection, status, reason) in cases {
        assert_eq!(rejection.status(), status);
        assert_eq!(rejection.reason(), reason);
    }
    assert_eq!(AuthRejection::ExpiredToken.error_code(), "invalid_token");
    for _ in 0..50 {
        let AuthRejection::Unavailable { retry_after_secs } = AuthRejection::unavailable() else {
            panic!("not unavailable");
        };
        assert!((1..=5).contains(&retry_after_secs));
    }
}
