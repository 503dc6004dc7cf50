//! The router: every route of the HTTP contract (`docs/http.md`), and the layers around them.
//!
//! Layers, outermost first: a panic becomes a 500 (never expected; the handlers do not
//! unwrap); the [envelope](super::envelope) (a fresh request id, the request span and
//! access log, the request metrics, the request timeout, the security headers with
//! `Cache-Control: no-store` on every response); the body limit (413); the CSRF guard of
//! `countersign-axum`, which every route passes except the token endpoints (credentials in
//! the body, no cookie set), the operations routes and unknown routes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodRouter, delete, get, post};
use countersign_axum::CsrfLayer;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use super::envelope::EnvelopeLayer;
use super::state::App;
use super::{api, ops, pages, users, wellknown};

/// How long a request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The whole router, ready to serve.
pub fn router(app: App) -> Router {
    let mut browser = Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/setup", get(pages::setup_form).post(pages::setup))
        .route("/logout", get(pages::logout_page).post(pages::logout))
        .route("/account/sessions", get(pages::sessions))
        .route("/account/sessions/revoke", post(pages::revoke_session))
        .route("/account/sessions/revoke-all", post(pages::revoke_all))
        .route("/protected", get(api::protected))
        .route("/api/me", get(api::me))
        .route("/api/users", get(api::list_users))
        .route("/api/users/{username}/disable", post(users::disable_user))
        .route("/api/users/{username}/enable", post(users::enable_user))
        .route("/api/sessions", get(api::list_sessions))
        .route("/api/sessions/{id}", delete(api::revoke_session))
        .route("/api/sessions/revoke-all", post(api::revoke_all));
    if app.registration_open() {
        browser = browser.route("/register", get(pages::register_form).post(pages::register));
    }
    // Routes outside the CSRF guard: the token endpoints take credentials in the body and
    // set no cookie; the operations routes change nothing. Every other route is guarded.
    let unguarded: [(&str, MethodRouter<App>); 12] = [
        ("/api/token", post(api::token)),
        ("/api/token/refresh", post(api::refresh)),
        ("/api/token/revoke", post(api::revoke)),
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
    let skipped: Vec<&str> = unguarded.iter().map(|(path, _)| *path).collect();
    let open = unguarded
        .into_iter()
        .fold(Router::new(), |router, (path, route)| {
            router.route(path, route)
        });
    // The Flask bridge, when on: a Flask session cookie becomes a countersign session
    // before any handler reads the request.
    if app.site.flask.is_some() {
        browser = browser.layer(axum::middleware::from_fn_with_state(
            app.clone(),
            super::flask::exchange,
        ));
    }
    let max_body = app.site.max_body_bytes;
    let refused = app.clone();
    let csrf = CsrfLayer::new(Arc::clone(&app.auth))
        .skip_routes(skipped)
        .skip_unmatched()
        .on_rejection(move |parts, rejection| pages::refused(&refused, parts, rejection));
    Router::new()
        .merge(browser)
        .merge(open)
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        // One `layer` call for all four: axum boxes each layer it is given around every
        // route, and each box costs a request an allocation and a clone.
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(ops::panic_response))
                .layer(EnvelopeLayer::new(
                    REQUEST_TIMEOUT,
                    pages::content_security_policy().clone(),
                ))
                .layer(DefaultBodyLimit::max(max_body))
                .layer(csrf),
        )
        .with_state(app)
}
