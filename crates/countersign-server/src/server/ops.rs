//! Operations routes (`/healthz`, `/readyz`, `/metrics`, `/openapi.json`) and the
//! answers for unknown routes, wrong methods and (never expected) panics.

use std::any::Any;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use countersign::auth::CacheMode;
use serde_json::json;

use super::error::ApiError;
use super::state::App;

/// The OpenAPI 3.1 description of the HTTP contract.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `GET /healthz`'s body.
#[derive(serde::Serialize)]
pub struct Health {
    status: &'static str,
}

/// The word `/readyz` uses for the hot-path cache ([`CacheMode`]).
pub fn cache_word(mode: CacheMode) -> &'static str {
    match mode {
        CacheMode::Off => "off",
        CacheMode::Local => "local",
        CacheMode::Subscribed => "subscribed",
        // Any later kind: say the cache cannot be trusted to be in use.
        _ => "bypassed",
    }
}

/// `GET /readyz`: 200 when the user store and the session store answer, else 503. `cache`
/// says how the hot-path cache stands: `subscribed` (push invalidation live), `bypassed`
/// (not subscribed: every request reads the store; still ready, only slower), `local`
/// (no channel: SQLite) or `off`.
pub async fn readyz(State(app): State<App>) -> Response {
    let readiness = app.engine().readiness().await;
    let word = |r: &Result<(), _>| if r.is_ok() { "ok" } else { "unavailable" };
    let body = json!({
        "status": if readiness.is_ready() { "ready" } else { "unavailable" },
        "users": word(&readiness.users),
        "sessions": word(&readiness.sessions),
        "cache": cache_word(app.engine().cache_mode()),
    });
    for e in [readiness.users.err(), readiness.sessions.err()]
        .into_iter()
        .flatten()
    {
        tracing::warn!(error = %e, "readiness check failed");
    }
    if body["status"] == "ready" {
        Json(body).into_response()
    } else {
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        response
    }
}

/// `GET /metrics`: Prometheus text exposition (404 when no recorder is installed).
pub async fn metrics(State(app): State<App>) -> Response {
    let Some(handle) = &app.site.metrics else {
        return ApiError::not_found("Metrics are not enabled.").into_response();
    };
    let stats = app.engine().hashing_stats();
    // Depth is a small count; f64 holds it exactly.
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!("countersign_hash_queue_depth").set(stats.depth as f64);
    metrics::counter!("countersign_password_verifications_total").absolute(stats.verifications);
    let bypassed = app.engine().cache_mode() == CacheMode::Bypassed;
    metrics::gauge!("countersign_cache_bypassed").set(if bypassed { 1.0 } else { 0.0 });
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response()
}

/// `GET /openapi.json`.
pub async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

/// Any unknown route: 404 JSON.
pub async fn not_found() -> ApiError {
    ApiError::not_found("No such route.")
}

/// A known route with the wrong method: 405 JSON.
pub async fn method_not_allowed() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        error: "method_not_allowed",
        message: "This route does not take that method.".into(),
        retry_after: None,
    }
}

/// A handler panicked (a bug): 500 JSON, logged without the request.
pub fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response<Body> {
    tracing::error!("a request handler panicked");
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        error: "server_error",
        message: "Something went wrong on our side.".into(),
        retry_after: None,
    }
    .into_response()
}
