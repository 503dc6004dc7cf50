//! The router and its handlers.
//!
//! Every handler that touches a buggy takes its owner from the authenticated principal
//! ([`MaybeAuthenticated`], [`Authenticated`], [`RequireRole`]); no route takes a user id,
//! and the form's fields are only the buggy's. State changes pass [`CsrfLayer`] first:
//! the session's token for a signed-in user, the signed pre-session token for the login
//! form, nothing for a bearer token (a browser never sends one on its own).
//!
//! Pages are askama templates, so every value is HTML-escaped. Every response is
//! `Cache-Control: no-store` (pages hold one user's data; a shared cache must not hand
//! them to another) except the stylesheet.

use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use countersign::auth::{LoginError, Principal};
use countersign::password::Password;
use countersign::user::UserId;
use countersign_axum::{
    Admin, AuthRejection, Authenticated, ClientAddr, CsrfLayer, MaybeAuthenticated, RequireRole,
    RoleName, UserAgent, csrf_token_for, issue_pre_session_csrf,
};
use serde::Deserialize;
use serde_json::json;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::AppState;
use crate::buggy::{
    Algo, Armour, Buggy, BuggyForm, Color, FieldError, FlagPattern, MAX_POWER_UNITS, MAX_TYRES,
    MAX_WHEELS, MIN_WHEELS, PowerType, Tyres,
};

/// The stylesheet, served at `/style.css`.
const STYLE: &str = include_str!("../templates/style.css");

/// Nothing loads but our stylesheet; forms post only here; no framing.
const CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The message for bad credentials (countersign's contract text).
const INVALID_CREDENTIALS: &str = "Invalid username or password";

/// Seconds to wait when password hashing or a store is busy.
const RETRY_AFTER_SECS: u64 = 1;

/// The buggy race app: pages, the JSON route and the admin list, behind countersign's
/// CSRF guard.
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so that failed
/// logins are throttled per client address too (without it, all clients share one
/// address bucket).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/buggy") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/buggy", get(buggy_page).post(save_buggy))
        .route("/api/buggy", get(api_buggy))
        .route("/admin/buggies", get(admin_buggies))
        .route("/style.css", get(stylesheet))
        .fallback(not_found)
        .layer(CsrfLayer::new(Arc::clone(state.auth_state())))
        .layer(middleware::map_response(security_headers))
        .with_state(state)
}

// ----- page models -----

/// The navigation bar.
struct Nav<'a> {
    username: Option<&'a str>,
    is_admin: bool,
    /// The token for the logout form; `None` when there is no session to end.
    logout_csrf: Option<&'a str>,
}

impl<'a> Nav<'a> {
    fn of(user: Option<&'a Principal>) -> Self {
        Self {
            username: user.map(|u| u.username.as_str()),
            is_admin: user.is_some_and(|u| u.has_role(Admin::NAME)),
            logout_csrf: user.and_then(csrf_token_for),
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    nav: Nav<'a>,
    error: Option<&'a str>,
    csrf_token: &'a str,
    username: &'a str,
}

/// How a field is entered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    Number,
    Select,
    Checkbox,
}

/// One `<option>`.
struct Choice {
    value: &'static str,
    selected: bool,
}

/// One field of the buggy form, as shown.
struct Field<'a> {
    name: &'static str,
    label: &'static str,
    input: Input,
    /// The submitted (or stored) text, for number inputs.
    value: &'a str,
    min: u32,
    max: u32,
    step: u32,
    options: Vec<Choice>,
    checked: bool,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "buggy.html")]
struct BuggyPage<'a> {
    nav: Nav<'a>,
    csrf_token: Option<&'a str>,
    fields: Vec<Field<'a>>,
    errors: &'a [FieldError],
    saved: bool,
}

/// One row of the admin list.
struct Row {
    username: String,
    role: String,
    buggy: Buggy,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage<'a> {
    nav: Nav<'a>,
    rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nav: Nav<'a>,
    title: &'a str,
    message: &'a str,
}

