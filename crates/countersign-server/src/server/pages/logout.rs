//! Logging out from an application behind forward authentication, and the way back: an
//! application links to `GET /logout?rd=URL`; a browser that is logged in gets a page with
//! one button (a `POST /logout` form with the session's CSRF token, so no other site can
//! log anyone out), then goes to `URL`; one that is not logged in goes to `URL` at once.
//! `URL` is used only when [`crate::redirect::ReturnTo`] allows it, else `/`.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use countersign_axum::{MaybeAuthenticated, csrf_token_for};
use serde::Deserialize;

use super::common::{Nav, content_security_policy, render, see_other};
use crate::server::state::App;

/// `?rd=URL`: where to go afterwards.
#[derive(Debug, Default, Deserialize)]
pub struct ReturnQuery {
    #[serde(default)]
    rd: Option<String>,
}

/// The logout form's fields besides the CSRF token.
#[derive(Debug, Default, Deserialize)]
pub struct LogoutForm {
    /// Where to go afterwards (checked before use).
    #[serde(default)]
    pub rd: String,
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage<'a> {
    nav: Nav<'a>,
    csrf_token: &'a str,
    return_to: Option<&'a str>,
}

/// The query's `rd`, when it is allowed.
pub(super) fn checked_rd(
    app: &App,
    query: Result<Query<ReturnQuery>, QueryRejection>,
) -> Option<String> {
    let rd = query.ok()?.0.rd?;
    let checked = app.site.forward.return_to().check(&rd);
    if checked.is_none() {
        tracing::info!("a return URL that is not allowed was ignored");
    }
    checked
}

/// `page` with a content security policy whose `form-action` also names the origin of
/// `return_to` (an allowed absolute URL): browsers apply `form-action` to the redirect
/// that follows a form post, so the login or logout form could not send the browser back
/// to the application otherwise.
pub(super) fn allow_form_target(mut page: Response, return_to: Option<&str>) -> Response {
    let Some(origin) = return_to
        .and_then(|to| url::Url::parse(to).ok())
        .map(|to| to.origin().ascii_serialization())
        .filter(|o| o.starts_with("http"))
    else {
        return page;
    };
    let Ok(base) = content_security_policy().to_str() else {
        return page;
    };
    let csp = base.replacen(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
        1,
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        page.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    page
}

/// `response` (a 303), sent to `rd` instead when `rd` is allowed.
pub(super) fn back_to(app: &App, mut response: Response, rd: &str) -> Response {
    if response.status() != StatusCode::SEE_OTHER || rd.is_empty() {
        return response;
    }
    match app.site.forward.return_to().check(rd) {
        Some(to) => {
            if let Ok(location) = HeaderValue::from_str(&to) {
                response.headers_mut().insert(header::LOCATION, location);
            }
        }
        None => tracing::info!("a return URL that is not allowed was ignored"),
    }
    response
}

/// `GET /logout?rd=URL`: the logout button, or straight back when not logged in.
pub async fn logout_page(
    State(app): State<App>,
    MaybeAuthenticated(user): MaybeAuthenticated,
    query: Result<Query<ReturnQuery>, QueryRejection>,
) -> Response {
    let return_to = checked_rd(&app, query);
    // Not logged in, or by an access token (no session to end here: it is revoked at
    // /api/token/revoke): nothing to confirm, straight back.
    let Some((principal, csrf_token)) = user
        .as_ref()
        .and_then(|p| csrf_token_for(p).map(|token| (p, token)))
    else {
        let response = see_other("/");
        return back_to(&app, response, return_to.as_deref().unwrap_or_default());
    };
    let page = render(
        StatusCode::OK,
        &LogoutPage {
            nav: Nav::new(&app, Some(principal)),
            csrf_token,
            return_to: return_to.as_deref(),
        },
    );
    allow_form_target(page, return_to.as_deref())
}
