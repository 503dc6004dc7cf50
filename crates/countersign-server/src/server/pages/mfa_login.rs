//! The second step of a browser login. A password that matches for a user with a second
//! factor does not start a session: `POST /login` puts the engine's sealed challenge in
//! the challenge cookie (`__Host-countersign-mfa`: `HttpOnly`, host-only, five minutes,
//! so it stays with this browser) and sends the browser to `GET /login/mfa`, which asks
//! for a code (TOTP or a recovery code). `POST /login/mfa` checks it against the
//! challenge; the first success starts the session and deletes the cookie.
//!
//! The cookie grants nothing by itself: no extractor reads it, only this step does, and
//! the challenge in it is single-use, expires, and is refused for a user who was disabled
//! meanwhile. An expired or used challenge sends the browser back to `/login` with a
//! sentence saying why.

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use countersign::auth::{Authentication, Method, MfaChallenge, MfaError, MfaMethods, Principal};
use countersign::user::User;
use countersign_axum::{MaybeAuthenticated, read_cookie};
use serde::Deserialize;

use super::common::{Nav, error_page, form_csrf, render, store_failure, with_cookie, with_header};
use super::logout::{ReturnQuery, allow_form_target, back_to, checked_rd};
use crate::server::login::{self, Via};
use crate::server::mfa::{Code, MAX_CODE_LEN};
use crate::server::state::{App, ClientAddr, UserAgent};

/// Where the second step is.
pub const MFA_PATH: &str = "/login/mfa";

/// What `/login` says when the second step could not go on (`/login?mfa=expired`).
pub const EXPIRED: &str = "Your two-step login expired (it lasts 5 minutes) or was already \
    used. Log in again.";

#[derive(Template)]
#[template(path = "login_mfa.html")]
struct MfaPage<'a> {
    nav: Nav<'a>,
    error: Option<&'a str>,
    csrf_token: &'a str,
    /// Where to go afterwards, already checked.
    return_to: Option<&'a str>,
    methods: MfaMethods,
}

/// `?mfa=expired` on `/login`: which sentence the login page shows.
#[derive(Debug, Default, Deserialize)]
pub struct LoginNotice {
    #[serde(default)]
    mfa: Option<String>,
}

/// The sentence for the login page's `?mfa=` (only known values; nothing is echoed).
pub fn notice(query: Result<Query<LoginNotice>, QueryRejection>) -> Option<&'static str> {
    match query.ok()?.0.mfa.as_deref() {
        Some("expired") => Some(EXPIRED),
        _ => None,
    }
}

/// The challenge the browser holds, if any.
pub fn challenge_in<'h>(app: &App, headers: &'h HeaderMap) -> Option<&'h str> {
    read_cookie(headers, app.auth.cookies.challenge_name()).filter(|c| !c.is_empty())
}

/// `path`, with `?rd=` when `rd` is allowed.
fn with_rd(app: &App, path: &str, rd: &str, first: char) -> String {
    match app.site.forward.return_to().check(rd) {
        Some(to) => {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("rd", &to)
                .finish();
            format!("{path}{first}{query}")
        }
        None => path.to_owned(),
    }
}

/// A 303 to `location`, made here (and checked to be a header value).
fn see_other_to(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response(),
    }
}

/// After a matching password for a user with a second factor: the challenge cookie and a
/// 303 to the second step, carrying `rd` when it is allowed.
pub fn to_second_step(app: &App, challenge: &MfaChallenge, rd: &str) -> Response {
    let cookie = app
        .auth
        .cookies
        .challenge_cookie(&challenge.token, challenge.expires_in);
    with_header(
        see_other_to(&with_rd(app, MFA_PATH, rd, '?')),
        header::SET_COOKIE,
        cookie,
    )
}

/// Back to `/login` with the "expired" sentence (and `rd`), the challenge cookie deleted.
fn start_again(app: &App, rd: &str) -> Response {
    with_header(
        see_other_to(&with_rd(app, "/login?mfa=expired", rd, '&')),
        header::SET_COOKIE,
        app.auth.cookies.clear_challenge_cookie(),
    )
}

/// `GET /login/mfa`: the code form, while the browser holds a good challenge; else back to
/// `/login` saying why.
pub async fn mfa_form(
    State(app): State<App>,
    MaybeAuthenticated(user): MaybeAuthenticated,
    headers: HeaderMap,
    query: Result<Query<ReturnQuery>, QueryRejection>,
) -> Response {
    let return_to = checked_rd(&app, query);
    let rd = return_to.as_deref().unwrap_or_default();
    let Some(challenge) = challenge_in(&app, &headers) else {
        return start_again(&app, rd);
    };
    let methods = match app.engine().challenge_methods(challenge).await {
        Ok(methods) => methods,
        Err(MfaError::Store(e)) => return store_failure(&app, &e),
        Err(_) => return start_again(&app, rd),
    };
    let (cookie, token) = form_csrf(&app, user.as_ref(), &headers);
    let page = render(
        StatusCode::OK,
        &MfaPage {
            nav: Nav::new(&app, user.as_ref()),
            error: None,
            csrf_token: &token,
            return_to: return_to.as_deref(),
            methods,
        },
    );
    with_cookie(allow_form_target(page, return_to.as_deref()), cookie)
}