/// The buggy form's fields, in order, showing `form`'s values and `errors`.
fn fields<'a>(form: &'a BuggyForm, errors: &'a [FieldError]) -> Vec<Field<'a>> {
    let error = |name: &str| {
        errors
            .iter()
            .find(|e| e.field == name)
            .map(|e| e.message.as_str())
    };
    let number = |name, label, value: &'a String, min, max, step| Field {
        name,
        label,
        input: Input::Number,
        value,
        min,
        max,
        step,
        options: Vec::new(),
        checked: false,
        error: error(name),
    };
    let select = |name, label, all: &mut dyn Iterator<Item = &'static str>, value: &str| Field {
        name,
        label,
        input: Input::Select,
        value: "",
        min: 0,
        max: 0,
        step: 0,
        options: all
            .map(|v| Choice {
                value: v,
                selected: v == value,
            })
            .collect(),
        checked: false,
        error: error(name),
    };
    vec![
        number(
            "qty_wheels",
            "Number of wheels (even)",
            &form.qty_wheels,
            MIN_WHEELS,
            MAX_WHEELS,
            2,
        ),
        select(
            "tyres",
            "Tyres",
            &mut Tyres::ALL.iter().map(|c| c.as_str()),
            &form.tyres,
        ),
        number(
            "qty_tyres",
            "Number of tyres (at least one per wheel)",
            &form.qty_tyres,
            MIN_WHEELS,
            MAX_TYRES,
            1,
        ),
        select(
            "power_type",
            "Power type",
            &mut PowerType::ALL.iter().map(|c| c.as_str()),
            &form.power_type,
        ),
        number(
            "power_units",
            "Units of power",
            &form.power_units,
            1,
            MAX_POWER_UNITS,
            1,
        ),
        select(
            "flag_color",
            "Flag colour",
            &mut Color::ALL.iter().map(|c| c.as_str()),
            &form.flag_color,
        ),
        select(
            "flag_pattern",
            "Flag pattern",
            &mut FlagPattern::ALL.iter().map(|c| c.as_str()),
            &form.flag_pattern,
        ),
        select(
            "flag_color_secondary",
            "Secondary flag colour (for a patterned flag)",
            &mut Color::ALL.iter().map(|c| c.as_str()),
            &form.flag_color_secondary,
        ),
        select(
            "armour",
            "Armour",
            &mut Armour::ALL.iter().map(|c| c.as_str()),
            &form.armour,
        ),
        select(
            "algo",
            "Race strategy",
            &mut Algo::ALL.iter().map(|c| c.as_str()),
            &form.algo,
        ),
        Field {
            name: "fireproof",
            label: "Fireproof",
            input: Input::Checkbox,
            value: "",
            min: 0,
            max: 0,
            step: 0,
            options: Vec::new(),
            checked: form.fireproof.is_some(),
            error: error("fireproof"),
        },
    ]
}

// ----- responses -----

