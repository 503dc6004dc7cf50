//! The HTML pages: home, login (with its second step, `/login/mfa`), logout,
//! registration, my sessions, my second factors (`/account/security`), and the
//! first-admin setup page (`/setup`).
//!
//! Server-rendered with askama (Jinja syntax); every value is HTML-escaped by the
//! templates, nothing needs JavaScript. Every form carries a CSRF token: the session's
//! once logged in, else a pre-session token paired with a signed cookie (against login
//! CSRF). The guard in `countersign-axum` checks it before any handler here runs.

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use countersign::auth::{AccountError, Method, Principal};
use countersign::password::{Password, PasswordError};
use countersign::session::SessionKey;
use countersign::user::Role;
use countersign_axum::{
    AuthRejection, MaybeAuthenticated, csrf_token_for, issue_pre_session_csrf, read_cookie,
    wants_html,
};
use serde::Deserialize;

use super::error::{BUSY_RETRY_AFTER_SECS, INVALID_CREDENTIALS};
use super::login::{self, Outcome, Via};
use super::state::{App, ClientAddr, UserAgent};
use crate::display::format_utc;

mod common;
mod logout;
mod mfa_login;
mod passkeys;
mod security;
mod setup;
use common::{
    Nav, form_csrf, render, sentence, signed_in, store_failure, with_cookie, with_header,
};
pub use common::{STYLE, content_security_policy, error_page, see_other};
pub use logout::{LogoutForm, ReturnQuery, logout_page};
use logout::{allow_form_target, back_to, checked_rd};
pub use mfa_login::{LoginNotice, MfaForm, mfa_form, mfa_submit};
pub use security::{
    SecurityForm, SecurityQuery, regenerate_codes, security, totp_begin, totp_confirm, totp_remove,
};
pub use setup::{SetupForm, SetupQuery, setup, setup_form};

/// A login or registration form as shown.
struct FormView<'a> {
    error: Option<&'a str>,
    csrf_token: &'a str,
    username: &'a str,
    /// Where to go after logging in (`/login?rd=`), already checked.
    return_to: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    nav: Nav<'a>,
    logout_csrf: Option<&'a str>,
    form: FormView<'a>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    nav: Nav<'a>,
    form: FormView<'a>,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage<'a> {
    nav: Nav<'a>,
    form: FormView<'a>,
}

/// One row of the sessions page.
struct SessionRow {
    id: String,
    created: String,
    last_seen: String,
    ip: String,
    user_agent: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage<'a> {
    nav: Nav<'a>,
    sessions: Vec<SessionRow>,
    csrf_token: &'a str,
}

/// What a browser is told when a form it posted failed the CSRF check: the form again for
/// the login, registration and setup pages (a fresh token, the same status, a sentence
/// saying what happened), the site's error page for any other page. `None` (JSON) for API
/// clients.
///
/// When the form came without the pre-session cookie its page set, the browser dropped
/// it: a `Secure` cookie over plain HTTP on an address that is not loopback. The page then
/// says how to fix that.
pub fn refused(app: &App, parts: &Parts, rejection: &AuthRejection) -> Option<Response> {
    if !wants_html(parts) {
        return None;
    }
    let status = rejection.status();
    let cookies = &app.auth.cookies;
    let no_cookie = read_cookie(&parts.headers, cookies.csrf_name()).is_none()
        && read_cookie(&parts.headers, cookies.session_name()).is_none();
    let message = match rejection {
        AuthRejection::CsrfFailed if no_cookie && cookies.is_secure() => COOKIE_DROPPED,
        AuthRejection::CsrfFailed => FORM_EXPIRED,
        AuthRejection::PayloadTooLarge { .. } => "The form was too large. Please try again.",
        _ => "Authentication is temporarily unavailable. Please try again shortly.",
    };
    let mut page = match parts.uri.path() {
        path @ ("/login" | "/register") => {
            // A fresh pair: the old cookie is what failed.
            let (cookie, token) = issue_pre_session_csrf(&app.auth);
            let form = FormView {
                error: Some(message),
                csrf_token: &token,
                username: "",
                return_to: None,
            };
            let nav = Nav::new(app, None);
            let page = if path == "/login" {
                render(status, &LoginPage { nav, form })
            } else {
                render(status, &RegisterPage { nav, form })
            };
            with_header(page, header::SET_COOKIE, cookie)
        }
        _ => error_page(app, status, "This form could not be accepted", message),
    };
    if let AuthRejection::Unavailable { retry_after_secs } = rejection {
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
    }
    Some(page)
}

/// A form that failed the CSRF check for an expired or foreign token.
const FORM_EXPIRED: &str = "This form expired or was sent from another site. \
    It has been reloaded: please try again.";

