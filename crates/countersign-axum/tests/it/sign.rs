//! `sign_in` / `sign_out`: a fresh session id at every sign-in, the old one ended; the
//! record deleted at sign-out.

use countersign::auth::{Auth, SessionError};
use countersign_axum::{sign_in, sign_out};

use crate::common::fixture;

fn cookie_value(header: &axum::http::HeaderValue) -> String {
    let text = header.to_str().unwrap();
    let (_, rest) = text.split_once('=').unwrap();
    rest.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn sign_in_replaces_the_old_session_and_clears_the_csrf_cookie() {
    let fx = fixture().await;
    let first = sign_in(&fx.state, None, &fx.alice, "ua", "127.0.0.1")
        .await
        .unwrap();
    let first_value = cookie_value(&first.session_cookie);
    let first_record = fx.auth.session(&first_value).await.unwrap();
    let first_principal = Auth::principal_from_session(&first_record);

    let second = sign_in(
        &fx.state,
        Some(&first_principal),
        &fx.alice,
        "ua",
        "127.0.0.1",
    )
    .await
    .unwrap();
    let second_value = cookie_value(&second.session_cookie);
    assert_ne!(first_value, second_value);
    assert!(matches!(
        fx.auth.session(&first_value).await,
        Err(SessionError::Invalid)
    ));
    assert!(fx.auth.session(&second_value).await.is_ok());

    let session = second.session_cookie.to_str().unwrap();
    assert!(session.starts_with("__Host-countersign="), "{session}");
    assert!(session.contains(&format!(
        "Max-Age={}",
        fx.auth.config().sessions.absolute_secs
    )));
    let csrf = second.clear_csrf_cookie.to_str().unwrap();
    assert!(csrf.starts_with("__Host-countersign-csrf=;"), "{csrf}");
    assert!(csrf.contains("Max-Age=0"), "{csrf}");
}

#[tokio::test]
async fn sign_out_deletes_the_record_so_a_copied_cookie_is_refused() {
    let fx = fixture().await;
    let signed = sign_in(&fx.state, None, &fx.alice, "ua", "127.0.0.1")
        .await
        .unwrap();
    let value = cookie_value(&signed.session_cookie);
    let principal = Auth::principal_from_session(&fx.auth.session(&value).await.unwrap());
    let clear = sign_out(&fx.state, Some(&principal)).await.unwrap();
    assert!(clear.to_str().unwrap().contains("Max-Age=0"));
    assert!(matches!(
        fx.auth.session(&value).await,
        Err(SessionError::Invalid)
    ));
    // Signing out without a session still clears the cookie.
    assert!(sign_out(&fx.state, None).await.is_ok());
}

#[test]
fn cookie_values_print_as_sensitive() {
    let config = countersign_axum::CookieConfig::secure();
    let value = config.clear_session_cookie();
    assert!(value.is_sensitive());
    assert_eq!(format!("{value:?}"), "Sensitive");
}
