//! The JSON API: `/protected`, tokens (`/api/token`, refresh, revoke), `/api/me` and the
//! session index.
//!
//! Failures of the credential itself (no token, bad token, ended session, CSRF) are the
//! `countersign-axum` rejections, exactly as `docs/http.md`'s failure table says. Everything
//! else that goes wrong is an [`ApiError`]: `{"error": <code>, "message": <sentence>}`
//! with a 4xx status for anything the client sent (malformed JSON 400, wrong field types
//! 422, unsupported media type 415, too large 413) and `Retry-After` on 429 and 503.

use axum::Json;
use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection};
use axum::extract::{Form, FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use countersign::auth::{Method, Principal, RefreshError};
use countersign::password::Password;
use countersign::session::SessionKey;
use countersign::user::UserId;
use countersign_axum::{Admin, Authenticated, RequireRole};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroize;

use super::error::{ApiError, INVALID_CREDENTIALS, mfa_required};
use super::login::{self, Outcome, Via};
use super::state::{App, ClientAddr};
use crate::display::rfc3339;

fn json_rejection(r: &JsonRejection) -> ApiError {
    let status = r.status();
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => unsupported_media_type(),
        _ => ApiError::new(
            if status.is_client_error() {
                status
            } else {
                StatusCode::BAD_REQUEST
            },
            "invalid_request",
            r.body_text(),
        ),
    }
}

fn form_rejection(r: &FormRejection) -> ApiError {
    let status = r.status();
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => unsupported_media_type(),
        _ => ApiError::new(
            if status.is_client_error() {
                status
            } else {
                StatusCode::BAD_REQUEST
            },
            "invalid_request",
            r.body_text(),
        ),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "The request body is too large.",
    )
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "Send application/json or application/x-www-form-urlencoded.",
    )
}

/// A body that may be JSON or a URL-encoded form, by its `Content-Type`.
#[derive(Debug)]
pub struct JsonOrForm<T>(pub T);

impl<S, T> FromRequest<S> for JsonOrForm<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let essence = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if essence == "application/json" || essence.ends_with("+json") {
            Json::<T>::from_request(request, state)
                .await
                .map(|Json(v)| Self(v))
                .map_err(|r| json_rejection(&r))
        } else if essence == "application/x-www-form-urlencoded" {
            Form::<T>::from_request(request, state)
                .await
                .map(|Form(v)| Self(v))
                .map_err(|r| form_rejection(&r))
        } else {
            Err(unsupported_media_type())
        }
    }
}

async fn require_user_id(app: &App, principal: &Principal) -> Result<UserId, ApiError> {
    app.user_id_of(principal).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "This credential names no account here.",
        )
    })
}

/// `GET /protected`: the seeds' greeting, for a bearer token or a session.
pub async fn protected(Authenticated(user): Authenticated) -> Json<Greeting> {
    Json(Greeting {
        message: format!(
            "Hello {}, you have access to this protected route.",
            user.username
        ),
    })
}

/// `GET /protected`'s body, the seeds' greeting (typed: serialized straight to bytes).
#[derive(Serialize)]
pub struct Greeting {
    message: String,
}

/// `POST /api/token`'s body. The password is a [`Password`]: wiped when dropped,
/// redacted in `Debug`.
#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    username: String,
    password: Password,
    #[serde(default)]
    grant_type: Option<String>,
}

/// The answer with a token pair (`POST /api/token` and the routes that end a login).
pub fn token_pair(pair: &countersign::auth::TokenPair) -> Json<Value> {
    Json(json!({
        "access_token": pair.access_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
        "refresh_token": pair.refresh_token.as_str(),
    }))
}

