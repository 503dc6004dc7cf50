//! Role guards, and extractors on an application's own state.

use std::sync::Arc;

use axum::body::Body;
use http::header;

use crate::common::*;

#[tokio::test]
async fn admin_route_refuses_a_user() {
    let fx = fixture().await;
    let token = fx.token(&fx.alice).await;
    let r = fx
        .call(
            get_req("/admin")
                .header(header::AUTHORIZATION, bearer(&token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(
        403,
        Some(WWW_SCOPE),
        r#"{"error":"insufficient_scope","message":"This route requires the admin role."}"#,
    );
}

#[tokio::test]
async fn admin_route_admits_an_admin_by_token_or_session() {
    let fx = fixture().await;
    let token = fx.token(&fx.root).await;
    let r = fx
        .call(
            get_req("/admin")
                .header(header::AUTHORIZATION, bearer(&token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_ok();
    assert_eq!(r.body, "admin root");

    let (cookie, _) = fx.session(&fx.root).await;
    let r = fx
        .call(
            get_req("/admin")
                .header(header::COOKIE, fx.session_cookie(&cookie))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_ok();
}

#[tokio::test]
async fn role_guard_authenticates_first() {
    let fx = fixture().await;
    let r = fx
        .call(get_req("/admin").body(Body::empty()).unwrap())
        .await;
    r.assert_rejection(401, Some(WWW_REALM), MISSING);
    let r = fx
        .call(
            get_req("/admin")
                .header(header::AUTHORIZATION, bearer("x.y.z"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(401, Some(WWW_INVALID), INVALID);
}

#[tokio::test]
async fn custom_roles() {
    let fx = fixture().await;
    // An admin is not an editor: roles are names, not a hierarchy.
    let token = fx.token(&fx.root).await;
    let r = fx
        .call(
            get_req("/editor")
                .header(header::AUTHORIZATION, bearer(&token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(
        403,
        Some(WWW_SCOPE),
        r#"{"error":"insufficient_scope","message":"This route requires the editor role."}"#,
    );
}

#[tokio::test]
async fn extractors_work_on_an_app_state() {
    let fx = fixture().await;
    let app = app_state_router(AppState {
        auth: Arc::clone(&fx.state),
        greeting: "hi",
    });
    let token = fx.token(&fx.alice).await;
    let req = |uri: &str| {
        get_req(uri)
            .header(header::AUTHORIZATION, bearer(&token))
            .body(Body::empty())
            .unwrap()
    };
    let r = call(&app, req("/hello")).await;
    r.assert_ok();
    assert_eq!(r.body, "hi alice");
    assert_eq!(call(&app, req("/admin")).await.status.as_u16(), 403);
    assert_eq!(call(&app, req("/maybe")).await.body, "alice");
    let r = call(&app, get_req("/maybe").body(Body::empty()).unwrap()).await;
    assert_eq!(r.body, "nobody");
}
