//! The router: every row of DESIGN.md's HTTP contract, and the layers around them.
//!
//! Layers, outermost first: a panic becomes a 500 (never expected; the handlers do not
//! unwrap); a fresh request id (`x-request-id`, never the client's, so logs cannot be
//! forged); the request span and access log (method, path and status only: no header,
//! cookie, query or body is ever logged); the latency histogram; the security headers
//! (`Cache-Control: no-store` on every response, since nearly all of them concern a
//! credential); a request timeout; the body limit (413). Routes for browsers sit behind
//! the CSRF guard of `countersign-axum`; the token endpoints, which take credentials in
//! the body and set no cookie, and the operations routes sit outside it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use countersign::auth::{Auth, AuthConfig};
use countersign::clock::Clock;
use countersign::keys::KeyRing;
use countersign::password::{Hasher, HashingPool};
use countersign::store::{EphemeralStore, UserStore};
use countersign_axum::{AuthState, CookieConfig, csrf_guard};
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::Level;

use super::{api, ops, pages};
use crate::cli::Registration;
use crate::settings::ServeConfig;

/// How long a request may take before it is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The response header carrying the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

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
            cookies: CookieConfig {
                secure: !config.insecure_cookies,
            },
            allowed_origins: config.allowed_origins.clone(),
        });
        Ok(Self {
            auth,
            site: Arc::new(Site {
                registration: config.registration,
                metrics,
                max_body_bytes: config.max_body_bytes,
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
        .route("/logout", post(pages::logout))
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
    let browser = browser.layer(middleware::from_fn_with_state(
        Arc::clone(&app.auth),
        csrf_guard,
    ));
    let open = Router::new()
        .route("/api/token", post(api::token))
        .route("/api/token/refresh", post(api::refresh))
        .route("/api/token/revoke", post(api::revoke))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi));
    let max_body = app.site.max_body_bytes;
    Router::new()
        .merge(browser)
        .merge(open)
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(record_latency))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_request(DefaultOnRequest::new().level(Level::DEBUG))
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                .on_failure(DefaultOnFailure::new().level(Level::ERROR)),
        )
        .layer(middleware::from_fn(request_id))
        .layer(CatchPanicLayer::custom(ops::panic_response))
        .with_state(app)
}

/// The span of a request: its id, method and path. Deliberately no headers (they carry
/// tokens and cookies) and no query string.
fn make_span(request: &Request) -> tracing::Span {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

/// A fresh request id on the request (for the span) and the response (for the client).
/// A client's own `x-request-id` is replaced: it would let anyone write into the logs.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = countersign::random::token_id();
    // Invariant: `token_id` is base64url text, always a valid header value.
    let value = HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("-"));
    request.headers_mut().insert(REQUEST_ID, value.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID, value);
    response
}

/// Headers on every response.
///
/// `Cache-Control: no-store` everywhere (auth answers must never sit in a shared cache);
/// a content security policy that allows nothing but the pages' own inline style (by
/// hash) and form posts to this origin; no framing, no sniffing, no referrer to others.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        pages::content_security_policy().clone(),
    );
    response
}

/// `countersign_http_requests_total` and `countersign_http_request_duration_seconds`, by
/// method, route (the pattern, never the raw path) and status.
async fn record_latency(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("countersign_http_requests_total", &labels).increment(1);
    metrics::histogram!("countersign_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    response
}

/// The client's address, for throttling and the session list: the peer of the TCP
/// connection. `unknown` when the server was not started with connect info (tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |info| info.0.ip().to_string());
        Ok(Self(addr))
    }
}

/// The request's `User-Agent`, for the session list (truncated by the engine).
#[derive(Clone, Debug, Default)]
pub struct UserAgent(pub String);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ua = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(Self(ua))
    }
}

/// A 303 to `location`.
pub fn see_other(location: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}
