//! The router: every route of the HTTP contract (`docs/http.md`), and the layers around them.
//!
//! Layers, outermost first: a panic becomes a 500 (never expected; the handlers do not
//! unwrap); the [envelope](super::envelope) (a fresh request id, the request span and
//! access log, the request metrics, the request timeout, the security headers with
//! `Cache-Control: no-store` on every response); the body limit (413); then, around the
//! handlers of each route except the token endpoints (credentials in the body, no cookie
//! set) and the operations routes, the CSRF guard of `countersign-axum`. Unknown routes
//! (404) and methods a route does not take (405 with `Allow`) pass no guard.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::routing::{MethodRouter, delete, get, patch, post};
use countersign_axum::CsrfLayer;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use super::envelope::EnvelopeLayer;
use super::state::App;
use super::{api, mfa, ops, pages, passkeys, users, wellknown};

/// How long a request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `handler` behind the CSRF guard.
fn guard<H, T>(csrf: &CsrfLayer, handler: H) -> impl Handler<T, App>
where
    H: Handler<T, App>,
    T: 'static,
{
    handler.layer(csrf.clone())
}

/// The whole router, ready to serve.
pub fn router(app: App) -> Router {
    let refused = app.clone();
    let csrf = CsrfLayer::new(Arc::clone(&app.auth))
        .on_rejection(move |parts, rejection| pages::refused(&refused, parts, rejection));
    // The guard wraps the handlers of the guarded routes, not the routes: a method a route
    // does not take is 405 with `Allow` (`TRACE /login`), not a CSRF refusal, and an unknown
    // route is 404. Around each handler it costs no box of its own.
    let mut guarded: Vec<(&str, MethodRouter<App>)> = vec![
        ("/", get(guard(&csrf, pages::home))),
        (
            "/login",
            get(guard(&csrf, pages::login_form)).post(guard(&csrf, pages::login)),
        ),
        // The second step of a login (the challenge cookie and a code).
        (
            "/login/mfa",
            get(guard(&csrf, pages::mfa_form)).post(guard(&csrf, pages::mfa_submit)),
        ),
        (
            "/setup",
            get(guard(&csrf, pages::setup_form)).post(guard(&csrf, pages::setup)),
        ),
        (
            "/logout",
            get(guard(&csrf, pages::logout_page)).post(guard(&csrf, pages::logout)),
        ),
        ("/account/sessions", get(guard(&csrf, pages::sessions))),
        ("/account/security", get(guard(&csrf, pages::security))),
        (
            "/account/security/totp",
            post(guard(&csrf, pages::totp_begin)),
        ),
        (
            "/account/security/totp/confirm",
            post(guard(&csrf, pages::totp_confirm)),
        ),
        (
            "/account/security/totp/remove",
            post(guard(&csrf, pages::totp_remove)),
        ),
        (
            "/account/security/recovery-codes",
            post(guard(&csrf, pages::regenerate_codes)),
        ),
        (
            "/account/sessions/revoke",
            post(guard(&csrf, pages::revoke_session)),
        ),
        (
            "/account/sessions/revoke-all",
            post(guard(&csrf, pages::revoke_all)),
        ),
        ("/protected", get(guard(&csrf, api::protected))),
        ("/api/me", get(guard(&csrf, api::me))),
        ("/api/users", get(guard(&csrf, api::list_users))),
        (
            "/api/users/{username}/disable",
            post(guard(&csrf, users::disable_user)),
        ),
        (
            "/api/users/{username}/enable",
            post(guard(&csrf, users::enable_user)),
        ),
        ("/api/sessions", get(guard(&csrf, api::list_sessions))),
        (
            "/api/sessions/{id}",
            delete(guard(&csrf, api::revoke_session)),
        ),
        (
            "/api/sessions/revoke-all",
            post(guard(&csrf, api::revoke_all)),
        ),
        // Second factors: a signed-in user's authenticator app and recovery codes.
        ("/api/account/mfa", get(guard(&csrf, mfa::status))),
        (
            "/api/account/mfa/totp",
            post(guard(&csrf, mfa::totp_begin)).delete(guard(&csrf, mfa::totp_remove)),
        ),
        (
            "/api/account/mfa/totp/confirm",
            post(guard(&csrf, mfa::totp_confirm)),
        ),
        (
            "/api/account/mfa/recovery-codes",
            post(guard(&csrf, mfa::regenerate_codes)),
        ),
        // Passkeys (WebAuthn): a signed-in user's, and the passwordless login of the
        // login page (its pre-session CSRF token).
        ("/api/account/passkeys", get(guard(&csrf, passkeys::list))),
        (
            "/api/account/passkeys/register/begin",
            post(guard(&csrf, passkeys::register_begin)),
        ),
        (
            "/api/account/passkeys/register/finish",
            post(guard(&csrf, passkeys::register_finish)),
        ),
        (
            "/api/account/passkeys/{id}",
            patch(guard(&csrf, passkeys::rename)).delete(guard(&csrf, passkeys::remove)),
        ),
        (
            "/api/passkey/login/begin",
            post(guard(&csrf, passkeys::login_begin)),
        ),
        (
            "/api/passkey/login/finish",
            post(guard(&csrf, passkeys::login_finish)),
        ),
        // The second step of a browser login with a passkey (the challenge cookie).
        (
            "/login/mfa/passkey/begin",
            post(guard(&csrf, passkeys::mfa_begin)),
        ),
        (
            "/login/mfa/passkey",
            post(guard(&csrf, passkeys::mfa_finish)),
        ),
    ];
    // Routes outside the CSRF guard: the token endpoints take credentials in the body and
    // set no cookie; the operations routes change nothing. Every other route is guarded.
    let mut unguarded: Vec<(&str, MethodRouter<App>)> = vec![
        ("/api/token", post(api::token)),
        ("/api/token/refresh", post(api::refresh)),
        ("/api/token/revoke", post(api::revoke)),
        // The second step after `POST /api/token` answered `mfa_required`.
        ("/api/token/mfa", post(mfa::token)),
        // Passkeys for API clients: credentials in the body, a token pair back.
        ("/api/token/passkey/begin", post(passkeys::login_begin)),
        ("/api/token/passkey", post(passkeys::token_finish)),
        (
            "/api/token/mfa/passkey/begin",
            post(passkeys::mfa_token_begin),
        ),
        ("/api/token/mfa/passkey", post(passkeys::mfa_token_finish)),
        ("/passkeys.js", get(passkeys::script)),
        ("/healthz", get(ops::healthz)),
        ("/readyz", get(ops::readyz)),
        ("/metrics", get(ops::metrics)),
        ("/openapi.json", get(ops::openapi)),
        // Forward authentication: GET only, asked by proxies, changes nothing.
        ("/auth/request", get(super::forward::auth_request)),
        ("/auth/forward", get(super::forward::auth_forward)),
        (wellknown::JWKS_PATH, get(wellknown::jwks)),
        (
            "/.well-known/openid-configuration",
            get(wellknown::discovery),
        ),
        (
            "/.well-known/oauth-authorization-server",
            get(wellknown::discovery),
        ),
    ];
    if app.registration_open() {
        guarded.push((
            "/register",
            get(guard(&csrf, pages::register_form)).post(guard(&csrf, pages::register)),
        ));
    } else {
        // Closed, `/register` answers its two methods as an unknown route does, and any
        // other method 405 like every route of the document.
        unguarded.push(("/register", get(ops::not_found).post(ops::not_found)));
    }
    let routes = guarded
        .into_iter()
        .chain(unguarded)
        .fold(Router::new(), |router, (path, route)| {
            router.route(path, route)
        });
    // `--require-mfa`: users of those roles without a second factor reach only enrolment.
    let routes = if app.site.require_mfa.is_empty() {
        routes
    } else {
        routes.layer(axum::middleware::from_fn_with_state(
            app.clone(),
            super::require_mfa::enforce,
        ))
    };
    // The Flask bridge, when on: a Flask session cookie becomes a countersign session
    // before any handler reads the request.
    let routes = if app.site.flask.is_some() {
        routes.layer(axum::middleware::from_fn_with_state(
            app.clone(),
            super::flask::exchange,
        ))
    } else {
        routes
    };
    let max_body = app.site.max_body_bytes;
    routes
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        // One `layer` call for all three: axum boxes each layer it is given around every
        // route, and each box costs a request an allocation and a clone.
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(ops::panic_response))
                .layer(EnvelopeLayer::new(
                    REQUEST_TIMEOUT,
                    pages::content_security_policy().clone(),
                ))
                .layer(DefaultBodyLimit::max(max_body)),
        )
        .with_state(app)
}
