//! Session cookies: valid, forged, expired, ended.

use axum::body::Body;
use countersign_axum::CookieConfig;
use http::header;

use crate::common::*;

const CLEAR_SECURE: &str = "__Host-countersign=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax";
const CLEAR_INSECURE: &str = "countersign=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax";

fn with_cookie(cookie: &str) -> http::Request<Body> {
    get_req("/protected")
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap()
}

#[track_caller]
fn assert_invalid_session(r: &Reply) {
    r.assert_rejection(401, Some(WWW_REALM), INVALID_SESSION);
    let cookies = r.set_cookies();
    assert!(cookies.contains(&CLEAR_SECURE), "{cookies:?}");
    assert!(cookies.contains(&CLEAR_INSECURE), "{cookies:?}");
}

#[tokio::test]
async fn valid_session_is_admitted() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    let r = fx
        .call(with_cookie(&format!(
            "theme=dark; {}",
            fx.session_cookie(&cookie)
        )))
        .await;
    r.assert_ok();
    assert_eq!(
        r.body,
        r#"{"message":"Hello alice, you have access to this protected route."}"#
    );
}

#[tokio::test]
async fn bad_mac_is_refused_before_any_lookup() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    let (id, mac) = cookie.split_once('.').unwrap();
    let mut mac = mac.to_owned().into_bytes();
    mac[0] = if mac[0] == b'A' { b'B' } else { b'A' };
    let forged = format!("{id}.{}", String::from_utf8(mac).unwrap());
    let before = fx.store.calls("load_session");
    let r = fx.call(with_cookie(&fx.session_cookie(&forged))).await;
    assert_invalid_session(&r);
    assert_eq!(
        fx.store.calls("load_session"),
        before,
        "a forged cookie reached the store"
    );

    for junk in ["", "x", "a.b", &"A".repeat(87)] {
        let r = fx.call(with_cookie(&fx.session_cookie(junk))).await;
        assert_invalid_session(&r);
    }
    assert_eq!(fx.store.calls("load_session"), before);
}

#[tokio::test]
async fn idle_session_expires() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    fx.clock.advance(29 * 60);
    fx.call(with_cookie(&fx.session_cookie(&cookie)))
        .await
        .assert_ok();
    // Used at 29 min, so now idle until 59 min.
    fx.clock.advance(29 * 60);
    fx.call(with_cookie(&fx.session_cookie(&cookie)))
        .await
        .assert_ok();
    fx.clock.advance(30 * 60);
    let r = fx.call(with_cookie(&fx.session_cookie(&cookie))).await;
    assert_invalid_session(&r);
}

#[tokio::test]
async fn absolute_lifetime_ends_a_busy_session() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    for _ in 0..(12 * 60 / 20) - 1 {
        fx.clock.advance(20 * 60);
        fx.call(with_cookie(&fx.session_cookie(&cookie)))
            .await
            .assert_ok();
    }
    fx.clock.advance(20 * 60);
    assert_invalid_session(&fx.call(with_cookie(&fx.session_cookie(&cookie))).await);
}

#[tokio::test]
async fn logout_replay_is_refused() {
    let fx = fixture().await;
    let (cookie, record) = fx.session(&fx.alice).await;
    fx.call(with_cookie(&fx.session_cookie(&cookie)))
        .await
        .assert_ok();
    assert!(fx.auth.end_session(&record.key).await.unwrap());
    assert_invalid_session(&fx.call(with_cookie(&fx.session_cookie(&cookie))).await);
}

#[tokio::test]
async fn logout_everywhere_ends_sessions() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    fx.auth.logout_everywhere(fx.alice.id).await.unwrap();
    assert_invalid_session(&fx.call(with_cookie(&fx.session_cookie(&cookie))).await);
}

#[tokio::test]
async fn insecure_cookies_use_the_plain_name() {
    let fx = fixture_with(CookieConfig::insecure()).await;
    let (cookie, _) = fx.session(&fx.alice).await;
    fx.call(with_cookie(&format!("countersign={cookie}")))
        .await
        .assert_ok();
    // The secure name is not read in insecure mode, and vice versa.
    let r = fx
        .call(with_cookie(&format!("__Host-countersign={cookie}")))
        .await;
    r.assert_rejection(401, Some(WWW_REALM), MISSING);

    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.alice).await;
    let r = fx.call(with_cookie(&format!("countersign={cookie}"))).await;
    r.assert_rejection(401, Some(WWW_REALM), MISSING);
}

#[tokio::test]
async fn principal_from_session_has_the_csrf_token() {
    let fx = fixture().await;
    let (cookie, record) = fx.session(&fx.alice).await;
    let app = axum::Router::new()
        .route(
            "/t",
            axum::routing::get(
                |countersign_axum::Authenticated(p): countersign_axum::Authenticated| async move {
                    countersign_axum::csrf_token_for(&p)
                        .unwrap_or("none")
                        .to_owned()
                },
            ),
        )
        .with_state(std::sync::Arc::clone(&fx.state));
    let r = call(
        &app,
        get_req("/t")
            .header(header::COOKIE, fx.session_cookie(&cookie))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.body, record.csrf_token);
    let token = fx.token(&fx.alice).await;
    let r = call(
        &app,
        get_req("/t")
            .header(header::AUTHORIZATION, bearer(&token))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.body, "none");
}