/// A form that came back without the cookie its page set.
pub const COOKIE_DROPPED: &str = "Your browser did not send back the cookie this page set, \
    so the form cannot be accepted. Browsers keep Secure cookies only over HTTPS or on \
    localhost/127.0.0.1: reach this server through HTTPS (a TLS proxy in front, started \
    with --trusted-proxies and --public-url), or, for development only, start it with \
    --insecure-cookies. Check also that cookies are not blocked for this site.";

/// `GET /`: "Logged in as {username}" with a logout button, or "You are not logged in"
/// with the login form.
pub async fn home(
    State(app): State<App>,
    MaybeAuthenticated(user): MaybeAuthenticated,
    headers: HeaderMap,
) -> Response {
    match &user {
        Some(p) => render(
            StatusCode::OK,
            &HomePage {
                nav: Nav::new(&app, Some(p)),
                logout_csrf: csrf_token_for(p),
                form: FormView {
                    error: None,
                    csrf_token: "",
                    username: "",
                    return_to: None,
                },
            },
        ),
        None => {
            let (cookie, token) = form_csrf(&app, None, &headers);
            let page = render(
                StatusCode::OK,
                &HomePage {
                    nav: Nav::new(&app, None),
                    logout_csrf: None,
                    form: FormView {
                        error: None,
                        csrf_token: &token,
                        username: "",
                        return_to: None,
                    },
                },
            );
            with_cookie(page, cookie)
        }
    }
}

/// `GET /login`, `GET /login?rd=URL` (after logging in, the browser goes to `URL` when it
/// is allowed: [`crate::redirect`]).
pub async fn login_form(
    State(app): State<App>,
    MaybeAuthenticated(user): MaybeAuthenticated,
    headers: HeaderMap,
    query: Result<Query<ReturnQuery>, QueryRejection>,
    notice: Result<Query<LoginNotice>, QueryRejection>,
) -> Response {
    let (cookie, token) = form_csrf(&app, user.as_ref(), &headers);
    let return_to = checked_rd(&app, query);
    let page = render(
        StatusCode::OK,
        &LoginPage {
            nav: Nav::new(&app, user.as_ref()),
            form: FormView {
                error: mfa_login::notice(notice),
                csrf_token: &token,
                username: "",
                return_to: return_to.as_deref(),
            },
        },
    );
    with_cookie(allow_form_target(page, return_to.as_deref()), cookie)
}

/// The login and registration forms' fields. The password is a [`Password`]: wiped when
/// dropped, redacted in `Debug`; the CSRF token is left out of `Debug` too.
#[derive(Deserialize)]
pub struct CredentialsForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: Password,
    #[serde(default)]
    csrf_token: String,
    /// Where to go after logging in (checked before use).
    #[serde(default)]
    rd: String,
}

impl std::fmt::Debug for CredentialsForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsForm")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish_non_exhaustive()
    }
}

/// The login page again, with an error, the username as typed, and the token the form
/// came with (it passed the CSRF guard, so its cookie is in place): two failures differ
/// only in the username echoed back.
fn login_again(app: &App, status: StatusCode, error: &str, form: &CredentialsForm) -> Response {
    let return_to = app.site.forward.return_to().check(&form.rd);
    let page = render(
        status,
        &LoginPage {
            nav: Nav::new(app, None),
            form: FormView {
                error: Some(error),
                csrf_token: &form.csrf_token,
                username: &form.username,
                return_to: return_to.as_deref(),
            },
        },
    );
    allow_form_target(page, return_to.as_deref())
}

/// `POST /login`: 303 to `/` with a new session cookie, or, for a user with a second
/// factor, to `/login/mfa` with the challenge cookie ([`mfa_login`]); 401 and the form
/// again for bad credentials; 429 when throttled and 503 when hashing is at capacity, both
/// with `Retry-After`.
pub async fn login(
    State(app): State<App>,
    MaybeAuthenticated(current): MaybeAuthenticated,
    ClientAddr(address): ClientAddr,
    UserAgent(user_agent): UserAgent,
    form: Result<Form<CredentialsForm>, FormRejection>,
) -> Response {
    let Ok(Form(mut form)) = form else {
        return error_page(
            &app,
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The login form could not be read. Go back, reload the page and try again.",
        );
    };
    if form.username.is_empty() || form.password.is_empty() {
        return login_again(
            &app,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter your username and password.",
            &form,
        );
    }
    let password = std::mem::take(&mut form.password);
    match login::attempt(&app, &form.username, password, &address, Via::Form).await {
        Outcome::Success(user) => match login::challenge(&app, &user, Via::Form).await {
            // A second factor: no session yet, the second step first.
            Ok(Some(challenge)) => mfa_login::to_second_step(&app, &challenge, &form.rd),
            Ok(None) => {
                let response =
                    signed_in(&app, current.as_ref(), &user, &user_agent, &address).await;
                back_to(&app, response, &form.rd)
            }
            Err(e) => store_failure(&app, &e),
        },
        Outcome::Invalid => login_again(&app, StatusCode::UNAUTHORIZED, INVALID_CREDENTIALS, &form),
        Outcome::Throttled(secs) => with_header(
            login_again(
                &app,
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many failed attempts. Try again in {secs} seconds."),
                &form,
            ),
            header::RETRY_AFTER,
            HeaderValue::from(secs),
        ),
        Outcome::Busy => with_header(
            login_again(
                &app,
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is busy. Try again in a moment.",
                &form,
            ),
            header::RETRY_AFTER,
            HeaderValue::from(BUSY_RETRY_AFTER_SECS),
        ),
        Outcome::Failed(e) => store_failure(&app, &e),
    }
}

