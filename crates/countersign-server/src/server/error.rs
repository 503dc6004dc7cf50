//! The errors handlers answer with, and the messages more than one handler gives.
//!
//! [`ApiError`] is the JSON API's answer: `{"error": <code>, "message": <sentence>}` with a
//! status, and `Retry-After` on 429 and 503 (`docs/http.md`). The pages render their own
//! errors as HTML, with the same sentences.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use countersign::auth::{MfaChallenge, MfaError, MfaMethods};
use countersign::store::StoreError;
use serde_json::json;

/// The message shown for bad credentials (the contract's text).
pub const INVALID_CREDENTIALS: &str = "Invalid username or password";

/// Seconds a client should wait when the hashing pool is full.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// A JSON error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The `error` member: a stable code.
    pub error: &'static str,
    /// The `message` member: for people.
    pub message: Cow<'static, str>,
    /// `Retry-After`, seconds.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An answer with this status, code and message.
    pub fn new(
        status: StatusCode,
        error: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            error,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401 `invalid_grant`: bad credentials or refresh token.
    pub fn invalid_grant(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_grant", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 429 `too_many_requests` with `Retry-After`.
    pub fn throttled(retry_after: i64) -> Self {
        let secs = u64::try_from(retry_after.max(1)).unwrap_or(1);
        Self {
            retry_after: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!("Too many failed attempts. Try again in {secs} seconds."),
            )
        }
    }

    /// 503 `temporarily_unavailable` with `Retry-After` (the hashing pool is full).
    pub fn busy() -> Self {
        Self {
            retry_after: Some(BUSY_RETRY_AFTER_SECS),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The server is busy. Try again in a moment.",
            )
        }
    }

    /// A store failure: 503 with `Retry-After` when unreachable, else 500. Logged here.
    pub fn store(e: &StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        if e.is_unavailable() {
            Self {
                retry_after: Some(BUSY_RETRY_AFTER_SECS),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "Storage is temporarily unavailable. Try again shortly.",
                )
            }
        } else {
            Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "Something went wrong on our side.",
            )
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::store(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "message": self.message });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The `message` of a 401 `mfa_required` from `POST /api/token`.
pub const MFA_REQUIRED: &str = "The password is right; this account also needs a second factor. \
     Send the mfa_token with a code to /api/token/mfa.";

/// 401 `mfa_required` of `POST /api/token` for a user with a second factor: the sealed
/// challenge as `mfa_token` (valid `expires_in` seconds, once) and the `methods` it can be
/// answered with (`totp`, `webauthn`, `recovery`).
pub fn mfa_required(challenge: &MfaChallenge) -> Response {
    let body = json!({
        "error": "mfa_required",
        "message": MFA_REQUIRED,
        "mfa_token": challenge.token.as_str(),
        "expires_in": challenge.expires_in,
        "methods": challenge.methods.names(),
    });
    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
}

/// 403 `mfa_required` of a change that needs a fresh second factor (step-up): `message`
/// says what was wrong (no code, or a code that is not valid), `methods` what may answer.
pub fn step_up_required(message: &'static str, methods: &MfaMethods) -> Response {
    let body = json!({
        "error": "mfa_required",
        "message": message,
        "methods": methods.names(),
    });
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

/// The JSON answer for a second-factor failure outside the login's own flow (enrolment,
/// step-up), for the errors every route answers alike: throttled 429, store 503/500;
/// `None` for the ones each route words itself.
pub fn mfa_common(e: &MfaError) -> Option<ApiError> {
    match e {
        MfaError::Throttled { retry_after } => Some(ApiError::throttled(*retry_after)),
        MfaError::Store(e) => Some(ApiError::store(e)),
        _ => None,
    }
}
