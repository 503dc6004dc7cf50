//! The contract's failure responses (DESIGN.md, "HTTP contract").
//!
//! Why 401 for a bad token when the seeds answer 403: RFC 6750 §3.1 says `invalid_token`
//! is 401, and clients retry a 401 by getting a new token. The message texts stay the
//! seeds' so that clients written against the Flask apps keep matching them.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::cookie::CookieConfig;

/// Why a request was refused. Each variant knows its status, headers and JSON body
/// (`{"error": …, "message": …}`, always with `Cache-Control: no-store`).
///
/// The client only ever learns the variant: which check a token failed is logged (with
/// the engine's stable code), never sent.
///
/// | variant | status | extra headers | `error` |
/// |---|---|---|---|
/// | `MissingToken` | 401 | `WWW-Authenticate: Bearer realm="countersign"` | `missing_token` |
/// | `ExpiredToken` | 401 | `… error="invalid_token", error_description="The access token expired"` | `invalid_token` |
/// | `InvalidToken` | 401 | `… error="invalid_token"` | `invalid_token` |
/// | `InvalidSession` | 401 | `Set-Cookie` clearing the session cookie, `WWW-Authenticate: Bearer realm="countersign"` | `invalid_session` |
/// | `InsufficientScope` | 403 | `… error="insufficient_scope"` | `insufficient_scope` |
/// | `CsrfFailed` | 403 | | `csrf_failed` |
/// | `PayloadTooLarge` | 413 | | `payload_too_large` |
/// | `Unavailable` | 503 | `Retry-After` | `unavailable` |
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthRejection {
    /// No bearer token and no session cookie.
    #[error("no credentials")]
    MissingToken,
    /// The bearer token expired (and nothing else was wrong with it).
    #[error("the token has expired")]
    ExpiredToken,
    /// Any other bad bearer token: malformed header, bad signature or claims, revoked.
    #[error("the token is invalid")]
    InvalidToken,
    /// The session cookie is forged, unknown, ended or expired.
    #[error("the session is invalid or has ended")]
    InvalidSession,
    /// Authenticated, but without the role the route needs.
    #[error("this route requires the {required} role")]
    InsufficientScope {
        /// The role the route needs.
        required: &'static str,
    },
    /// A cookie-authenticated (or pre-session) state change failed the CSRF checks.
    #[error("the CSRF check failed")]
    CsrfFailed,
    /// A form body was too large for the CSRF guard to read its token.
    #[error("the form body is over {limit} bytes")]
    PayloadTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A store needed for the decision is unavailable; retry after the given time.
    #[error("the authentication store is unavailable")]
    Unavailable {
        /// Seconds the client should wait (`Retry-After`).
        retry_after_secs: u64,
    },
}

const REALM: &str = r#"Bearer realm="countersign""#;

impl AuthRejection {
    /// An [`AuthRejection::Unavailable`] with a `Retry-After` of 1 to 5 seconds, spread
    /// at random so that clients do not all come back at once.
    pub fn unavailable() -> Self {
        Self::Unavailable {
            retry_after_secs: rand::random_range(1..=5),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::ExpiredToken | Self::InvalidToken | Self::InvalidSession => {
                StatusCode::UNAUTHORIZED
            }
            Self::InsufficientScope { .. } | Self::CsrfFailed => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The body's `error` member.
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::ExpiredToken | Self::InvalidToken => "invalid_token",
            Self::InvalidSession => "invalid_session",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::CsrfFailed => "csrf_failed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::Unavailable { .. } => "unavailable",
        }
    }

    /// The `reason` label of the `countersign_auth_rejections_total` counter: the error
    /// code, except that an expired token is `expired_token`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ExpiredToken => "expired_token",
            other => other.error_code(),
        }
    }

    /// The body's `message` member: the seeds' texts where the seeds have one.
    pub fn message(&self) -> String {
        match self {
            Self::MissingToken => "Token is missing!".to_owned(),
            Self::ExpiredToken => "Token has expired!".to_owned(),
            Self::InvalidToken => "Invalid token!".to_owned(),
            Self::InvalidSession => "Unauthorized".to_owned(),
            Self::InsufficientScope { required } => {
                format!("This route requires the {required} role.")
            }
            Self::CsrfFailed => {
                "The request failed the CSRF check: reload the page and try again.".to_owned()
            }
            Self::PayloadTooLarge { limit } => {
                format!("The form body is larger than {} KiB.", limit / 1024)
            }
            Self::Unavailable { .. } => {
                "Authentication is temporarily unavailable; retry shortly.".to_owned()
            }
        }
    }

    /// Count this rejection (`countersign_auth_rejections_total{reason}`).
    pub(crate) fn count(&self) {
        metrics::counter!("countersign_auth_rejections_total", "reason" => self.reason())
            .increment(1);
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.error_code(), "message": self.message() });
        let mut response = (self.status(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let www_authenticate = match &self {
            Self::MissingToken => Some(REALM),
            Self::ExpiredToken => Some(
                r#"Bearer realm="countersign", error="invalid_token", error_description="The access token expired""#,
            ),
            Self::InvalidToken => Some(r#"Bearer realm="countersign", error="invalid_token""#),
            // RFC 7235 §3.1: every 401 names a scheme the client may use.
            Self::InvalidSession => Some(REALM),
            Self::InsufficientScope { .. } => {
                Some(r#"Bearer realm="countersign", error="insufficient_scope""#)
            }
            _ => None,
        };
        if let Some(value) = www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
        }
        match self {
            Self::InvalidSession => {
                // A rejection carries no configuration, so clear the cookie under both
                // names; the one the client does not have is ignored.
                for secure in [true, false] {
                    let cookie = CookieConfig { secure }.clear_session_cookie();
                    headers.append(header::SET_COOKIE, cookie);
                }
            }
            Self::Unavailable { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}
