//! `RequireMfa` and `RequireFreshAuth`: by token and by session, RFC 9470 answers.

use axum::body::Body;
use countersign::auth::Authentication;
use countersign::mfa::Amr;
use http::header;

use crate::common::*;

const WWW_MFA: &str = r#"Bearer realm="countersign", error="insufficient_user_authentication", error_description="A second factor is required""#;

fn two_factors(fx: &Fx) -> Authentication {
    Authentication {
        amr: Amr::PWD.with(Amr::OTP),
        auth_time: fx.auth.now(),
    }
}

async fn get_with(fx: &Fx, path: &str, name: header::HeaderName, value: String) -> Reply {
    fx.call(
        get_req(path)
            .header(name, value)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn mfa_routes_refuse_a_password_login_and_admit_a_second_factor() {
    let fx = fixture().await;
    let token = fx.token(&fx.alice).await;
    let r = get_with(&fx, "/mfa", header::AUTHORIZATION, bearer(&token)).await;
    r.assert_rejection(
        401,
        Some(WWW_MFA),
        r#"{"error":"mfa_required","message":"This requires a second factor: sign in with your authenticator or passkey."}"#,
    );
    let pair = fx
        .auth
        .issue_tokens_with(&fx.alice, two_factors(&fx))
        .await
        .unwrap();
    let r = get_with(
        &fx,
        "/mfa",
        header::AUTHORIZATION,
        bearer(&pair.access_token),
    )
    .await;
    r.assert_ok();
    assert_eq!(r.body, "mfa alice");

    let (cookie, _) = fx.session(&fx.alice).await;
    let r = get_with(&fx, "/mfa", header::COOKIE, fx.session_cookie(&cookie)).await;
    assert_eq!(r.status, 401);
    let (cookie, _) = fx
        .auth
        .start_session_with(&fx.alice, two_factors(&fx), "ua", "ip")
        .await
        .unwrap();
    let r = get_with(&fx, "/mfa", header::COOKIE, fx.session_cookie(&cookie)).await;
    r.assert_ok();
    // Without credentials it is a 401 of the usual kind, not a step-up.
    let r = fx.call(get_req("/mfa").body(Body::empty()).unwrap()).await;
    r.assert_rejection(401, Some(WWW_REALM), MISSING);
}

#[tokio::test]
async fn fresh_routes_admit_a_recent_sign_in_only() {
    let fx = fixture().await;
    let token = fx.token(&fx.alice).await;
    let (cookie, _) = fx.session(&fx.alice).await;
    for (name, value) in [
        (header::AUTHORIZATION, bearer(&token)),
        (header::COOKIE, fx.session_cookie(&cookie)),
    ] {
        let r = get_with(&fx, "/fresh", name, value).await;
        r.assert_ok();
        assert_eq!(r.body, "fresh alice");
    }
    fx.clock.advance(301);
    // A new sign-in is fresh again.
    let fresh_token = fx.token(&fx.alice).await;
    for (name, value) in [
        (header::AUTHORIZATION, bearer(&token)),
        (header::COOKIE, fx.session_cookie(&cookie)),
    ] {
        let r = get_with(&fx, "/fresh", name, value).await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(
            r.header("www-authenticate"),
            Some(
                r#"Bearer realm="countersign", error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="300""#
            )
        );
        assert_eq!(r.json()["error"], "reauthentication_required");
    }
    let r = get_with(&fx, "/fresh", header::AUTHORIZATION, bearer(&fresh_token)).await;
    r.assert_ok();
}
