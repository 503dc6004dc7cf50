//! `--require-mfa ROLES`: a user of such a role who signed in without a second factor
//! reaches only what it takes to enrol one (the security page and its API, logout, the
//! login pages, public pages); everything else answers 403 `mfa_required`, and a browser
//! navigating to a page is sent to `/account/security` instead. Forward authentication
//! applies the same rule in its own answers (`forward.rs`), since a proxy only
//! understands 200, 401 and 403.
//!
//! The layer exists only when the setting names a role: without it, requests pay nothing.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use countersign_axum::{AuthRejection, MaybeAuthenticated, wants_html};

use super::state::App;

/// Paths a user who must enrol can still reach: prefixes of whole segments.
const OPEN: &[&str] = &[
    "/account/security",
    "/api/account/mfa",
    "/api/account/passkeys",
    "/api/passkey",
    "/api/me",
    "/api/token",
    "/api/revoke",
    "/login",
    "/logout",
    "/setup",
    "/register",
    "/static",
    "/assets",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/.well-known",
    "/auth/request",
    "/auth/forward",
    "/favicon.ico",
];

/// Whether `path` is `prefix` or below it.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether a user of `role` who signed in without a second factor must enrol first.
pub fn must_enrol(app: &App, role: &str, mfa: bool) -> bool {
    !mfa && app.site.require_mfa.iter().any(|r| r.as_str() == role)
}

/// The layer's function.
pub async fn enforce(State(app): State<App>, request: Request, next: Next) -> Response {
    if OPEN
        .iter()
        .any(|prefix| under(request.uri().path(), prefix))
    {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    // The extractors keep what they resolved in the request's extensions: the handler's
    // own extractor does not look the credential up again.
    let principal = match MaybeAuthenticated::from_request_parts(&mut parts, &app).await {
        Ok(MaybeAuthenticated(p)) => p,
        Err(rejection) => return rejection.respond_to(&parts),
    };
    if let Some(p) = principal
        && must_enrol(&app, &p.role, p.is_mfa())
    {
        tracing::info!(user = %p.username, path = parts.uri.path(), "second factor required: sent to enrol");
        if parts.method == Method::GET && wants_html(&parts) {
            return Redirect::to("/account/security?required=1").into_response();
        }
        return AuthRejection::MfaRequired.respond_to(&parts);
    }
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_paths_are_whole_segments() {
        assert!(under("/account/security", "/account/security"));
        assert!(under("/api/account/mfa/totp", "/api/account/mfa"));
        assert!(!under("/account/securityx", "/account/security"));
        assert!(!under("/api/tokens", "/api/token"));
        assert!(under("/login/mfa", "/login"));
        assert!(!under("/", "/login"));
    }
}
