//! Step-up guards: routes that need a second factor, or a recent sign-in (RFC 9470).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;

use countersign::auth::Principal;

use crate::extract::{AuthState, Authenticated};
use crate::rejection::AuthRejection;

/// The user of a request, who must have signed in with a second factor (the session's or
/// token's `amr` holds `mfa`): as [`Authenticated`], then [`AuthRejection::MfaRequired`]
/// (401, `WWW-Authenticate: Bearer error="insufficient_user_authentication"`).
///
/// # Examples
/// ```
/// use countersign_axum::RequireMfa;
///
/// async fn billing(RequireMfa(user): RequireMfa) -> String {
///     format!("{} signed in with two factors", user.username)
/// }
/// ```
#[derive(Clone, Debug)]
pub struct RequireMfa(pub Principal);

impl<S> FromRequestParts<S> for RequireMfa
where
    Arc<AuthState>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        if principal.is_mfa() {
            return Ok(Self(principal));
        }
        tracing::debug!(amr = ?principal.amr, "second factor missing");
        let rejection = AuthRejection::MfaRequired;
        rejection.count();
        Err(rejection)
    }
}

/// The user of a request, who must have proved who they are at most `MAX_AGE_SECS`
/// seconds ago (the session's or token's `auth_time`: the sign-in, or a later step-up):
/// as [`Authenticated`], then [`AuthRejection::StaleAuthentication`] (401, with
/// `max_age` in `WWW-Authenticate`). A token without `auth_time` is never fresh.
/// Combine it with [`RequireMfa`] when the proof must include a second factor.
///
/// # Examples
/// ```
/// use countersign_axum::{RequireFreshAuth, RequireMfa};
///
/// // Changing the password: signed in with two factors within the last five minutes.
/// async fn change_password(
///     RequireFreshAuth(user): RequireFreshAuth<300>,
///     _: RequireMfa,
/// ) -> String {
///     format!("{} may change the password", user.username)
/// }
/// ```
#[derive(Clone, Debug)]
pub struct RequireFreshAuth<const MAX_AGE_SECS: i64>(pub Principal);

impl<S, const MAX_AGE_SECS: i64> FromRequestParts<S> for RequireFreshAuth<MAX_AGE_SECS>
where
    Arc<AuthState>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        let now = Arc::<AuthState>::from_ref(state).auth.now();
        if principal.authenticated_within(MAX_AGE_SECS, now) {
            return Ok(Self(principal));
        }
        tracing::debug!(max_age = MAX_AGE_SECS, "authentication too old");
        let rejection = AuthRejection::StaleAuthentication {
            max_age: MAX_AGE_SECS,
        };
        rejection.count();
        Err(rejection)
    }
}