/// A page with `status`. A template error (never expected: the templates are checked at
/// compile time and only format plain values) is logged and answered 500.
fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a template failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn error_page(
    user: Option<&Principal>,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Response {
    render(
        status,
        &ErrorPage {
            nav: Nav::of(user),
            title,
            message,
        },
    )
}

/// 503 with `Retry-After`, as an error page.
fn unavailable(user: Option<&Principal>) -> Response {
    let mut response = error_page(
        user,
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        "The server is busy; try again in a moment.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    response
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// Whose buggy a request may touch: the principal's own, by id.
///
/// A token signed with our key but naming no user id (one made by PyJWT with only
/// `username` and `role`, say) is refused rather than matched by name: names can be
/// reused, ids cannot.
fn owner(user: &Principal) -> Result<UserId, AuthRejection> {
    user.user_id.ok_or_else(|| {
        tracing::debug!(code = "no_user_id", "credential names no user id");
        AuthRejection::InvalidToken
    })
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, as countersign's server sends: no other site learns which page a
    // link was followed from, and our own form posts keep a real `Origin` header. Under
    // `no-referrer` a browser sends `Origin: null` on every form post, so only
    // `Sec-Fetch-Site` could then vouch for the request, and some browsers still in use
    // send no `Sec-Fetch-Site`. The CSRF check accepts a same-origin post under any
    // policy (the browser test runs the login form under each).
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
}

async fn not_found(MaybeAuthenticated(user): MaybeAuthenticated) -> Response {
    error_page(
        user.as_ref(),
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page.",
    )
}

/// A form body axum could not read (wrong content type, bad encoding, a field twice).
fn bad_form(user: Option<&Principal>, rejection: &FormRejection) -> Response {
    tracing::debug!(error = %rejection.body_text(), "form refused");
    error_page(
        user,
        rejection.status(),
        "The form could not be read",
        "Send the form from its page and try again.",
    )
}

// ----- login and logout -----

/// The login form. The password is wiped from memory when the form is dropped.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// The login form with a fresh pre-session CSRF pair (its signed cookie set here).
fn login_form(app: &AppState, status: StatusCode, error: Option<&str>, username: &str) -> Response {
    let (cookie, token) = issue_pre_session_csrf(app.auth_state());
    let mut response = render(
        status,
        &LoginPage {
            nav: Nav::of(None),
            error,
            csrf_token: &token,
            username,
        },
    );
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

async fn login_page(
    State(app): State<AppState>,
    MaybeAuthenticated(user): MaybeAuthenticated,
) -> Response {
    if user.is_some() {
        return Redirect::to("/buggy").into_response();
    }
    login_form(&app, StatusCode::OK, None, "")
}

async fn login(
    State(app): State<AppState>,
    MaybeAuthenticated(current): MaybeAuthenticated,
    ClientAddr(address): ClientAddr,
    UserAgent(user_agent): UserAgent,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let mut form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return bad_form(None, &rejection),
    };
    let password = Password::new(std::mem::take(&mut form.password));
    let user = match app.auth().login(&form.username, password, &address).await {
        Ok(user) => user,
        Err(LoginError::Throttled { retry_after }) => {
            tracing::warn!(retry_after, "login throttled");
            let message = format!("Too many failed logins: try again in {retry_after} seconds.");
            let mut response = login_form(
                &app,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&message),
                &form.username,
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
            return response;
        }
        Err(LoginError::Busy) => {
            tracing::warn!("login refused: password hashing is at capacity");
            return unavailable(None);
        }
        Err(LoginError::Store(e)) => {
            tracing::error!(error = %e, "login failed: store error");
            return unavailable(None);
        }
        // Invalid, or a kind added to the engine later: refuse, as for bad credentials.
        Err(_) => {
            // No username in the log: people type passwords into that field.
            tracing::info!("login failed: invalid username or password");
            return login_form(
                &app,
                StatusCode::UNAUTHORIZED,
                Some(INVALID_CREDENTIALS),
                &form.username,
            );
        }
    };
    // A new session id at every login (against fixation): sign_in ends the old one.
    match countersign_axum::sign_in(
        app.auth_state(),
        current.as_ref(),
        &user,
        &user_agent,
        &address,
    )
    .await
    {
        Ok(cookies) => {
            tracing::info!(user = %user.username, "logged in");
            let mut response = Redirect::to("/buggy").into_response();
            cookies.apply(&mut response);
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "could not start a session");
            unavailable(None)
        }
    }
}

async fn logout(
    State(app): State<AppState>,
    MaybeAuthenticated(user): MaybeAuthenticated,
) -> Response {
    match countersign_axum::sign_out(app.auth_state(), user.as_ref()).await {
        Ok(clear) => {
            let mut response = Redirect::to("/login").into_response();
            response.headers_mut().append(header::SET_COOKIE, clear);
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "could not end a session");
            unavailable(user.as_ref())
        }
    }
}

// ----- my buggy -----

fn buggy_form_page(
    user: &Principal,
    status: StatusCode,
    form: &BuggyForm,
    errors: &[FieldError],
    saved: bool,
) -> Response {
    render(
        status,
        &BuggyPage {
            nav: Nav::of(Some(user)),
            csrf_token: csrf_token_for(user),
            fields: fields(form, errors),
            errors,
            saved,
        },
    )
}

async fn buggy_page(
    State(app): State<AppState>,
    MaybeAuthenticated(user): MaybeAuthenticated,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(user) = user else {
        return to_login();
    };
    let id = match owner(&user) {
        Ok(id) => id,
        Err(rejection) => return rejection.into_response(),
    };
    let form = BuggyForm::from(&app.buggies().get(id));
    let saved = query.as_deref() == Some("saved");
    buggy_form_page(&user, StatusCode::OK, &form, &[], saved)
}

async fn save_buggy(
    State(app): State<AppState>,
    MaybeAuthenticated(user): MaybeAuthenticated,
    form: Result<Form<BuggyForm>, FormRejection>,
) -> Response {
    let Some(user) = user else {
        return to_login();
    };
    let id = match owner(&user) {
        Ok(id) => id,
        Err(rejection) => return rejection.into_response(),
    };
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return bad_form(Some(&user), &rejection),
    };
    match form.parse() {
        Ok(buggy) => {
            app.buggies().set(id, buggy);
            tracing::info!(user = %user.username, "buggy saved");
            Redirect::to("/buggy?saved").into_response()
        }
        Err(errors) => buggy_form_page(
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            &errors,
            false,
        ),
    }
}

async fn api_buggy(State(app): State<AppState>, Authenticated(user): Authenticated) -> Response {
    match owner(&user) {
        Ok(id) => Json(json!({
            "username": user.username,
            "buggy": app.buggies().get(id),
        }))
        .into_response(),
        Err(rejection) => rejection.into_response(),
    }
}

// ----- admin -----

async fn admin_buggies(
    State(app): State<AppState>,
    MaybeAuthenticated(viewer): MaybeAuthenticated,
    admin: Result<RequireRole<Admin>, AuthRejection>,
) -> Response {
    let admin = match admin {
        Ok(RequireRole(admin)) => admin,
        Err(AuthRejection::MissingToken) => return to_login(),
        Err(AuthRejection::InvalidSession) => {
            let mut response = to_login();
            response.headers_mut().append(
                header::SET_COOKIE,
                app.auth_state().cookies.clear_session_cookie(),
            );
            return response;
        }
        Err(AuthRejection::InsufficientScope { required }) => {
            return error_page(
                viewer.as_ref(),
                StatusCode::FORBIDDEN,
                "Admins only",
                &format!(
                    "This page needs the {required} role. Your own buggy is on the My buggy page."
                ),
            );
        }
        Err(other) => return other.into_response(),
    };
    let users = match app.auth().list_users().await {
        Ok(users) => users,
        Err(e) => {
            tracing::error!(error = %e, "could not list users");
            return unavailable(Some(&admin));
        }
    };
    let rows = users
        .into_iter()
        .map(|u| Row {
            buggy: app.buggies().get(u.id),
            username: u.username.to_string(),
            role: u.role.to_string(),
        })
        .collect();
    render(
        StatusCode::OK,
        &AdminPage {
            nav: Nav::of(Some(&admin)),
            rows,
        },
    )
}
