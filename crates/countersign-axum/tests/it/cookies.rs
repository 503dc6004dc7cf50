//! Cookie names and `Set-Cookie` values.

use std::sync::Arc;

use countersign_axum::{
    AuthRejection, AuthState, CookieConfig, issue_pre_session_csrf, read_cookie,
};
use http::{HeaderMap, HeaderValue, header};

use crate::common::*;

#[test]
fn names() {
    let secure = CookieConfig { secure: true };
    let insecure = CookieConfig { secure: false };
    assert_eq!(CookieConfig::default(), secure);
    assert_eq!(secure.session_name(), "__Host-countersign");
    assert_eq!(secure.csrf_name(), "__Host-countersign-csrf");
    assert_eq!(insecure.session_name(), "countersign");
    assert_eq!(insecure.csrf_name(), "countersign-csrf");
}

#[test]
fn set_cookie_values() {
    let secure = CookieConfig { secure: true };
    let insecure = CookieConfig { secure: false };
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
