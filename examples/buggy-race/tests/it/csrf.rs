//! Every cookie-authenticated state change needs its CSRF token (countersign-axum's guard
//! in front of the app's router).

use axum::body::Body;
use http::StatusCode;

use crate::common::*;

#[tokio::test]
async fn a_buggy_post_without_the_token_is_403() {
    let fx = fixture().await;
    let mut alice = fx.alice().await;
    let reply = alice
        .post_form(
            "/buggy",
            &buggy_fields(&[("qty_wheels", "6"), ("qty_tyres", "6")]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body, CSRF_FAILED);
    let reply = alice
        .post_form(
            "/buggy",
            &buggy_fields(&[("qty_wheels", "6"), ("qty_tyres", "6"), ("csrf_token", "")]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(fx.buggy_of(&fx.alice).qty_wheels, 4);
}

#[tokio::test]
async fn another_sessions_token_is_refused() {
    let fx = fixture().await;
    let mut alice = fx.alice().await;
    let mut bob = fx.bob().await;
    let bobs = bob.csrf().await;
    let reply = alice
        .post_form(
            "/buggy",
            &buggy_fields(&[
                ("qty_wheels", "6"),
                ("qty_tyres", "6"),
                ("csrf_token", &bobs),
            ]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(fx.buggy_of(&fx.alice).qty_wheels, 4);
    assert_eq!(fx.buggy_of(&fx.bob).qty_wheels, 4);
}

#[tokio::test]
async fn cross_site_requests_are_refused_even_with_the_token() {
    let fx = fixture().await;
    let mut alice = fx.alice().await;
    let token = alice.csrf().await;
    let body = encode(&buggy_fields(&[
        ("qty_wheels", "6"),
        ("qty_tyres", "6"),
        ("csrf_token", &token),
    ]));
    // The request arrives over plain HTTP (no TLS in process) at `Host: buggy.example`:
    // its own origin is `http://buggy.example`, whatever the cookie settings.
    for (name, value) in [
        ("origin", "https://evil.example"),
        // Another scheme is another origin.
        ("origin", "https://buggy.example"),
        // What sandboxed frames and `data:` pages send.
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let reply = alice
            .send(
                form_post("/buggy").header(name, value),
                Body::from(body.clone()),
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{name}: {value}");
    }
    assert_eq!(fx.buggy_of(&fx.alice).qty_wheels, 4);
    // The app's own origin is fine.
    let reply = alice
        .send(
            form_post("/buggy").header("origin", format!("http://{HOST}")),
            Body::from(body),
        )
        .await;
    reply.assert_redirect("/buggy?saved");
    assert_eq!(fx.buggy_of(&fx.alice).qty_wheels, 6);
    // So is `Origin: null` when the browser says same-origin: a page under
    // `Referrer-Policy: no-referrer` posts that way.
    let body = encode(&buggy_fields(&[
        ("qty_wheels", "8"),
        ("qty_tyres", "8"),
        ("csrf_token", &token),
    ]));
    let reply = alice
        .send(
            form_post("/buggy")
                .header("origin", "null")
                .header("sec-fetch-site", "same-origin"),
            Body::from(body),
        )
        .await;
    reply.assert_redirect("/buggy?saved");
    assert_eq!(fx.buggy_of(&fx.alice).qty_wheels, 8);
}

#[tokio::test]
async fn the_login_form_needs_its_pre_session_token() {
    let fx = fixture().await;
    // No pre-session cookie at all.
    let mut b = fx.browser();
    let reply = b
        .post_form(
            "/login",
            &[
                ("csrf_token", "made-up"),
                ("username", "alice"),
                ("password", PW),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(b.session().is_none());
    // A cookie, but a token that is not its pair.
    let mut b = fx.browser();
    let token = b.get("/login").await.csrf();
    let mut other = fx.browser();
    let others = other.get("/login").await.csrf();
    assert_ne!(token, others);
    let reply = b
        .post_form(
            "/login",
            &[
                ("csrf_token", &others),
                ("username", "alice"),
                ("password", PW),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    // No token field.
    let reply = b
        .post_form("/login", &[("username", "alice"), ("password", PW)])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(b.session().is_none());
}

#[tokio::test]
async fn logout_needs_the_token() {
    let fx = fixture().await;
    let mut alice = fx.alice().await;
    let reply = alice.post_form("/logout", &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    // Still logged in.
    let page = alice.get("/buggy").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Logged in as <strong>alice</strong>"));
}
