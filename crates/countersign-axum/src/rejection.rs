//! The contract's failure responses (the table on [`AuthRejection`]).
//!
//! Why 401 for a bad token when the seeds answer 403: RFC 6750 §3.1 says `invalid_token`
//! is 401, and clients retry a 401 by getting a new token. The message texts stay the
//! seeds' so that clients written against the Flask apps keep matching them.

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};

use crate::cookie::CookieConfig;

/// Why a request was refused. Each variant knows its status, headers and JSON body
/// (`{"error": …, "message": …}`, always with `Cache-Control: no-store`).
///
/// The client only ever learns the variant: which check a token failed is logged (with
/// the engine's stable code), never sent.
///
/// The realm (`countersign`) and the messages are the HTTP contract's, the same in every
/// app; a rejection holds no configuration, so that it can be built and answered anywhere.
/// An application that wants its own wording finds the rejection in the extensions of the
/// response it produced and rewrites the response in a layer of its own (the reasoning is
/// in `docs/decisions.md`):
///
/// ```
/// use axum::{Json, Router, middleware::map_response, response::{IntoResponse, Response}};
/// use countersign_axum::AuthRejection;
///
/// async fn reword(response: Response) -> Response {
///     match response.extensions().get::<AuthRejection>() {
///         Some(AuthRejection::MissingToken) => {
///             let (parts, _) = response.into_parts();
///             let body = Json(serde_json::json!({
///                 "error": "missing_token",
///                 "message": "Please sign in.",
///             }));
///             (parts, body).into_response()
///         }
///         _ => response,
///     }
/// }
///
/// let app: Router = Router::new().layer(map_response(reword));
/// ```
///
/// | variant | status | extra headers | `error` |
/// |---|---|---|---|
/// | `MissingToken` | 401 | `WWW-Authenticate: Bearer realm="countersign"` | `missing_token` |
/// | `ExpiredToken` | 401 | `… error="invalid_token", error_description="The access token expired"` | `invalid_token` |
/// | `InvalidToken` | 401 | `… error="invalid_token"` | `invalid_token` |
/// | `InvalidSession` | 401 | `Set-Cookie` clearing the session cookie, `WWW-Authenticate: Bearer realm="countersign"` | `invalid_session` |
/// | `InsufficientScope` | 403 | `… error="insufficient_scope"` | `insufficient_scope` |
/// | `MfaRequired` | 401 | `… error="insufficient_user_authentication"` (RFC 9470) | `mfa_required` |
/// | `StaleAuthentication` | 401 | `… error="insufficient_user_authentication", max_age="N"` | `reauthentication_required` |
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
    /// Authenticated, but without a second factor, which the route needs
    /// ([`RequireMfa`](crate::RequireMfa)): step up (RFC 9470).
    #[error("this route requires a second factor")]
    MfaRequired,
    /// Authenticated longer ago than the route allows
    /// ([`RequireFreshAuth`](crate::RequireFreshAuth)): authenticate again (RFC 9470).
    #[error("this route requires authenticating again")]
    StaleAuthentication {
        /// The route's limit, in seconds since the user last proved who they are.
        max_age: i64,
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
            Self::MissingToken
            | Self::ExpiredToken
            | Self::InvalidToken
            | Self::InvalidSession
            | Self::MfaRequired
            | Self::StaleAuthentication { .. } => StatusCode::UNAUTHORIZED,
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
            Self::MfaRequired => "mfa_required",
            Self::StaleAuthentication { .. } => "reauthentication_required",
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
            Self::MfaRequired => {
                "This requires a second factor: sign in with your authenticator or passkey."
                    .to_owned()
            }
            Self::StaleAuthentication { max_age } => {
                format!("This requires having signed in within {max_age} s: sign in again.")
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

    /// The answer for this request: a short HTML page when the client is a browser
    /// ([`wants_html`]), else the JSON response. Status and headers are the same in both.
    pub fn respond_to(&self, parts: &Parts) -> Response {
        if wants_html(parts) {
            self.html_response()
        } else {
            self.clone().into_response()
        }
    }

    /// The HTML form of this rejection: a page with a title and the message, the status
    /// and headers of the JSON form.
    pub fn html_response(&self) -> Response {
        let mut response = self.clone().into_response();
        let title = match self {
            Self::CsrfFailed => "This form could not be accepted",
            Self::Unavailable { .. } => "Temporarily unavailable",
            Self::PayloadTooLarge { .. } => "Too large",
            Self::InsufficientScope { .. } => "Not allowed",
            Self::MfaRequired | Self::StaleAuthentication { .. } => "Verify it is you",
            _ => "Not signed in",
        };
        let message = match self {
            Self::CsrfFailed => "The form was sent from another site, or it expired. \
                Go back, reload the page and try again."
                .to_owned(),
            other => other.message(),
        };
        let body = format!(
            "<p role=\"alert\">{}</p><p><a href=\"/\">Home</a></p>",
            escape(&message)
        );
        *response.body_mut() = axum::body::Body::from(html_page(title, &body));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
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
            Self::MfaRequired => Some(
                r#"Bearer realm="countersign", error="insufficient_user_authentication", error_description="A second factor is required""#,
            ),
            _ => None,
        };
        if let Some(value) = www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
        }
        if let Self::StaleAuthentication { max_age } = &self
            && let Ok(value) = HeaderValue::from_str(&format!(
                r#"Bearer realm="countersign", error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="{max_age}""#
            ))
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        match self {
            Self::InvalidSession => {
                // A rejection carries no configuration, so clear the cookie under both
                // default names; the one the client does not have is ignored. A name set
                // with `CookieConfig::with_name` is cleared by the `CsrfLayer`, which
                // knows it.
                for config in [CookieConfig::secure(), CookieConfig::insecure()] {
                    headers.append(header::SET_COOKIE, config.clear_session_cookie());
                }
            }
            Self::Unavailable { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// Whether a failure should be answered with an HTML page: the client is a browser (its
/// `Accept` names `text/html`), sent no bearer token, and the path is not under `/api/`.
/// Everything else (`Accept: application/json`, API routes, bearer requests, clients that
/// send no `Accept`) gets JSON.
pub fn wants_html(parts: &Parts) -> bool {
    if parts.headers.contains_key(header::AUTHORIZATION) || parts.uri.path().starts_with("/api/") {
        return false;
    }
    parts
        .headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html"))
        })
}

/// A short HTML page: `title` (text) as the title and heading, then `body` (HTML).
pub(crate) fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title></head>\n<body><main><h1>{title}</h1>{body}</main></body></html>\n",
        title = escape(title),
    )
}

/// Text for HTML: `&`, `<`, `>`, `"` and `'` escaped.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
