//! "The other user can't see your buggy; you can't see theirs": whose buggy a request
//! reads or changes comes from the authenticated user, and nothing in a request can name
//! another user's.

use axum::body::Body;
use buggy_race::buggy::{Buggy, Color, FlagPattern, PowerType};
use http::{Request, StatusCode};

use crate::common::*;

/// alice's buggy after she saves it in `alice_sets_her_buggy`.
fn alices() -> Buggy {
    Buggy {
        qty_wheels: 8,
        qty_tyres: 10,
        power_type: PowerType::Hamster,
        power_units: 3,
        flag_color: Color::Red,
        flag_pattern: FlagPattern::Checker,
        flag_color_secondary: Color::Yellow,
        fireproof: true,
        ..Buggy::default()
    }
}

const ALICES_FIELDS: &[(&str, &str)] = &[
    ("qty_wheels", "8"),
    ("qty_tyres", "10"),
    ("power_type", "hamster"),
    ("power_units", "3"),
    ("flag_color", "red"),
    ("flag_pattern", "checker"),
    ("flag_color_secondary", "yellow"),
    ("fireproof", "on"),
];

async fn alice_sets_her_buggy(fx: &Fx) -> Browser {
    let mut alice = fx.alice().await;
    let reply = alice.save_buggy(ALICES_FIELDS).await;
    reply.assert_redirect("/buggy?saved");
    assert_eq!(fx.buggy_of(&fx.alice), alices());
    alice
}

#[tokio::test]
async fn alice_sets_her_buggy_and_sees_it() {
    let fx = fixture().await;
    let mut alice = alice_sets_her_buggy(&fx).await;
    let page = alice.get("/buggy?saved").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Your buggy was saved."));
    assert_eq!(page.field("qty_wheels"), "8");
    assert_eq!(page.field("qty_tyres"), "10");
    assert_eq!(page.selected("power_type").as_deref(), Some("hamster"));
    assert_eq!(page.selected("flag_pattern").as_deref(), Some("checker"));
    assert!(page.body.contains(r#"name="fireproof" checked"#));
    let page = alice.get("/buggy").await;
    assert!(!page.body.contains("Your buggy was saved."));
}

#[tokio::test]
async fn bob_sees_his_own_default_buggy_not_alices() {
    let fx = fixture().await;
    alice_sets_her_buggy(&fx).await;
    let mut bob = fx.bob().await;
    let page = bob.get("/buggy").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Logged in as <strong>bob</strong>"));
    assert_eq!(page.field("qty_wheels"), "4");
    assert_eq!(page.selected("power_type").as_deref(), Some("petrol"));
    assert!(!page.body.contains("hamster\" selected"));
    assert!(!page.body.contains(r#"name="fireproof" checked"#));
    let api = bob.get("/api/buggy").await;
    assert_eq!(api.json()["username"], "bob");
    assert_eq!(api.json()["buggy"]["qty_wheels"], 4);
    // Asking for alice's by id or name, in the query, changes nothing.
    for uri in [
        format!("/buggy?user_id={}", fx.alice.id),
        "/buggy?username=alice&owner=alice".to_owned(),
    ] {
        let reply = bob.get(&uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
        assert_eq!(reply.field("qty_wheels"), "4", "{uri}");
        assert_eq!(
            reply.selected("power_type").as_deref(),
            Some("petrol"),
            "{uri}"
        );
    }
    let api = bob
        .get(&format!(
            "/api/buggy?user_id={}&username=alice",
            fx.alice.id
        ))
        .await;
    assert_eq!(api.json()["username"], "bob");
    assert_eq!(api.json()["buggy"]["power_type"], "petrol");
}

#[tokio::test]
async fn bobs_requests_never_change_alices_buggy() {
    let fx = fixture().await;
    let mut alice = alice_sets_her_buggy(&fx).await;
    let mut bob = fx.bob().await;
    let alice_id = fx.alice.id.to_string();

    // A valid form with every way of naming alice's buggy there could be.
    let token = bob.csrf().await;
    let mut fields = buggy_fields(&[("qty_wheels", "6"), ("qty_tyres", "6")]);
    fields.extend([
        ("csrf_token", token.as_str()),
        ("user_id", alice_id.as_str()),
        ("id", alice_id.as_str()),
        ("owner", "alice"),
        ("username", "alice"),
        ("sub", alice_id.as_str()),
    ]);
    let uri = format!("/buggy?user_id={alice_id}&username=alice");
    bob.post_form(&uri, &fields)
        .await
        .assert_redirect("/buggy?saved");
    assert_eq!(fx.buggy_of(&fx.bob).qty_wheels, 6, "bob changed his own");
    assert_eq!(fx.buggy_of(&fx.alice), alices());

    // Routes that would name a buggy do not exist.
    for uri in [
        format!("/buggy/{alice_id}"),
        "/buggy/alice".to_owned(),
        format!("/api/buggy/{alice_id}"),
        format!("/api/buggies/{alice_id}"),
        format!("/admin/buggies/{alice_id}"),
    ] {
        let token = bob.csrf().await;
        let reply = bob
            .post_form(&uri, &buggy_fields(&[("csrf_token", &token)]))
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}: {reply:?}");
        assert_eq!(bob.get(&uri).await.status, StatusCode::NOT_FOUND, "{uri}");
    }
    let token = bob.csrf().await;
    let reply = bob
        .post_form("/admin/buggies", &buggy_fields(&[("csrf_token", &token)]))
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);

    // Refused requests of bob's: no token, an invalid buggy.
    let reply = bob.post_form("/buggy", &buggy_fields(&[])).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let reply = bob.save_buggy(&[("qty_wheels", "3")]).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(fx.buggy_of(&fx.alice), alices());
    let api = alice.get("/api/buggy").await;
    assert_eq!(api.json()["buggy"]["qty_wheels"], 8);
    assert_eq!(api.json()["buggy"]["power_type"], "hamster");
}

#[tokio::test]
async fn a_bearer_post_changes_only_the_bearers_buggy() {
    let fx = fixture().await;
    alice_sets_her_buggy(&fx).await;
    let token = fx.token(&fx.bob).await;
    // No CSRF token: a bearer request is exempt (a browser never attaches one itself).
    let fields = buggy_fields(&[
        ("qty_wheels", "12"),
        ("qty_tyres", "12"),
        ("owner", "alice"),
    ]);
    let reply = fx
        .call(
            form_post("/buggy")
                .header("authorization", bearer(&token))
                .body(Body::from(encode(&fields)))
                .unwrap(),
        )
        .await;
    reply.assert_redirect("/buggy?saved");
    assert_eq!(fx.buggy_of(&fx.bob).qty_wheels, 12);
    assert_eq!(fx.buggy_of(&fx.alice), alices());
}

#[tokio::test]
async fn every_user_starts_with_the_default_buggy() {
    let fx = fixture().await;
    for user in [&fx.alice, &fx.bob, &fx.admin] {
        assert_eq!(fx.buggy_of(user), Buggy::default());
    }
    let mut admin = fx.admin_browser().await;
    alice_sets_her_buggy(&fx).await;
    // The admin's own buggy is theirs alone, too.
    assert_eq!(admin.get("/buggy").await.field("qty_wheels"), "4");
    let reply = fx
        .call(Request::get("/api/buggy").body(Body::empty()).unwrap())
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}
