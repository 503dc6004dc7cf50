//! `GET /api/buggy`: my buggy as JSON, by bearer token or session cookie.

use axum::body::Body;
use http::StatusCode;

use crate::common::*;

async fn api_with(fx: &Fx, authorization: &str) -> Reply {
    fx.call(
        get("/api/buggy")
            .header("authorization", authorization)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_bearer_token_reads_my_buggy() {
    let fx = fixture().await;
    fx.alice()
        .await
        .save_buggy(&[
            ("qty_wheels", "6"),
            ("qty_tyres", "6"),
            ("armour", "titanium"),
        ])
        .await
        .assert_redirect("/buggy?saved");

    let reply = api_with(&fx, &bearer(&fx.token(&fx.alice).await)).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let json = reply.json();
    assert_eq!(json["username"], "alice");
    assert_eq!(json["buggy"]["qty_wheels"], 6);
    assert_eq!(json["buggy"]["armour"], "titanium");
    assert_eq!(json["buggy"]["fireproof"], false);

    let json = api_with(&fx, &bearer(&fx.token(&fx.bob).await))
        .await
        .json();
    assert_eq!(json["username"], "bob");
    assert_eq!(json["buggy"]["qty_wheels"], 4);
    assert_eq!(json["buggy"]["armour"], "none");
}

#[tokio::test]
async fn a_session_cookie_reads_my_buggy_too() {
    let fx = fixture().await;
    let mut bob = fx.bob().await;
    let reply = bob.get("/api/buggy").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["username"], "bob");
    assert_eq!(reply.json()["buggy"]["power_type"], "petrol");
}

#[tokio::test]
async fn without_valid_credentials_the_api_is_401() {
    let fx = fixture().await;
    let reply = fx
        .call(get("/api/buggy").body(Body::empty()).unwrap())
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body, MISSING);
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="countersign""#)
    );

    for authorization in ["Bearer not.a.token", "Basic YWxpY2U6cHc=", "Bearer"] {
        let reply = api_with(&fx, authorization).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{authorization}");
        assert_eq!(reply.body, INVALID, "{authorization}");
    }

    // A token from another key.
    let other = buggy_race::AppState::in_memory(
        countersign::keys::SecretKey::generate(32).unwrap().0,
        &buggy_race::Options {
            hash_params: FAST,
            ..buggy_race::Options::default()
        },
    )
    .unwrap();
    let token = other
        .auth()
        .issue_tokens(&fx.alice)
        .await
        .unwrap()
        .access_token;
    let reply = api_with(&fx, &bearer(&token)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body, INVALID);

    // A revoked token.
    let token = fx.token(&fx.alice).await;
    fx.state.auth().revoke(&token).await.unwrap();
    assert_eq!(api_with(&fx, &bearer(&token)).await.body, INVALID);
}

#[tokio::test]
async fn the_html_page_sends_anonymous_visitors_to_log_in() {
    let fx = fixture().await;
    let reply = fx.call(get("/buggy").body(Body::empty()).unwrap()).await;
    reply.assert_redirect("/login");
    // An anonymous form post is refused by the CSRF guard before anything else.
    let reply = fx
        .call(
            form_post("/buggy")
                .body(Body::from(encode(&buggy_fields(&[]))))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}
