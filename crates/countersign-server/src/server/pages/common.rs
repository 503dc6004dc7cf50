//! What every page shares: the stylesheet and the content security policy that allows
//! it, the navigation bar, rendering and error pages, the CSRF token of a form, and the
//! answer to a successful sign-in.

use std::sync::LazyLock;

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use countersign::auth::Principal;
use countersign::store::StoreError;
use countersign::user::User;
use countersign_axum::{csrf_token_for, pre_session_csrf};
use sha2::{Digest, Sha256};

use crate::server::error::BUSY_RETRY_AFTER_SECS;
use crate::server::state::App;

/// The pages' stylesheet, inlined in every page.
pub const STYLE: &str = include_str!("../../../templates/style.css");

/// The `Content-Security-Policy` of every response: nothing loads or frames; the only
/// style is the inline sheet above, allowed by its hash; the only script is this server's
/// own (`/passkeys.js`), which may call only this server; forms post only here.
/// Computed once: it depends only on the stylesheet compiled in.
pub fn content_security_policy() -> &'static HeaderValue {
    static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
        let text = format!(
            "default-src 'none'; style-src 'sha256-{hash}'; script-src 'self'; \
             connect-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'"
        );
        // Invariant: ASCII text and base64, always a valid header value.
        HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("default-src 'none'"))
    });
    &CSP
}

/// The navigation bar.
pub(super) struct Nav<'a> {
    pub(super) username: Option<&'a str>,
    pub(super) registration_open: bool,
    /// Whether passkeys are on (a relying party is configured): the pages offer them.
    pub(super) passkeys: bool,
}

impl<'a> Nav<'a> {
    pub(super) fn new(app: &App, principal: Option<&'a Principal>) -> Self {
        Self {
            username: principal.map(|p| p.username.as_str()),
            registration_open: app.registration_open(),
            passkeys: app.engine().passkey_config().is_some(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nav: Nav<'a>,
    title: &'a str,
    message: &'a str,
}

/// Render a page with `status`. A template error (never expected: the templates are
/// checked at compile time) is a plain 500.
pub(super) fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// An error page.
pub fn error_page(app: &App, status: StatusCode, title: &str, message: &str) -> Response {
    render(
        status,
        &ErrorPage {
            nav: Nav::new(app, None),
            title,
            message,
        },
    )
}

/// The page for a store failure: 503 with `Retry-After` when the store is unreachable.
pub(super) fn store_failure(app: &App, e: &StoreError) -> Response {
    tracing::error!(error = %e, "store failure");
    let mut response = error_page(
        app,
        if e.is_unavailable() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        },
        "Temporarily unavailable",
        "Something went wrong on our side. Please try again shortly.",
    );
    if e.is_unavailable() {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(BUSY_RETRY_AFTER_SECS),
        );
    }
    response
}

/// `response` with one more header.
pub(super) fn with_header(
    mut response: Response,
    name: header::HeaderName,
    value: HeaderValue,
) -> Response {
    response.headers_mut().append(name, value);
    response
}

/// A CSRF token for a form shown to `principal`: the session's, else the pre-session
/// token of the cookie the browser holds while it is good (a second tab must not break
/// the first), else a new pre-session pair (whose cookie the response must set).
pub(super) fn form_csrf(
    app: &App,
    principal: Option<&Principal>,
    headers: &HeaderMap,
) -> (Option<HeaderValue>, String) {
    match principal.and_then(csrf_token_for) {
        Some(token) => (None, token.to_owned()),
        None => pre_session_csrf(&app.auth, headers),
    }
}

/// `page` with the pre-session CSRF cookie, when one was issued for its form.
pub(super) fn with_cookie(page: Response, cookie: Option<HeaderValue>) -> Response {
    match cookie {
        Some(c) => with_header(page, header::SET_COOKIE, c),
        None => page,
    }
}

/// A new session for `user` (the request's old one ends: fixation), then 303 to `/`.
pub(super) async fn signed_in(
    app: &App,
    current: Option<&Principal>,
    user: &User,
    user_agent: &str,
    address: &str,
) -> Response {
    match countersign_axum::sign_in(&app.auth, current, user, user_agent, address).await {
        Ok(cookies) => {
            let mut response = see_other("/");
            cookies.apply(&mut response);
            crate::server::flask::write_back(app, user, &mut response);
            response
        }
        Err(e) => store_failure(app, &e),
    }
}

/// An error's message as a sentence: capitalised, with a full stop.
pub(super) fn sentence(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// A 303 to `location`.
pub fn see_other(location: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}