/// The second step's form fields. The code is wiped when dropped and left out of `Debug`.
#[derive(Deserialize)]
pub struct MfaForm {
    #[serde(default)]
    code: Code,
    #[serde(default)]
    csrf_token: String,
    /// Where to go afterwards (checked before use).
    #[serde(default)]
    rd: String,
}

impl std::fmt::Debug for MfaForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaForm")
            .field("rd", &self.rd)
            .finish_non_exhaustive()
    }
}

/// The code form again with `error` and `status`.
async fn mfa_again(
    app: &App,
    challenge: &str,
    status: StatusCode,
    error: &str,
    form: &MfaForm,
) -> Response {
    let methods = app
        .engine()
        .challenge_methods(challenge)
        .await
        .unwrap_or_default();
    let return_to = app.site.forward.return_to().check(&form.rd);
    let page = render(
        status,
        &MfaPage {
            nav: Nav::new(app, None),
            error: Some(error),
            csrf_token: &form.csrf_token,
            return_to: return_to.as_deref(),
            methods,
        },
    );
    allow_form_target(page, return_to.as_deref())
}

/// A new session for `user` proved by `authn` (the request's old session ends: fixation),
/// the pre-session CSRF and challenge cookies deleted, then 303 to `/` (or `rd`).
async fn signed_in_with(
    app: &App,
    current: Option<&Principal>,
    user: &User,
    authn: Authentication,
    user_agent: &str,
    address: &str,
    rd: &str,
) -> Response {
    if let Some(Principal {
        method: Method::Session { key, .. },
        ..
    }) = current
        && let Err(e) = app.engine().end_session(key).await
    {
        return store_failure(app, &e);
    }
    let (cookie, _) = match app
        .engine()
        .start_session_with(user, authn, user_agent, address)
        .await
    {
        Ok(started) => started,
        Err(e) => return store_failure(app, &e),
    };
    let cookies = &app.auth.cookies;
    let max_age = app.engine().config().sessions.absolute_secs;
    let mut response = see_other_to("/");
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, cookies.session_cookie(&cookie, max_age));
    headers.append(header::SET_COOKIE, cookies.clear_csrf_cookie());
    headers.append(header::SET_COOKIE, cookies.clear_challenge_cookie());
    crate::server::flask::write_back(app, user, &mut response);
    back_to(app, response, rd)
}

/// `POST /login/mfa`: the code against the browser's challenge. 303 with a new session
/// (to `/` or the allowed `rd`); the form again with 401 for a wrong code, 422 for none,
/// 429 when throttled; back to `/login` (303) when the challenge expired or was used.
pub async fn mfa_submit(
    State(app): State<App>,
    MaybeAuthenticated(current): MaybeAuthenticated,
    ClientAddr(address): ClientAddr,
    UserAgent(user_agent): UserAgent,
    headers: HeaderMap,
    form: Result<Form<MfaForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return error_page(
            &app,
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The form could not be read. Go back, reload the page and try again.",
        );
    };
    // The form is checked before the challenge: a bad form is 422 with or without one.
    let challenge = challenge_in(&app, &headers).unwrap_or_default();
    if form.code.is_empty() {
        return mfa_again(
            &app,
            challenge,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter the code from your authenticator app, or a recovery code.",
            &form,
        )
        .await;
    }
    if form.code.is_too_long() {
        return mfa_again(
            &app,
            challenge,
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("That is longer than any code ({MAX_CODE_LEN} characters)."),
            &form,
        )
        .await;
    }
    if challenge.is_empty() {
        return start_again(&app, &form.rd);
    }
    match app
        .engine()
        .complete_mfa(challenge, form.code.as_str(), &address)
        .await
    {
        Ok((user, authn)) => {
            login::second_step(Via::Form, Some(user.username.as_str()), "success");
            signed_in_with(
                &app,
                current.as_ref(),
                &user,
                authn,
                &user_agent,
                &address,
                &form.rd,
            )
            .await
        }
        Err(MfaError::Invalid) => {
            login::second_step(Via::Form, None, "invalid");
            mfa_again(
                &app,
                challenge,
                StatusCode::UNAUTHORIZED,
                "That code is not valid, or was used already. Enter the current code from \
                 your authenticator app, or an unused recovery code.",
                &form,
            )
            .await
        }
        Err(MfaError::Throttled { retry_after }) => {
            login::second_step(Via::Form, None, "throttled");
            let secs = retry_after.max(1);
            with_header(
                mfa_again(
                    &app,
                    challenge,
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!("Too many failed attempts. Try again in {secs} seconds."),
                    &form,
                )
                .await,
                header::RETRY_AFTER,
                HeaderValue::from(secs),
            )
        }
        Err(MfaError::Store(e)) => {
            login::second_step(Via::Form, None, "error");
            store_failure(&app, &e)
        }
        Err(_) => {
            login::second_step(Via::Form, None, "expired");
            start_again(&app, &form.rd)
        }
    }
}
