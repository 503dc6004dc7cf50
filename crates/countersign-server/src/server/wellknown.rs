//! `/.well-known/jwks.json` (RFC 7517) and the discovery documents
//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0) and
//! `/.well-known/oauth-authorization-server` (RFC 8414).
//!
//! Both are made from the engine's [`TokenKeys`](countersign::jwt::TokenKeys) in memory,
//! public, and cacheable: `Cache-Control: public, max-age=N` with N the key set's max-age
//! (which is also the least time between staging a key and promoting it, so a verifier
//! that cached the set before a key was staged has fetched it again before that key
//! signs). The JWK Set carries a strong `ETag` and answers `If-None-Match` with 304.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::state::App;

/// The path of the JWK Set.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

fn cache_control(max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={max_age}"))
        .unwrap_or_else(|_| HeaderValue::from_static("no-store"))
}

/// `GET /.well-known/jwks.json`: the public keys (current, staged, retired), never a
/// private or symmetric key; `{"keys": []}` while HS256 signs.
pub async fn jwks(State(app): State<App>, request: HeaderMap) -> Response {
    let keys = app.engine().token_keys();
    let published = keys.jwks();
    let etag = HeaderValue::from_str(&published.etag)
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        cache_control(keys.jwks_max_age_secs()),
    );
    headers.insert(header::ETAG, etag);
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == published.etag);
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (headers, published.body.clone()).into_response()
}

/// `GET /.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`:
/// where the keys and the token endpoints are. 404 when no issuer is known (only before
/// `serve` has bound its address).
pub async fn discovery(State(app): State<App>) -> Response {
    let keys = app.engine().token_keys();
    let Some(issuer) = keys.issuer() else {
        return ApiError::not_found("No issuer is configured.").into_response();
    };
    let algs: Vec<&str> = keys
        .public_algorithms()
        .into_iter()
        .map(|a| a.as_str())
        .collect();
    let base = issuer.trim_end_matches('/');
    let body = json!({
        "issuer": issuer,
        "jwks_uri": format!("{base}{JWKS_PATH}"),
        "token_endpoint": format!("{base}/api/token"),
        "revocation_endpoint": format!("{base}/api/token/revoke"),
        "grant_types_supported": ["password", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "access_token_signing_alg_values_supported": algs,
    });
    (
        [(
            header::CACHE_CONTROL,
            cache_control(keys.jwks_max_age_secs()),
        )],
        Json(body),
    )
        .into_response()
}
