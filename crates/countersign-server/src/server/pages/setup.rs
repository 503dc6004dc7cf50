//! `/setup`: the first administrator, made in the browser through the one-time link that
//! `serve` prints while no user exists. The token's rules (256 random bits kept only as a
//! MAC, one hour, single use, per instance) live in the engine: `countersign::setup`.
//!
//! Whatever makes the link unusable (a wrong, expired or used token, or an account that
//! exists) gets the same 404 page, so the answer tells a stranger nothing. The form is a
//! pre-session form like the login form: its CSRF token is checked by the guard before
//! the handler runs. A refused name or password shows the form again (422) and leaves the
//! link usable; success signs the new admin in (303 to `/`) and closes the link.

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use countersign::auth::AccountError;
use countersign::password::{Password, PasswordError};
use countersign::setup::SetupError;
use countersign_axum::MaybeAuthenticated;
use serde::Deserialize;

use super::common::{
    Nav, error_page, form_csrf, render, sentence, signed_in, store_failure, with_cookie,
    with_header,
};
use crate::server::error::BUSY_RETRY_AFTER_SECS;
use crate::server::state::{App, ClientAddr, UserAgent};

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage<'a> {
    nav: Nav<'a>,
    error: Option<&'a str>,
    csrf_token: &'a str,
    token: &'a str,
    username: &'a str,
}

/// The link's query: `?token=…`. Left out of `Debug`.
#[derive(Default, Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

impl std::fmt::Debug for SetupQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupQuery").finish_non_exhaustive()
    }
}

/// The setup form's fields. The passwords are [`Password`]s (wiped, redacted); the setup
/// and CSRF tokens are left out of `Debug`.
#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: Password,
    #[serde(default)]
    password_confirm: Password,
    #[serde(default)]
    csrf_token: String,
}

impl std::fmt::Debug for SetupForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupForm")
            .field("username", &self.username)
            .field("password", &self.password)
            .field("password_confirm", &self.password_confirm)
            .finish_non_exhaustive()
    }
}

/// The one answer for a link that cannot be used, whatever the reason.
fn gone(app: &App) -> Response {
    error_page(
        app,
        StatusCode::NOT_FOUND,
        "Setup link not valid",
        "This setup link cannot be used: it is wrong, it has expired or it was used \
         already, or the server has accounts. An operator can add accounts with \
         `countersign user add`.",
    )
}

/// The form again, with an error, the username as typed, the same setup token and the
/// CSRF token the form came with (it passed the guard, so its cookie is in place).
fn setup_again(app: &App, status: StatusCode, error: &str, form: &SetupForm) -> Response {
    render(
        status,
        &SetupPage {
            nav: Nav::new(app, None),
            error: Some(error),
            csrf_token: &form.csrf_token,
            token: &form.token,
            username: &form.username,
        },
    )
}

/// `GET /setup?token=…`: the form to create the first administrator, or 404.
pub async fn setup_form(
    State(app): State<App>,
    MaybeAuthenticated(user): MaybeAuthenticated,
    headers: axum::http::HeaderMap,
    query: Result<Query<SetupQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    match app.engine().setup_allowed(&query.token).await {
        Ok(true) => {}
        Ok(false) => return gone(&app),
        Err(e) => return store_failure(&app, &e),
    }
    let (cookie, csrf_token) = form_csrf(&app, user.as_ref(), &headers);
    let page = render(
        StatusCode::OK,
        &SetupPage {
            nav: Nav::new(&app, None),
            error: None,
            csrf_token: &csrf_token,
            token: &query.token,
            username: "",
        },
    );
    with_cookie(page, cookie)
}

/// `POST /setup`: create the first administrator, sign them in and 303 to `/`; the form
/// again (422) for a name or password to fix; 503 with `Retry-After` when hashing is at
/// capacity; 404 when the link cannot be used.
pub async fn setup(
    State(app): State<App>,
    MaybeAuthenticated(current): MaybeAuthenticated,
    ClientAddr(address): ClientAddr,
    UserAgent(user_agent): UserAgent,
    form: Result<Form<SetupForm>, FormRejection>,
) -> Response {
    let Ok(Form(mut form)) = form else {
        return error_page(
            &app,
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The setup form could not be read. Go back, reload the page and try again.",
        );
    };
    // The token first: a stranger learns nothing from what else the form holds.
    match app.engine().setup_allowed(&form.token).await {
        Ok(true) => {}
        Ok(false) => return gone(&app),
        Err(e) => return store_failure(&app, &e),
    }
    // Both fields came from the same person: no secret of ours is compared here.
    if form.password.as_bytes() != form.password_confirm.as_bytes() {
        return setup_again(
            &app,
            StatusCode::UNPROCESSABLE_ENTITY,
            "The two passwords do not match.",
            &form,
        );
    }
    let password = std::mem::take(&mut form.password);
    let failure = match app
        .engine()
        .create_first_admin(&form.token, &form.username, password)
        .await
    {
        Ok(user) => {
            tracing::info!(user = %user.username, "first administrator created through the setup link");
            return signed_in(&app, current.as_ref(), &user, &user_agent, &address).await;
        }
        Err(e) => e,
    };
    match failure {
        SetupError::Closed => gone(&app),
        SetupError::Account(AccountError::Name(e)) => {
            setup_again(&app, StatusCode::UNPROCESSABLE_ENTITY, &sentence(&e), &form)
        }
        SetupError::Account(AccountError::Password(PasswordError::Busy)) => with_header(
            setup_again(
                &app,
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is busy. Try again in a moment.",
                &form,
            ),
            header::RETRY_AFTER,
            HeaderValue::from(BUSY_RETRY_AFTER_SECS),
        ),
        SetupError::Account(AccountError::Password(e)) => {
            setup_again(&app, StatusCode::UNPROCESSABLE_ENTITY, &sentence(&e), &form)
        }
        SetupError::Account(AccountError::Store(e)) => store_failure(&app, &e),
        e => {
            tracing::error!(error = %e, "setup failed");
            error_page(
                &app,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Setup failed",
                "Something went wrong on our side. Please try again shortly.",
            )
        }
    }
}
