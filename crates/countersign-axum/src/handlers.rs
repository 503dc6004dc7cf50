//! Ready handlers for signing in and out with a password: mount them and the session
//! cookie, the CSRF cookie and every failure of a login are taken care of.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::{get, post}};
//! use countersign_axum::{AuthState, CsrfLayer, handlers};
//!
//! fn router(state: Arc<AuthState>) -> Router {
//!     Router::new()
//!         .route("/login", get(handlers::login_form).post(handlers::login))
//!         .route("/logout", post(handlers::logout))
//!         .layer(CsrfLayer::new(Arc::clone(&state)))
//!         .with_state(state)
//! }
//! ```
//!
//! They work in any router whose state gives an `Arc<AuthState>` (as the extractors do),
//! and belong behind the [`CsrfLayer`](crate::CsrfLayer): a login form is a state change a
//! hostile page could forge (login CSRF), so it carries a pre-session token, which
//! [`login_form`] provides.
//!
//! Browsers post forms and get pages and redirects; scripts post JSON and get JSON. The
//! answers, for a form (`application/x-www-form-urlencoded`: `username`, `password`,
//! `csrf_token`) and for JSON (`{"username", "password"}` with the token in
//! `X-CSRF-Token`):
//!
//! | outcome | status | form | JSON `error` |
//! |---|---|---|---|
//! | signed in | 303 to `next` / 200 | new session cookie, pre-session cookie cleared | `{"username", "role"}` |
//! | wrong username or password | 401 | the form again, "Invalid username or password" | `invalid_grant` |
//! | empty username or password | 422 | the form again | `invalid_request` |
//! | too many failures | 429, `Retry-After` | the form again | `too_many_requests` |
//! | the hashing pool is full | 503, `Retry-After: 1` | the form again | `temporarily_unavailable` |
//! | a store does not answer | 503, `Retry-After` | [`AuthRejection::Unavailable`] | `unavailable` |
//! | a body that cannot be read | 400 / 415 | a page | `invalid_request` / `unsupported_media_type` |
//!
//! Where a browser goes after signing in or out is the `next` query parameter (the login
//! form keeps the one it was shown with), else `/`. Only a path on this site is followed
//! ([`local_path`]): `https://elsewhere`, `//elsewhere` and `/\elsewhere` go to `/`, so a
//! link cannot use the login to send a user to another site.
//!
//! Every attempt is counted in `countersign_logins_total{outcome, via}` (`outcome`:
//! `success`, `invalid`, `throttled`, `busy`, `error`; `via`: `form`, `json`) and logged;
//! a failed attempt is logged without its username, which is sometimes a mistyped
//! password.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use countersign::auth::{LoginError, Method, Principal};
use countersign::password::Password;
use countersign::store::StoreError;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use serde_json::json;

use crate::csrf::pre_session_csrf;
use crate::extract::{AuthState, MaybeAuthenticated, csrf_token_for};
use crate::forwarded::{ClientAddr, UserAgent};
use crate::rejection::{AuthRejection, escape, html_page, wants_html};
use crate::sign::{sign_in, sign_out};

/// The message for a wrong username or password (the same for both, by design).
pub const INVALID_CREDENTIALS: &str = "Invalid username or password";

/// Seconds a client is told to wait when the hashing pool is full.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// The longest `next` path followed, in bytes.
pub const MAX_NEXT: usize = 2048;

/// `next` when it is a path on this site, else `None`: a single `/` then anything but `/`
/// or `\`, only visible ASCII (no space, tab or line break, which browsers strip, no `\`,
/// which they read as `/`), at most [`MAX_NEXT`] bytes, a valid path and query.
///
/// # Examples
/// ```
/// use countersign_axum::handlers::local_path;
///
/// assert_eq!(local_path("/buggies?page=2"), Some("/buggies?page=2"));
/// for elsewhere in ["https://evil.example/", "//evil.example", "/\\evil.example",
///                   "\\\\evil.example", "/\t/evil.example", "javascript:alert(1)", "", "buggies"] {
///     assert_eq!(local_path(elsewhere), None, "{elsewhere}");
/// }
/// ```
pub fn local_path(next: &str) -> Option<&str> {
    let bytes = next.as_bytes();
    let ok = bytes.len() <= MAX_NEXT
        && bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && bytes
            .iter()
            .all(|&b| (b'!'..=b'~').contains(&b) && b != b'\\')
        && next.parse::<http::uri::PathAndQuery>().is_ok();
    ok.then_some(next)
}

/// The `next` query parameter, when it is a local path.
fn next_of(uri: &Uri) -> Option<String> {
    let query = uri.query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "next")
        .and_then(|(_, value)| local_path(&value).map(str::to_owned))
}

