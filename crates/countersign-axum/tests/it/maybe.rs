//! `MaybeAuthenticated`: pages for everyone.

use axum::body::Body;
use http::header;

use crate::common::*;

fn page(header: Option<(header::HeaderName, String)>) -> http::Request<Body> {
    let mut b = get_req("/page");
    if let Some((name, value)) = header {
        b = b.header(name, value);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn anonymous_is_not_an_error() {
    let fx = fixture().await;
    let r = fx.call(page(None)).await;
    r.assert_ok();
    assert_eq!(r.body, "You are not logged in");
    assert!(r.set_cookies().is_empty());
}

#[tokio::test]
async fn signed_in_by_session_or_token() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    let r = fx
        .call(page(Some((header::COOKIE, fx.session_cookie(&cookie)))))
        .await;
    assert_eq!(r.body, "Logged in as alice");
    assert!(r.set_cookies().is_empty());
    let token = fx.token(&fx.root).await;
    let r = fx
        .call(page(Some((header::AUTHORIZATION, bearer(&token)))))
        .await;
    assert_eq!(r.body, "Logged in as root");
}

#[tokio::test]
async fn bad_credentials_are_anonymous() {
    let fx = fixture().await;
    let token = fx.token(&fx.alice).await;
    fx.clock.advance(3600);
    for h in [
        (header::AUTHORIZATION, bearer(&token)),
        (header::AUTHORIZATION, bearer("junk")),
        (header::AUTHORIZATION, "Basic abc".to_owned()),
    ] {
        let r = fx.call(page(Some(h))).await;
        r.assert_ok();
        assert_eq!(r.body, "You are not logged in");
    }
}

#[tokio::test]
async fn a_bad_session_cookie_is_cleared() {
    let fx = fixture().await;
    let (cookie, record) = fx.session(&fx.alice).await;
    fx.auth.end_session(&record.key).await.unwrap();
    let r = fx
        .call(page(Some((header::COOKIE, fx.session_cookie(&cookie)))))
        .await;
    r.assert_ok();
    assert_eq!(r.body, "You are not logged in");
    assert_eq!(
        r.set_cookies(),
        ["__Host-countersign=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"]
    );
}
