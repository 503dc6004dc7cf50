//! Bearer tokens: every row of the contract's failure table for tokens, and precedence.

use axum::body::Body;
use countersign::keys::{KeyRing, SecretKey};
use http::{HeaderValue, header};

use crate::common::*;

#[tokio::test]
async fn no_credentials_is_missing_token() {
    let fx = fixture().await;
    let r = fx
        .call(get_req("/protected").body(Body::empty()).unwrap())
        .await;
    r.assert_rejection(401, Some(WWW_REALM), MISSING);
    assert!(r.set_cookies().is_empty());
}

#[tokio::test]
async fn empty_authorization_header_is_missing_token() {
    // The seeds' `if not token`: an empty header is a missing token.
    let fx = fixture().await;
    let r = fx
        .call(
            get_req("/protected")
                .header(header::AUTHORIZATION, "")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(401, Some(WWW_REALM), MISSING);
}

#[tokio::test]
async fn valid_token_is_admitted() {
    let fx = fixture().await;
    let token = fx.token(&fx.alice).await;
    let r = fx
        .call(
            get_req("/protected")
                .header(header::AUTHORIZATION, bearer(&token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_ok();
    assert_eq!(
        r.body,
        r#"{"message":"Hello alice, you have access to this protected route."}"#
    );
}

#[tokio::test]
async fn scheme_is_case_insensitive() {
    let fx = fixture().await;
    let token = fx.token(&fx.alice).await;
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        let r = fx
            .call(
                get_req("/protected")
                    .header(header::AUTHORIZATION, format!("{scheme} {token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        r.assert_ok();
    }
}

#[tokio::test]
async fn expired_token() {
    let fx = fixture().await;
    let token = fx.token(&fx.alice).await;
    // Past the 15-minute lifetime and the 30-second leeway.
    fx.clock.advance(15 * 60 + 31);
    let r = fx
        .call(
            get_req("/protected")
                .header(header::AUTHORIZATION, bearer(&token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(401, Some(WWW_EXPIRED), EXPIRED);
}

#[tokio::test]
async fn bad_tokens_are_invalid_and_say_nothing_more() {
    let fx = fixture().await;
    let token = fx.token(&fx.alice).await;
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let foreign_ring = KeyRing::single(SecretKey::generate(32).unwrap().0);
    let foreign = {
        let mut claims = countersign::jwt::Claims::new(START.add_secs(600));
        claims.username = Some("alice".to_owned());
        claims.role = Some("admin".to_owned());
        countersign::jwt::encode(&foreign_ring, &claims)
    };
    let cases = [
        bearer(&tampered),
        bearer(&foreign),
        bearer("not.a.jwt"),
        bearer(&"a".repeat(9 * 1024)),
        format!("Basic {}", "YWxpY2U6cGFzc3dvcmQ="),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {token} extra"),
        format!("Token {token}"),
        token.clone(),
    ];
    for value in cases {
        let r = fx
            .call(
                get_req("/protected")
                    .header(header::AUTHORIZATION, &value)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        r.assert_rejection(401, Some(WWW_INVALID), INVALID);
    }
}

#[tokio::test]
async fn non_utf8_and_repeated_headers_are_invalid() {
    let fx = fixture().await;
    let token = fx.token(&fx.alice).await;
    let r = fx
        .call(
            get_req("/protected")
                .header(
                    header::AUTHORIZATION,
                    HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(401, Some(WWW_INVALID), INVALID);

    let r = fx
        .call(
            get_req("/protected")
                .header(header::AUTHORIZATION, bearer(&token))
                .header(header::AUTHORIZATION, bearer(&token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(401, Some(WWW_INVALID), INVALID);
}

#[tokio::test]
async fn revoked_token_is_invalid() {
    let fx = fixture().await;
    let token = fx.token(&fx.alice).await;
    fx.auth.revoke(&token).await.unwrap();
    let r = fx
        .call(
            get_req("/protected")
                .header(header::AUTHORIZATION, bearer(&token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(401, Some(WWW_INVALID), INVALID);

    // Logout everywhere revokes every token issued before it.
    let token = fx.token(&fx.root).await;
    fx.auth.logout_everywhere(fx.root.id).await.unwrap();
    let r = fx
        .call(
            get_req("/protected")
                .header(header::AUTHORIZATION, bearer(&token))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(401, Some(WWW_INVALID), INVALID);
}

#[tokio::test]
async fn bearer_wins_over_cookie() {
    let fx = fixture().await;
    let (cookie, _) = fx.session(&fx.root).await;
    let token = fx.token(&fx.alice).await;

    // Both valid: the token's user, not the cookie's.
    let r = fx
        .call(
            get_req("/protected")
                .header(header::AUTHORIZATION, bearer(&token))
                .header(header::COOKIE, fx.session_cookie(&cookie))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_ok();
    assert!(r.body.contains("Hello alice"), "{}", r.body);

    // A bad token is not rescued by a good cookie.
    let r = fx
        .call(
            get_req("/protected")
                .header(header::AUTHORIZATION, bearer("garbage"))
                .header(header::COOKIE, fx.session_cookie(&cookie))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_rejection(401, Some(WWW_INVALID), INVALID);
    // And the good cookie is not cleared.
    assert!(r.set_cookies().is_empty());
    // The session was never looked at.
    assert_eq!(fx.store.calls("load_session"), 0);
}
