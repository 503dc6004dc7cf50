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
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use countersign::auth::{Auth, AuthConfig};
use countersign::clock::Clock;
use countersign::keys::KeyRing;
use countersign::password::{Hasher, HashingPool};
use countersign::store::{EphemeralStore, UserStore};
use countersign_axum::{AuthState, CookieConfig, CsrfLayer};
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use super::envelope::EnvelopeLayer;
use super::{api, ops, pages, wellknown};
use crate::cli::Registration;
use crate::settings::ServeConfig;

/// How long a request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The router's state: the engine (inside the extractors' [`AuthState`]) and the site's
/// settings.
#[derive(Clone, Debug)]
pub struct App {
    /// What the `countersign-axum` extractors and CSRF guard use.
    pub auth: Arc<AuthState>,
    /// Everything else the handlers need.
    pub site: Arc<Site>,
}

/// Site settings the handlers read.
#[derive(Debug)]
pub struct Site {
    /// Whether `/register` is open.
    pub registration: Registration,
    /// The Prometheus exposition of the process's metrics recorder, when one is installed.
    pub metrics: Option<PrometheusHandle>,
    /// The largest request body, bytes.
    pub max_body_bytes: usize,
    /// The Flask bridge (`--flask-bridge`), when on.
    pub flask: Option<countersign::flask::bridge::FlaskBridge>,
    /// Forward authentication: the access rules, the return-URL allow-list, assertions.
    pub forward: super::forward::ForwardAuth,
}

impl FromRef<App> for Arc<AuthState> {
    fn from_ref(app: &App) -> Self {
        Arc::clone(&app.auth)
    }
}

impl App {
    /// The service for `config`, over these stores, keys and clock.
    ///
    /// # Errors
    /// When argon2 refuses the configured cost parameters.
    pub fn new(
        config: &ServeConfig,
        ring: KeyRing,
        users: Arc<dyn UserStore>,
        store: Arc<dyn EphemeralStore>,
        clock: Arc<dyn Clock>,
        metrics: Option<PrometheusHandle>,
    ) -> anyhow::Result<Self> {
        let pool = HashingPool::new(
            Hasher::new(config.hash_params)?,
            config.hash_workers,
            config.hash_queue,
        )?;
        let auth_config: AuthConfig = config.auth_config();
        let auth = Arc::new(Auth::new(ring, auth_config, users, store, pool, clock));
        let auth = Arc::new(AuthState {
            auth,
            cookies: {
                let cookies = if config.insecure_cookies {
                    CookieConfig::insecure()
                } else {
                    CookieConfig::secure()
                };
                match &config.forward.cookie_domain {
                    Some(domain) => cookies.with_domain(domain)?,
                    None => cookies,
                }
            },
            allowed_origins: config
                .allowed_origins
                .iter()
                .chain(&config.public_urls)
                .cloned()
                .collect(),
            trusted_proxies: config.trusted_proxies.clone(),
        });
        Ok(Self {
            auth,
            site: Arc::new(Site {
                registration: config.registration,
                metrics,
                max_body_bytes: config.max_body_bytes,
                flask: config.flask.clone(),
                forward: super::forward::ForwardAuth::new(
                    config.forward.access.clone(),
                    &config.public_urls,
                    crate::redirect::ReturnTo::new(&config.public_urls, &config.forward.domains),
                ),
            }),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Auth> {
        &self.auth.auth
    }

    /// Whether `/register` is open.
    pub fn registration_open(&self) -> bool {
        self.site.registration == Registration::Open
    }
}

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
                .layer(EnvelopeLayer::new(REQUEST_TIMEOUT))
                .layer(DefaultBodyLimit::max(max_body))
                .layer(csrf),
        )
        .with_state(app)
}

/// The client's address (after the trusted-proxy rules) and `User-Agent`, as the library
/// extracts them.
pub use countersign_axum::{ClientAddr, UserAgent};

/// A 303 to `location`.
pub fn see_other(location: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}