/// `POST /logout`: ends the session, clears the cookie, 303 to `/` (or to the form's `rd`
/// when it is allowed).
pub async fn logout(
    State(app): State<App>,
    MaybeAuthenticated(user): MaybeAuthenticated,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let rd = form.map(|Form(f)| f.rd).unwrap_or_default();
    // Flask session cookies signed before this logout are refused by the bridge from now
    // on (recorded first: if the store fails, nothing has happened and the user can retry).
    if let Some(id) = user.as_ref().and_then(|p| p.user_id)
        && let Err(e) = countersign::flask::bridge::record_logout(app.engine(), id).await
    {
        return store_failure(&app, &e);
    }
    match countersign_axum::sign_out(&app.auth, user.as_ref()).await {
        Ok(clear) => {
            if let Some(Principal {
                method: Method::Session { .. },
                username,
                ..
            }) = &user
            {
                tracing::info!(user = %username, "logged out");
            }
            let mut response = with_header(see_other("/"), header::SET_COOKIE, clear);
            super::flask::clear(&app, &mut response);
            back_to(&app, response, &rd)
        }
        Err(e) => store_failure(&app, &e),
    }
}

/// `GET /register` (only routed when registration is open).
pub async fn register_form(
    State(app): State<App>,
    MaybeAuthenticated(user): MaybeAuthenticated,
    headers: HeaderMap,
) -> Response {
    let (cookie, token) = form_csrf(&app, user.as_ref(), &headers);
    let page = render(
        StatusCode::OK,
        &RegisterPage {
            nav: Nav::new(&app, user.as_ref()),
            form: FormView {
                error: None,
                csrf_token: &token,
                username: "",
                return_to: None,
            },
        },
    );
    with_cookie(page, cookie)
}

fn register_again(app: &App, status: StatusCode, error: &str, form: &CredentialsForm) -> Response {
    render(
        status,
        &RegisterPage {
            nav: Nav::new(app, None),
            form: FormView {
                error: Some(error),
                csrf_token: &form.csrf_token,
                username: &form.username,
                return_to: None,
            },
        },
    )
}

/// `POST /register` (only routed when registration is open): creates a `user` account,
/// logs it in (303 to `/`), or shows the form again with what to fix. Attempts are
/// throttled per client address, counted before any hashing ([`Auth::register`]): over the
/// limit the form comes back with 429 and `Retry-After`.
///
/// [`Auth::register`]: countersign::auth::Auth::register
pub async fn register(
    State(app): State<App>,
    MaybeAuthenticated(current): MaybeAuthenticated,
    ClientAddr(address): ClientAddr,
    UserAgent(user_agent): UserAgent,
    form: Result<Form<CredentialsForm>, FormRejection>,
) -> Response {
    let Ok(Form(mut form)) = form else {
        return error_page(
            &app,
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The registration form could not be read. Go back, reload the page and try again.",
        );
    };
    let password = std::mem::take(&mut form.password);
    let user = match app
        .engine()
        .register(&form.username, password, Role::user(), &address)
        .await
    {
        Ok(user) => user,
        Err(AccountError::Throttled { retry_after }) => {
            let secs = u64::try_from(retry_after.max(1)).unwrap_or(1);
            tracing::warn!(retry_after = secs, "registration throttled");
            return with_header(
                register_again(
                    &app,
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!(
                        "Too many registration attempts from your network. \
                         Try again in {secs} seconds."
                    ),
                    &form,
                ),
                header::RETRY_AFTER,
                HeaderValue::from(secs),
            );
        }
        Err(AccountError::Name(e)) => {
            return register_again(&app, StatusCode::UNPROCESSABLE_ENTITY, &sentence(&e), &form);
        }
        Err(AccountError::Password(PasswordError::Busy)) => {
            return with_header(
                register_again(
                    &app,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The server is busy. Try again in a moment.",
                    &form,
                ),
                header::RETRY_AFTER,
                HeaderValue::from(BUSY_RETRY_AFTER_SECS),
            );
        }
        Err(AccountError::Password(e)) => {
            return register_again(&app, StatusCode::UNPROCESSABLE_ENTITY, &sentence(&e), &form);
        }
        Err(AccountError::Taken) => {
            return register_again(
                &app,
                StatusCode::CONFLICT,
                "That username is taken. Choose another.",
                &form,
            );
        }
        Err(AccountError::Store(e)) => return store_failure(&app, &e),
        Err(e) => {
            tracing::error!(error = %e, "registration failed");
            return error_page(
                &app,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Registration failed",
                "Something went wrong on our side. Please try again shortly.",
            );
        }
    };
    tracing::info!(user = %user.username, "account registered");
    metrics::counter!("countersign_registrations_total").increment(1);
    signed_in(&app, current.as_ref(), &user, &user_agent, &address).await
}