/// `POST /api/token`: username and password (JSON or form) for an access token and a
/// refresh token; for a user with a second factor, 401 `mfa_required` with the
/// `mfa_token` that `POST /api/token/mfa` takes with a code.
///
/// # Errors
/// 401 `invalid_grant` for bad credentials, 401 `mfa_required`, 429 when throttled, 503
/// when hashing is at capacity, 4xx for a malformed body.
pub async fn token(
    State(app): State<App>,
    ClientAddr(address): ClientAddr,
    body: Result<JsonOrForm<TokenRequest>, ApiError>,
) -> Result<Response, ApiError> {
    let JsonOrForm(mut request) = body?;
    if let Some(grant) = request.grant_type.as_deref()
        && grant != "password"
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only the password grant is supported here; refresh at /api/token/refresh.",
        ));
    }
    let password = std::mem::take(&mut request.password);
    match login::attempt(&app, &request.username, password, &address, Via::Api).await {
        Outcome::Success(user) => {
            if let Some(challenge) = login::challenge(&app, &user, Via::Api).await? {
                return Ok(mfa_required(&challenge));
            }
            let pair = app.engine().issue_tokens(&user).await?;
            Ok(token_pair(&pair).into_response())
        }
        Outcome::Invalid => Err(ApiError::invalid_grant(INVALID_CREDENTIALS)),
        Outcome::Throttled(secs) => Err(ApiError::throttled(secs)),
        Outcome::Busy => Err(ApiError::busy()),
        Outcome::Failed(e) => Err(ApiError::store(&e)),
    }
}

/// `POST /api/token/refresh`'s body.
#[derive(Deserialize)]
pub struct RefreshRequest {
    refresh_token: String,
}

impl Drop for RefreshRequest {
    fn drop(&mut self) {
        self.refresh_token.zeroize();
    }
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshRequest([redacted])")
    }
}

/// `POST /api/token/refresh`: a refresh token for a new pair; the old one is retired, and
/// presenting a retired one again revokes its whole family.
///
/// # Errors
/// 401 `invalid_grant` for an unknown, expired, revoked or reused token.
pub async fn refresh(
    State(app): State<App>,
    body: Result<JsonOrForm<RefreshRequest>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let JsonOrForm(request) = body?;
    match app.engine().refresh(&request.refresh_token).await {
        Ok(pair) => {
            metrics::counter!("countersign_refreshes_total", "outcome" => "success").increment(1);
            Ok(token_pair(&pair))
        }
        Err(RefreshError::Reused) => {
            tracing::warn!("refresh token reused: its family is revoked");
            metrics::counter!("countersign_refreshes_total", "outcome" => "reused").increment(1);
            Err(ApiError::invalid_grant(
                "This refresh token was already used; every token of its login is now revoked. \
                 Log in again.",
            ))
        }
        Err(RefreshError::Store(e)) => Err(ApiError::store(&e)),
        Err(_) => {
            metrics::counter!("countersign_refreshes_total", "outcome" => "invalid").increment(1);
            Err(ApiError::invalid_grant("Invalid or expired refresh token"))
        }
    }
}

/// `POST /api/token/revoke`'s body (RFC 7009 §2.1; a `token_type_hint` is accepted and
/// not needed: the token's form tells).
#[derive(Deserialize)]
pub struct RevokeRequest {
    token: String,
}

impl Drop for RevokeRequest {
    fn drop(&mut self) {
        self.token.zeroize();
    }
}

impl std::fmt::Debug for RevokeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RevokeRequest([redacted])")
    }
}

/// `POST /api/token/revoke`: revoke a refresh token (its family) or an access token (its
/// `jti`). 200 whether or not the token was known (RFC 7009 §2.2).
///
/// # Errors
/// A malformed body (4xx) or a store failure (503).
pub async fn revoke(
    State(app): State<App>,
    body: Result<JsonOrForm<RevokeRequest>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let JsonOrForm(request) = body?;
    app.engine().revoke(&request.token).await?;
    Ok(Json(json!({})))
}