/// `GET` of the login page: a minimal sign-in form (`username`, `password` and the CSRF
/// token, posted back to the same address, `next` included), or for a client that asks
/// for JSON, `{"csrf_token": …}` to send as `X-CSRF-Token` with a JSON login.
///
/// The token is the session's when the visitor is already signed in (to sign in as
/// someone else), else a pre-session token whose signed cookie the response sets, or
/// keeps when the browser already holds a good one (a form open in another tab still
/// works). Answers carry `Cache-Control: no-store`.
pub async fn login_form(
    State(state): State<Arc<AuthState>>,
    MaybeAuthenticated(current): MaybeAuthenticated,
    parts: Parts,
) -> Response {
    let (cookie, token) = form_token(&state, current.as_ref(), &parts.headers);
    let mut response = if wants_html(&parts) {
        form_page(StatusCode::OK, None, "", &token)
    } else {
        no_store(Json(json!({ "csrf_token": token })).into_response())
    };
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The CSRF token for a login form, and the cookie to set if a new one was issued.
fn form_token(
    state: &AuthState,
    current: Option<&Principal>,
    headers: &HeaderMap,
) -> (Option<HeaderValue>, String) {
    match current.and_then(csrf_token_for) {
        Some(token) => (None, token.to_owned()),
        None => pre_session_csrf(state, headers),
    }
}

/// The sign-in page: an optional error, the username as typed, the token.
fn form_page(status: StatusCode, error: Option<&str>, username: &str, token: &str) -> Response {
    let error = error
        .map(|e| format!("<p role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    // No `action`: the form posts to the address it was shown at, `?next=` included.
    let body = format!(
        "{error}<form method=\"post\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{token}\">\
         <p><label>Username <input name=\"username\" value=\"{username}\" \
         autocomplete=\"username\" required></label></p>\
         <p><label>Password <input name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required></label></p>\
         <p><button>Sign in</button></p></form>",
        token = escape(token),
        username = escape(username),
    );
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html_page("Sign in", &body),
    )
        .into_response();
    no_store_headers(response.headers_mut());
    response
}

/// A username and password, as a login form or a JSON body (`{"username", "password"}`)
/// sends them; a missing field is empty. The password is the engine's [`Password`]: wiped
/// when dropped, `[redacted]` in `Debug`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct Credentials {
    /// The account name, as typed.
    pub username: String,
    /// The password, as typed.
    pub password: Password,
}

/// Why a password login was refused, answered as JSON with the codes of the HTTP contract
/// (and `Cache-Control: no-store`):
///
/// | variant | status | `error` | `message` |
/// |---|---|---|---|
/// | `Invalid` | 401 | `invalid_grant` | "Invalid username or password" |
/// | `Throttled` | 429, `Retry-After` | `too_many_requests` | "Too many failed attempts. Try again in {n} seconds." |
/// | `Busy` | 503, `Retry-After: 1` | `temporarily_unavailable` | "The server is busy. Try again in a moment." |
/// | `Store`, the store does not answer | 503, `Retry-After` | `unavailable` | as [`AuthRejection::Unavailable`] |
/// | `Store`, any other store error | 500 | `server_error` | "Something went wrong on our side." |
///
/// `?` makes one from the engine's [`LoginError`], and from the [`StoreError`] of what
/// follows a login (issuing tokens, starting a session): a token endpoint is then three
/// lines, as in the [crate docs](crate).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginRejection {
    /// Unknown user or wrong password (indistinguishable by design).
    #[error("invalid username or password")]
    Invalid,
    /// Too many failures for this account or address.
    #[error("too many failed logins; retry in {retry_after_secs}s")]
    Throttled {
        /// Seconds until the client may try again.
        retry_after_secs: u64,
    },
    /// The hashing pool is full.
    #[error("login is at capacity; retry shortly")]
    Busy,
    /// A store failed.
    #[error("a store failed during login")]
    Store(#[source] StoreError),
}

impl From<LoginError> for LoginRejection {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Throttled { retry_after } => Self::Throttled {
                retry_after_secs: u64::try_from(retry_after.max(1)).unwrap_or(1),
            },
            LoginError::Busy => Self::Busy,
            LoginError::Store(e) => Self::Store(e),
            // `Invalid`, and any kind the engine adds later: refuse, as for bad
            // credentials.
            _ => Self::Invalid,
        }
    }
}

