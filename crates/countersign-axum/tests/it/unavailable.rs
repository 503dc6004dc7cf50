//! A store outage is a 503 with `Retry-After`, never a 401 that would log people out.

use axum::body::Body;
use http::header;

use crate::common::*;

const UNAVAILABLE: &str = r#"{"error":"unavailable","message":"Authentication is temporarily unavailable; retry shortly."}"#;

#[track_caller]
fn assert_unavailable(r: &Reply) {
    r.assert_rejection(503, None, UNAVAILABLE);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=5).contains(&retry), "Retry-After {retry}");
    assert!(
        r.set_cookies().is_empty(),
        "a 503 must not clear the session"
    );
}

#[tokio::test]
async fn bearer_with_store_down() {
    let fx = fixture().await;
    let token = fx.token(&fx.alice).await;
    fx.store.fail_all();
    let r = fx
        .call(
            get_req("/protected")
                .header(header::AUTHORIZATION, bearer(&token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_unavailable(&r);
}

#[tokio::test]
async fn session_with_store_down() {
    let fx = fixture().await;
    let (cookie, record) = fx.session(&fx.alice).await;
    fx.store.fail_all();
    let get = |uri: &str| {
        get_req(uri)
            .header(header::COOKIE, fx.session_cookie(&cookie))
            .body(Body::empty())
            .unwrap()
    };
    assert_unavailable(&fx.call(get("/protected")).await);
    // Even a page that admits anonymous users: "not logged in" would be a lie.
    assert_unavailable(&fx.call(get("/page")).await);
    // And the CSRF guard, which looks the session up itself.
    let r = fx
        .call(
            post_req("/act")
                .header(header::COOKIE, fx.session_cookie(&cookie))
                .header("x-csrf-token", &record.csrf_token)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_unavailable(&r);
    // Back up: the same session works again.
    fx.store.recover();
    fx.call(get("/protected")).await.assert_ok();
}

#[tokio::test]
async fn a_bad_mac_needs_no_store() {
    // Forged cookies are refused even while the store is down: no lookup is made.
    let fx = fixture().await;
    fx.store.fail_all();
    let forged = format!("{}.{}", "A".repeat(43), "B".repeat(43));
    let r = fx
        .call(
            get_req("/protected")
                .header(header::COOKIE, fx.session_cookie(&forged))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(401, Some(WWW_REALM), INVALID_SESSION);
}
