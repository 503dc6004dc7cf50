//! A bad buggy form is a 4xx with its errors shown in the form (never a 500), everything
//! escaped, and the stored buggy unchanged.

use axum::body::Body;
use http::StatusCode;

use crate::common::*;

#[tokio::test]
async fn an_odd_wheel_count_is_422_with_the_message_in_the_form() {
    let fx = fixture().await;
    let mut alice = fx.alice().await;
    let reply = alice
        .save_buggy(&[("qty_wheels", "5"), ("qty_tyres", "6")])
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{reply:?}");
    assert!(reply.body.contains("Number of wheels must be even."));
    assert!(reply.body.contains("please fix this problem"));
    // Next to its field, which keeps what was typed and is marked invalid.
    assert!(
        reply
            .body
            .contains(r#"id="qty_wheels-error">Number of wheels must be even.</p>"#)
    );
    assert_eq!(reply.field("qty_wheels"), "5");
    assert!(
        reply
            .body
            .contains(r#"aria-invalid="true" aria-describedby="qty_wheels-error""#)
    );
    // The other values stay as submitted, and the form can be sent again.
    assert_eq!(reply.field("qty_tyres"), "6");
    assert!(!reply.csrf().is_empty());
    assert_eq!(fx.buggy_of(&fx.alice).qty_wheels, 4);
}

#[tokio::test]
async fn each_rule_has_its_message() {
    let fx = fixture().await;
    let mut alice = fx.alice().await;
    for (changes, message) in [
        (
            &[("qty_wheels", "2")][..],
            "Number of wheels must be at least 4.",
        ),
        (&[("qty_wheels", "")][..], "Number of wheels is required."),
        (
            &[("qty_wheels", "four")][..],
            "Number of wheels must be a whole number.",
        ),
        (
            &[("qty_wheels", "1000000")][..],
            "Number of wheels must be at most 100.",
        ),
        (
            &[("qty_wheels", "8"), ("qty_tyres", "6")][..],
            "Number of tyres must be at least the number of wheels (8).",
        ),
        (
            &[("power_units", "0")][..],
            "Units of power must be at least 1.",
        ),
        (
            &[("flag_color", "plaid")][..],
            "Choose a flag colour from the list.",
        ),
        (
            &[("power_type", "nuclear")][..],
            "Choose a power type from the list.",
        ),
        (
            &[
                ("flag_pattern", "spot"),
                ("flag_color", "red"),
                ("flag_color_secondary", "red"),
            ][..],
            "A patterned flag needs a secondary colour that differs from the main colour.",
        ),
    ] {
        let reply = alice.save_buggy(changes).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{changes:?}"
        );
        assert!(reply.body.contains(message), "{changes:?}: {}", reply.body);
    }
    let reply = alice
        .save_buggy(&[("qty_wheels", "3"), ("algo", "fast"), ("armour", "")])
        .await;
    assert!(
        reply.body.contains("please fix these 3 problems"),
        "{}",
        reply.body
    );
    assert_eq!(fx.buggy_of(&fx.alice), buggy_race::buggy::Buggy::default());
}

#[tokio::test]
async fn submitted_markup_is_escaped() {
    let fx = fixture().await;
    let mut alice = fx.alice().await;
    let evil = r#""><script>alert(1)</script>"#;
    let reply = alice
        .save_buggy(&[("qty_wheels", evil), ("flag_color", evil)])
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!reply.body.contains("<script>"), "{}", reply.body);
    assert_eq!(
        reply.field("qty_wheels"),
        "&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;"
    );
    assert!(reply.body.contains("Choose a flag colour from the list."));
}

#[tokio::test]
async fn unreadable_forms_are_4xx() {
    let fx = fixture().await;
    let mut alice = fx.alice().await;
    let token = alice.csrf().await;
    // Not a form (the token in the header gets it past the guard).
    let reply = alice
        .send(
            http::Request::builder()
                .method("POST")
                .uri("/buggy")
                .header("host", HOST)
                .header("content-type", "application/json")
                .header("x-csrf-token", &token),
            Body::from(r#"{"qty_wheels": 6}"#),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{reply:?}"
    );
    assert!(reply.body.contains("The form could not be read"));
    // A field given twice.
    let mut fields = buggy_fields(&[("csrf_token", &token)]);
    fields.push(("qty_wheels", "6"));
    let reply = alice.post_form("/buggy", &fields).await;
    assert!(reply.status.is_client_error(), "{reply:?}");
    // Missing fields are reported as such, not as a crash.
    let reply = alice.post_form("/buggy", &[("csrf_token", &token)]).await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.body.contains("Number of wheels is required."));
    // Over the guard's form limit.
    let big = "x".repeat(70 * 1024);
    let reply = alice
        .post_form(
            "/buggy",
            &buggy_fields(&[("csrf_token", &token), ("padding", &big)]),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(fx.buggy_of(&fx.alice).qty_wheels, 4);
}