impl From<StoreError> for LoginRejection {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl LoginRejection {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid => StatusCode::UNAUTHORIZED,
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body's `error` member.
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::Invalid => "invalid_grant",
            Self::Throttled { .. } => "too_many_requests",
            Self::Busy => "temporarily_unavailable",
            Self::Store(e) if e.is_unavailable() => "unavailable",
            Self::Store(_) => "server_error",
        }
    }

    /// The body's `message` member, a sentence for the user.
    pub fn message(&self) -> String {
        match self {
            Self::Invalid => INVALID_CREDENTIALS.to_owned(),
            Self::Throttled { retry_after_secs } => {
                format!("Too many failed attempts. Try again in {retry_after_secs} seconds.")
            }
            Self::Busy => "The server is busy. Try again in a moment.".to_owned(),
            Self::Store(e) if e.is_unavailable() => AuthRejection::unavailable().message(),
            Self::Store(_) => "Something went wrong on our side.".to_owned(),
        }
    }

    /// `Retry-After`, for a refusal that passes (a store failure sets its own).
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::Throttled { retry_after_secs } => Some(*retry_after_secs),
            Self::Busy => Some(BUSY_RETRY_AFTER_SECS),
            Self::Invalid | Self::Store(_) => None,
        }
    }

    /// The `outcome` label of `countersign_logins_total`.
    fn label(&self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Throttled { .. } => "throttled",
            Self::Busy => "busy",
            Self::Store(_) => "error",
        }
    }

    /// The answer: JSON, or for a store failure a page when the client is a browser.
    fn respond_to(self, parts: &Parts) -> Response {
        match self {
            Self::Store(e) => store_failure(parts, &e),
            other => other.into_response(),
        }
    }
}

impl IntoResponse for LoginRejection {
    fn into_response(self) -> Response {
        if let Self::Store(e) = &self {
            tracing::error!(error = %e, "login failed: store error");
            if e.is_unavailable() {
                return AuthRejection::unavailable().into_response();
            }
        }
        let body = json!({ "error": self.error_code(), "message": self.message() });
        let response = no_store((self.status(), Json(body)).into_response());
        with_retry_after(response, self.retry_after_secs())
    }
}

/// How the request body was sent, and so how to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// A form: pages and redirects (or JSON failures for a client that asks for them).
    Form,
    /// JSON: JSON answers.
    Json,
}

impl Via {
    fn label(self) -> &'static str {
        match self {
            Self::Form => "form",
            Self::Json => "json",
        }
    }
}

/// The essence of the `Content-Type` header (`application/json`), lowercased.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim();
    Some(essence.to_ascii_lowercase())
}

fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// A body the handler cannot read.
#[derive(Clone, Copy, Debug)]
enum Unreadable {
    /// JSON that is broken (400) or has fields of the wrong type (422).
    Json(StatusCode),
    /// Neither JSON nor a form.
    MediaType,
}

impl Unreadable {
    fn respond_to(self, parts: &Parts) -> Response {
        match self {
            Self::Json(status) => failure(
                parts,
                status,
                "invalid_request",
                "Send a JSON object with the strings `username` and `password`.",
            ),
            Self::MediaType => failure(
                parts,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send application/json or application/x-www-form-urlencoded.",
            ),
        }
    }
}

/// Read the credentials from the body.
fn credentials(headers: &HeaderMap, body: &[u8]) -> Result<(Via, Credentials), Unreadable> {
    match media_type(headers).as_deref() {
        Some("application/x-www-form-urlencoded") => {
            let mut found = Credentials::default();
            for (name, value) in form_urlencoded::parse(body) {
                match &*name {
                    "username" => found.username = value.into_owned(),
                    "password" => found.password = Password::new(value.into_owned()),
                    _ => {}
                }
            }
            Ok((Via::Form, found))
        }
        Some(media) if is_json(media) => serde_json::from_slice(body)
            .map(|found| (Via::Json, found))
            .map_err(|e| {
                // As axum's `Json`: a field of the wrong type is 422, broken JSON 400.
                Unreadable::Json(if e.is_data() {
                    StatusCode::UNPROCESSABLE_ENTITY
                } else {
                    StatusCode::BAD_REQUEST
                })
            }),
        _ => Err(Unreadable::MediaType),
    }
}

/// A failure that is not a form to show again: JSON, or a page for a browser.
fn failure(parts: &Parts, status: StatusCode, error: &'static str, message: &str) -> Response {
    if wants_html(parts) {
        let body = format!(
            "<p role=\"alert\">{}</p><p><a href=\"\">Back</a></p>",
            escape(message)
        );
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html_page("Not signed in", &body),
        )
            .into_response();
        no_store_headers(response.headers_mut());
        response
    } else {
        no_store((status, Json(json!({ "error": error, "message": message }))).into_response())
    }
}