/// `GET /api/me`: who the credential is, and how it authenticated: the credential
/// (`auth`), and how and when the user proved who they are (`amr`, RFC 8176, and
/// `auth_time`, seconds since the epoch, `null` when the credential does not say).
///
/// # Errors
/// None beyond the extractor's rejections.
pub async fn me(Authenticated(user): Authenticated) -> Json<Value> {
    let mut body = json!({
        "username": user.username,
        "role": user.role,
        "user_id": user.user_id.map(|id| id.0),
        "amr": user.amr.names().collect::<Vec<_>>(),
        "auth_time": user.auth_time.map(|t| t.secs()),
    });
    match &user.method {
        Method::Bearer { exp, jti } => {
            body["auth"] = json!("bearer");
            body["expires_at"] = json!(rfc3339(*exp));
            body["jti"] = json!(jti);
        }
        Method::Session { key, csrf_token } => {
            body["auth"] = json!("session");
            body["session_id"] = json!(key.as_str());
            // For scripts on this origin: the value for `X-CSRF-Token`.
            body["csrf_token"] = json!(csrf_token);
        }
    }
    Json(body)
}

/// `GET /api/sessions`: my live sessions, newest first.
///
/// # Errors
/// A store failure (503).
pub async fn list_sessions(
    State(app): State<App>,
    Authenticated(user): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let id = require_user_id(&app, &user).await?;
    let current = match &user.method {
        Method::Session { key, .. } => Some(key),
        Method::Bearer { .. } => None,
    };
    let sessions: Vec<Value> = app
        .engine()
        .list_sessions(id)
        .await?
        .into_iter()
        .map(|r| {
            json!({
                "id": r.key.as_str(),
                "created_at": rfc3339(r.created_at),
                "last_seen": rfc3339(r.last_seen),
                "expires_at": rfc3339(r.expires_at()),
                "ip": r.ip,
                "user_agent": r.user_agent,
                "current": current == Some(&r.key),
            })
        })
        .collect();
    Ok(Json(json!({ "sessions": sessions })))
}

fn cleared_if_current(
    app: &App,
    user: &Principal,
    ended: Option<&SessionKey>,
    mut response: Response,
) -> Response {
    let current = match &user.method {
        Method::Session { key, .. } => Some(key),
        Method::Bearer { .. } => None,
    };
    if current.is_some() && (ended.is_none() || ended == current) {
        response
            .headers_mut()
            .append(header::SET_COOKIE, app.auth.cookies.clear_session_cookie());
    }
    response
}

/// `DELETE /api/sessions/{id}`: end one of my sessions. 204, or 404 when I have no such
/// session (another user's session is "no such session").
///
/// # Errors
/// 404, or a store failure (503).
pub async fn revoke_session(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let no_such = || ApiError::not_found("You have no session with that id.");
    let key = id
        .ok()
        .and_then(|Path(id)| SessionKey::parse(&id))
        .ok_or_else(no_such)?;
    let owner = require_user_id(&app, &user).await?;
    if !app.engine().revoke_session(owner, &key).await? {
        return Err(no_such());
    }
    tracing::info!(user = %user.username, session = %key, "session revoked");
    let response = StatusCode::NO_CONTENT.into_response();
    Ok(cleared_if_current(&app, &user, Some(&key), response))
}

/// `POST /api/sessions/revoke-all`: log out everywhere: every session, refresh token and
/// access token of mine.
///
/// # Errors
/// A store failure (503).
pub async fn revoke_all(
    State(app): State<App>,
    Authenticated(user): Authenticated,
) -> Result<Response, ApiError> {
    let owner = require_user_id(&app, &user).await?;
    let n = app.engine().logout_everywhere(owner).await?;
    tracing::info!(user = %user.username, sessions = n, "logged out everywhere");
    let response = Json(json!({ "revoked_sessions": n })).into_response();
    Ok(cleared_if_current(&app, &user, None, response))
}

/// `GET /api/users`: every account (admins only; 403 `insufficient_scope` for others).
///
/// # Errors
/// A store failure (503).
pub async fn list_users(
    State(app): State<App>,
    RequireRole(_admin): RequireRole<Admin>,
) -> Result<Json<Value>, ApiError> {
    let users: Vec<Value> = app
        .engine()
        .list_users()
        .await?
        .into_iter()
        .map(|u| {
            json!({
                "id": u.id.0,
                "username": u.username.as_str(),
                "role": u.role.as_str(),
                "created_at": rfc3339(u.created_at),
                "disabled": u.disabled,
            })
        })
        .collect();
    Ok(Json(json!({ "users": users })))
}
