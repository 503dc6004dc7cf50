//! Signing in and out with a session cookie, done once so every app gets the security
//! details right: a new session id at every sign-in (the session the browser had ends, so a
//! fixated id is worthless), the cookie's lifetime equal to the session's absolute
//! lifetime, and a sign-out that deletes the server-side record before clearing the cookie
//! (so a copied cookie is refused afterwards).

use axum::http::HeaderValue;
use countersign::auth::{Method, Principal};
use countersign::store::StoreError;
use countersign::user::User;

use crate::AuthState;

/// The `Set-Cookie` headers a response must carry after signing in.
#[derive(Debug)]
pub struct SignedIn {
    /// The new session cookie.
    pub session_cookie: HeaderValue,
    /// Deletes the pre-session CSRF cookie, no longer needed.
    pub clear_csrf_cookie: HeaderValue,
}

impl SignedIn {
    /// Append both `Set-Cookie` headers to a response.
    pub fn apply(self, response: &mut axum::response::Response) {
        let headers = response.headers_mut();
        headers.append(axum::http::header::SET_COOKIE, self.session_cookie);
        headers.append(axum::http::header::SET_COOKIE, self.clear_csrf_cookie);
    }
}

/// Start a session for `user`, who has just proved who they are. The session the request
/// came with (`current`), if any, ends first.
///
/// # Errors
/// When the session store fails (answer 503).
pub async fn sign_in(
    state: &AuthState,
    current: Option<&Principal>,
    user: &User,
    user_agent: &str,
    address: &str,
) -> Result<SignedIn, StoreError> {
    if let Some(Principal {
        method: Method::Session { key, .. },
        ..
    }) = current
    {
        state.auth.end_session(key).await?;
    }
    let (cookie, _) = state.auth.start_session(user, user_agent, address).await?;
    let max_age = state.auth.config().sessions.absolute_secs;
    Ok(SignedIn {
        session_cookie: state.cookies.session_cookie(&cookie, max_age),
        clear_csrf_cookie: state.cookies.clear_csrf_cookie(),
    })
}

/// End the request's session, if it has one, and return the `Set-Cookie` that clears the
/// session cookie (send it in any case).
///
/// # Errors
/// When the session store fails (answer 503; the cookie is left alone so the user can
/// try again).
pub async fn sign_out(
    state: &AuthState,
    current: Option<&Principal>,
) -> Result<HeaderValue, StoreError> {
    if let Some(Principal {
        method: Method::Session { key, .. },
        ..
    }) = current
    {
        state.auth.end_session(key).await?;
    }
    Ok(state.cookies.clear_session_cookie())
}