/// A store failure: 503 with `Retry-After` when the store does not answer, else 500.
fn store_failure(parts: &Parts, e: &StoreError) -> Response {
    tracing::error!(error = %e, "signing in or out failed: store error");
    if e.is_unavailable() {
        AuthRejection::unavailable().respond_to(parts)
    } else {
        failure(
            parts,
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Something went wrong on our side.",
        )
    }
}

/// `POST` of the login form, or JSON: check the password (throttled, timing-safe, on the
/// hashing pool), start a new session (the one the request came with, if any, ends) and
/// set its cookie. See the [module docs](self) for every answer.
pub async fn login(
    State(state): State<Arc<AuthState>>,
    MaybeAuthenticated(current): MaybeAuthenticated,
    ClientAddr(address): ClientAddr,
    UserAgent(user_agent): UserAgent,
    parts: Parts,
    body: Bytes,
) -> Response {
    let (via, mut found) = match credentials(&parts.headers, &body) {
        Ok(found) => found,
        Err(unreadable) => return unreadable.respond_to(&parts),
    };
    // The form again, with a sentence saying what went wrong.
    let again = |status: StatusCode, message: &str| {
        let (cookie, token) = form_token(&state, current.as_ref(), &parts.headers);
        let mut page = form_page(status, Some(message), &found.username, &token);
        if let Some(cookie) = cookie {
            page.headers_mut().append(header::SET_COOKIE, cookie);
        }
        page
    };
    if found.username.is_empty() || found.password.is_empty() {
        let (status, message) = (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter your username and password.",
        );
        return if via == Via::Form && wants_html(&parts) {
            again(status, message)
        } else {
            failure(&parts, status, "invalid_request", message)
        };
    }
    let password = std::mem::take(&mut found.password);
    let outcome = state
        .auth
        .login(&found.username, password, &address)
        .await
        .map_err(LoginRejection::from);
    let label = match &outcome {
        Ok(user) => {
            tracing::info!(user = %user.username, via = via.label(), "login succeeded");
            "success"
        }
        // Without the username: it is sometimes a mistyped password.
        Err(rejection) => {
            tracing::info!(via = via.label(), reason = %rejection, "login refused");
            rejection.label()
        }
    };
    metrics::counter!("countersign_logins_total", "outcome" => label, "via" => via.label())
        .increment(1);
    let user = match outcome {
        Ok(user) => user,
        Err(rejection @ LoginRejection::Store(_)) => return rejection.respond_to(&parts),
        Err(rejection) if via == Via::Form && wants_html(&parts) => {
            let page = again(rejection.status(), &rejection.message());
            return with_retry_after(page, rejection.retry_after_secs());
        }
        Err(rejection) => return rejection.into_response(),
    };
    let cookies = match sign_in(&state, current.as_ref(), &user, &user_agent, &address).await {
        Ok(cookies) => cookies,
        Err(e) => return store_failure(&parts, &e),
    };
    let mut response = match via {
        Via::Form => see_other(&next_of(&parts.uri).unwrap_or_else(|| "/".to_owned())),
        Via::Json => Json(json!({
            "username": user.username.as_str(),
            "role": user.role.as_str(),
        }))
        .into_response(),
    };
    no_store_headers(response.headers_mut());
    cookies.apply(&mut response);
    response
}

/// `POST` to sign out: end the request's session (so a copy of its cookie is refused from
/// now on) and clear the cookie; then 303 to `next` (else `/`) for a browser, 204 for
/// anyone else. Without a session it just clears the cookie. A store that does not answer
/// is a 503 and the cookie is left alone, so that the user can try again.
pub async fn logout(
    State(state): State<Arc<AuthState>>,
    MaybeAuthenticated(current): MaybeAuthenticated,
    parts: Parts,
) -> Response {
    let clear = match sign_out(&state, current.as_ref()).await {
        Ok(clear) => clear,
        Err(e) => return store_failure(&parts, &e),
    };
    if let Some(Principal {
        method: Method::Session { .. },
        username,
        ..
    }) = &current
    {
        tracing::info!(user = %username, "logged out");
    }
    let browser = wants_html(&parts)
        || media_type(&parts.headers).as_deref() == Some("application/x-www-form-urlencoded");
    let mut response = if browser {
        see_other(&next_of(&parts.uri).unwrap_or_else(|| "/".to_owned()))
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    no_store_headers(response.headers_mut());
    response.headers_mut().append(header::SET_COOKIE, clear);
    response
}

/// 303 See Other to a local path (checked by [`local_path`]).
fn see_other(path: &str) -> Response {
    let location = HeaderValue::from_str(path).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn with_retry_after(mut response: Response, secs: Option<u64>) -> Response {
    if let Some(secs) = secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn no_store(mut response: Response) -> Response {
    no_store_headers(response.headers_mut());
    response
}

fn no_store_headers(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