/// `GET /account/sessions`: my sessions, each with an "End" button, and "Log out
/// everywhere". Anonymous visitors are sent to `/login`.
pub async fn sessions(
    State(app): State<App>,
    MaybeAuthenticated(user): MaybeAuthenticated,
) -> Response {
    let Some(principal) = user else {
        return see_other("/login");
    };
    let id = match app.user_id_of(&principal).await {
        Ok(Some(id)) => id,
        Ok(None) => return see_other("/login"),
        Err(e) => return store_failure(&app, &e),
    };
    let records = match app.engine().list_sessions(id).await {
        Ok(r) => r,
        Err(e) => return store_failure(&app, &e),
    };
    let current = match &principal.method {
        Method::Session { key, .. } => Some(key),
        Method::Bearer { .. } => None,
    };
    let rows = records
        .into_iter()
        .map(|r| SessionRow {
            current: current == Some(&r.key),
            id: r.key.to_string(),
            created: format_utc(r.created_at),
            last_seen: format_utc(r.last_seen),
            ip: r.ip,
            user_agent: r.user_agent,
        })
        .collect();
    render(
        StatusCode::OK,
        &SessionsPage {
            nav: Nav::new(&app, Some(&principal)),
            sessions: rows,
            csrf_token: csrf_token_for(&principal).unwrap_or_default(),
        },
    )
}

/// The "End" button's form.
#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    id: String,
}

/// `POST /account/sessions/revoke`: ends one of my sessions; back to the list (or to `/`
/// with the cookie cleared, when it was this one). A form without a session id is 400
/// whoever sends it; a visitor who is not logged in is sent to `/login`.
pub async fn revoke_session(
    State(app): State<App>,
    MaybeAuthenticated(user): MaybeAuthenticated,
    form: Result<Form<RevokeForm>, FormRejection>,
) -> Response {
    let Some(key) = form.ok().and_then(|Form(f)| SessionKey::parse(&f.id)) else {
        return error_page(
            &app,
            StatusCode::BAD_REQUEST,
            "Bad request",
            "That is not a session id.",
        );
    };
    let Some(principal) = user else {
        return see_other("/login");
    };
    let id = match app.user_id_of(&principal).await {
        Ok(Some(id)) => id,
        Ok(None) => return see_other("/login"),
        Err(e) => return store_failure(&app, &e),
    };
    if let Err(e) = app.engine().revoke_session(id, &key).await {
        return store_failure(&app, &e);
    }
    match &principal.method {
        Method::Session { key: current, .. } if *current == key => with_header(
            see_other("/"),
            header::SET_COOKIE,
            app.auth.cookies.clear_session_cookie(),
        ),
        _ => see_other("/account/sessions"),
    }
}

/// `POST /account/sessions/revoke-all`: log out everywhere (every session, refresh
/// token and access token), then 303 to `/` with the cookie cleared.
pub async fn revoke_all(
    State(app): State<App>,
    MaybeAuthenticated(user): MaybeAuthenticated,
) -> Response {
    let Some(principal) = user else {
        return see_other("/login");
    };
    let id = match app.user_id_of(&principal).await {
        Ok(Some(id)) => id,
        Ok(None) => return see_other("/login"),
        Err(e) => return store_failure(&app, &e),
    };
    match app.engine().logout_everywhere(id).await {
        Ok(n) => {
            tracing::info!(user = %principal.username, sessions = n, "logged out everywhere");
            let mut response = with_header(
                see_other("/"),
                header::SET_COOKIE,
                app.auth.cookies.clear_session_cookie(),
            );
            super::flask::clear(&app, &mut response);
            response
        }
        Err(e) => store_failure(&app, &e),
    }
}
