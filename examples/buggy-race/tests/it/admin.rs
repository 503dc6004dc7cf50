//! `GET /admin/buggies`: every user's buggy, for the `admin` role only.

use axum::body::Body;
use http::StatusCode;

use crate::common::*;

#[tokio::test]
async fn bob_gets_403() {
    let fx = fixture().await;
    let mut bob = fx.bob().await;
    let reply = bob.get("/admin/buggies").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    assert!(reply.body.contains("Admins only"));
    assert!(reply.body.contains("Logged in as <strong>bob</strong>"));
    assert!(!reply.body.contains("<table>"));
    // No link to it on his pages either.
    assert!(!bob.get("/buggy").await.body.contains("/admin/buggies"));

    let token = fx.token(&fx.bob).await;
    let reply = fx
        .call(
            get("/admin/buggies")
                .header("authorization", bearer(&token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_admin_sees_everyones_buggy() {
    let fx = fixture().await;
    let mut alice = fx.alice().await;
    alice
        .save_buggy(&[
            ("qty_wheels", "10"),
            ("qty_tyres", "12"),
            ("flag_color", "purple"),
        ])
        .await
        .assert_redirect("/buggy?saved");
    let mut bob = fx.bob().await;
    bob.save_buggy(&[
        ("qty_wheels", "6"),
        ("qty_tyres", "7"),
        ("power_type", "steam"),
    ])
    .await
    .assert_redirect("/buggy?saved");

    let mut admin = fx.admin_browser().await;
    assert!(
        admin
            .get("/buggy")
            .await
            .body
            .contains(r#"href="/admin/buggies""#)
    );
    let page = admin.get("/admin/buggies").await;
    assert_eq!(page.status, StatusCode::OK, "{page:?}");
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let row = |name: &str| {
        let start = page
            .body
            .find(&format!(r#"<th scope="row">{name}</th>"#))
            .unwrap_or_else(|| panic!("no row for {name}: {}", page.body));
        let end = start + page.body[start..].find("</tr>").unwrap();
        page.body[start..end].to_owned()
    };
    let a = row("alice");
    assert!(a.contains("<td>10</td>"), "{a}");
    assert!(a.contains("12 × knobbly"), "{a}");
    assert!(a.contains("plain, purple"), "{a}");
    let b = row("bob");
    assert!(b.contains("<td>6</td>"), "{b}");
    assert!(b.contains("1 × steam"), "{b}");
    let own = row("admin");
    assert!(own.contains("<td>4</td>"), "{own}");
    assert!(own.contains("<td>admin</td>"), "{own}");

    // By bearer token too.
    let token = fx.token(&fx.admin).await;
    let reply = fx
        .call(
            get("/admin/buggies")
                .header("authorization", bearer(&token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.contains(r#"<th scope="row">alice</th>"#));
    assert!(!reply.body.contains("/logout"), "no session to end");
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_log_in() {
    let fx = fixture().await;
    let mut b = fx.browser();
    b.get("/admin/buggies").await.assert_redirect("/login");

    // A dead session cookie: to the login page, and the cookie is cleared.
    b.jar.insert(SESSION.to_owned(), "forged.value".to_owned());
    let reply = b.get("/admin/buggies").await;
    reply.assert_redirect("/login");
    assert!(b.session().is_none(), "{reply:?}");

    // A bad bearer token is an API client's mistake: the library's 401.
    let reply = fx
        .call(
            get("/admin/buggies")
                .header("authorization", "Bearer not.a.token")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body, INVALID);
}
