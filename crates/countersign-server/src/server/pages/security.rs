//! `/account/security`: a signed-in user's second factors, one section each
//! (`templates/security.html` includes one template per section; a new section is a
//! template, its data in [`SecurityPage`], and its forms' routes):
//!
//! - the authenticator app (`security_totp.html`): enrol (the QR code, drawn as inline SVG,
//!   the secret to type in, and a form for the first code; asks for a current code when a
//!   passkey is the account's second factor), the ten recovery codes shown once after it,
//!   remove (asks for a current code);
//! - the recovery codes (`security_recovery.html`): how many are left, which were used and
//!   when, and new ones (asks for a current code).
//!
//! Asking for a code follows the API's step-up rule ([`step_up`]): not while there is no
//! second factor, nor within 5 minutes of a login that proved one. Every form carries the
//! session's CSRF token; every value is escaped by the templates except the QR code,
//! which the `qrcode` crate drew from the `otpauth://` URI.

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use countersign::auth::{MfaError, MfaMethods, Principal, TotpEnrolment};
use countersign::mfa::FactorKind;
use countersign::mfa::recovery::RecoveryCodes;
use countersign::user::User;
use countersign_axum::{MaybeAuthenticated, csrf_token_for};
use serde::Deserialize;

use super::common::{Nav, error_page, render, see_other, store_failure, with_header};
use crate::display::format_utc;
use crate::server::mfa::{Code, STEP_UP_INVALID, StepUpRefusal, is_fresh, issuer, step_up};
use crate::server::state::{App, ClientAddr};

/// The authenticator-app section.
pub(super) struct TotpView {
    /// Confirmed.
    enrolled: bool,
    /// Started and not confirmed.
    pending: bool,
    created: String,
    last_used: String,
}

/// An enrolment just started: what the user scans or types.
pub(super) struct EnrolmentView {
    /// The QR code, an SVG element (without the XML declaration).
    qr_svg: String,
    /// The secret in base32, in groups of four for typing.
    secret: String,
    /// The `otpauth://` URI, for a phone that opens links.
    uri: String,
}

/// The recovery-codes section.
pub(super) struct RecoveryView {
    left: usize,
    total: usize,
    created: String,
    /// When each used code was used.
    used: Vec<String>,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage<'a> {
    nav: Nav<'a>,
    csrf_token: &'a str,
    /// A sentence saying what just happened.
    notice: Option<&'a str>,
    /// A sentence saying what went wrong.
    error: Option<&'a str>,
    methods: MfaMethods,
    totp: TotpView,
    /// Set right after "Set up" (the QR code and secret).
    enrolment: Option<EnrolmentView>,
    /// New recovery codes, shown this once.
    new_codes: Vec<String>,
    recovery: RecoveryView,
    /// The passkeys section (`passkeys_section.html`, pages/passkeys.rs).
    passkeys: super::passkeys::PasskeysView,
    /// Whether adding or removing a factor, or regenerating codes, asks for a code (a
    /// second factor, and no fresh login with it).
    needs_code: bool,
}

/// `?done=` after a change that redirects: which sentence to show (known values only).
#[derive(Debug, Default, Deserialize)]
pub struct SecurityQuery {
    #[serde(default)]
    done: Option<String>,
}

/// What the page shows besides its sections' state.
#[derive(Default)]
struct Extra<'a> {
    notice: Option<&'a str>,
    error: Option<&'a str>,
    enrolment: Option<EnrolmentView>,
    new_codes: Vec<String>,
}

/// The signed-in user of a page request, or the answer to send instead (303 to the
/// login page, or a store failure).
async fn signed_in_user(app: &App, principal: Option<&Principal>) -> Result<User, Response> {
    let Some(principal) = principal else {
        return Err(see_other("/login?rd=/account/security"));
    };
    match app.engine().user_by_name(&principal.username).await {
        Ok(Some(user)) if !user.disabled && principal.user_id.is_none_or(|id| id == user.id) => {
            Ok(user)
        }
        Ok(_) => Err(see_other("/login")),
        Err(e) => Err(store_failure(app, &e)),
    }
}

/// The page for `user` with `status` and `extra`.
async fn page(
    app: &App,
    principal: &Principal,
    user: &User,
    status: StatusCode,
    extra: Extra<'_>,
) -> Response {
    let engine = app.engine();
    let loaded = async {
        let methods = engine.mfa_methods(user.id).await?;
        let factors = engine.factors(user.id).await?;
        let codes = engine.recovery_code_status(user.id).await?;
        Ok::<_, countersign::store::StoreError>((methods, factors, codes))
    };
    let (methods, factors, codes) = match loaded.await {
        Ok(loaded) => loaded,
        Err(e) => return store_failure(app, &e),
    };
    let needs_code = methods.is_enrolled() && !is_fresh(app, principal);
    let passkeys =
        match super::passkeys::PasskeysView::load(app, principal, user.id, needs_code).await {
            Ok(view) => view,
            Err(e) => return store_failure(app, &e),
        };
    let totp = factors.iter().find(|f| f.kind == FactorKind::Totp);
    let mut used: Vec<_> = codes.iter().filter_map(|c| c.used_at).collect();
    used.sort();
    render(
        status,
        &SecurityPage {
            nav: Nav::new(app, Some(principal)),
            csrf_token: csrf_token_for(principal).unwrap_or_default(),
            notice: extra.notice,
            error: extra.error,
            methods,
            totp: TotpView {
                enrolled: methods.totp,
                pending: totp.is_some_and(|f| !f.confirmed),
                created: totp.map(|f| format_utc(f.created_at)).unwrap_or_default(),
                last_used: totp
                    .and_then(|f| f.last_used_at)
                    .map_or_else(|| "never".to_owned(), format_utc),
            },
            enrolment: extra.enrolment,
            new_codes: extra.new_codes,
            recovery: RecoveryView {
                left: methods.recovery_codes_left,
                total: codes.len(),
                created: codes
                    .first()
                    .map(|c| format_utc(c.created_at))
                    .unwrap_or_default(),
                used: used.into_iter().map(format_utc).collect(),
            },
            passkeys,
            needs_code,
        },
    )
}

/// The sentence for `?done=`.
fn done_notice(query: Result<Query<SecurityQuery>, QueryRejection>) -> Option<&'static str> {
    match query.ok()?.0.done.as_deref() {
        Some("totp-removed") => Some("The authenticator app was removed."),
        _ => None,
    }
}

/// `GET /account/security`: my second factors. Not logged in: 303 to `/login`.
pub async fn security(
    State(app): State<App>,
    MaybeAuthenticated(principal): MaybeAuthenticated,
    query: Result<Query<SecurityQuery>, QueryRejection>,
) -> Response {
    let user = match signed_in_user(&app, principal.as_ref()).await {
        Ok(user) => user,
        Err(answer) => return answer,
    };
    let Some(principal) = principal else {
        return see_other("/login");
    };
    let extra = Extra {
        notice: done_notice(query),
        ..Extra::default()
    };
    page(&app, &principal, &user, StatusCode::OK, extra).await
}

/// The forms' `code` field (absent from the "Set up" form).
#[derive(Debug, Default, Deserialize)]
pub struct SecurityForm {
    #[serde(default)]
    code: Code,
}

/// The 400 page for a form that cannot be read.
fn bad_form(app: &App) -> Response {
    error_page(
        app,
        StatusCode::BAD_REQUEST,
        "Bad request",
        "The form could not be read. Go back, reload the page and try again.",
    )
}

/// The page again, 422: a code longer than any.
async fn too_long(app: &App, principal: &Principal, user: &User) -> Response {
    let extra = Extra {
        error: Some(
            "That is longer than any code: enter the 6 digits the app shows, or a recovery code.",
        ),
        ..Extra::default()
    };
    page(
        app,
        principal,
        user,
        StatusCode::UNPROCESSABLE_ENTITY,
        extra,
    )
    .await
}

/// The page's view of a new enrolment: the SVG without its XML declaration (it goes
/// inside HTML), the secret in groups of four.
fn enrolment_view(e: &TotpEnrolment) -> EnrolmentView {
    let svg = e.qr_svg.as_str();
    let svg = svg.find("<svg").map_or(svg, |at| &svg[at..]);
    let secret: Vec<String> = e
        .secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    EnrolmentView {
        qr_svg: svg.to_owned(),
        secret: secret.join(" "),
        uri: e.otpauth_uri.to_string(),
    }
}

fn shown(codes: &RecoveryCodes) -> Vec<String> {
    codes.codes.iter().map(|c| c.to_string()).collect()
}

/// The page for an engine error every form words alike: throttled (429 with
/// `Retry-After`) and store failures; `None` for the others.
async fn common_failure(
    app: &App,
    principal: &Principal,
    user: &User,
    e: &MfaError,
) -> Option<Response> {
    match e {
        MfaError::Throttled { retry_after } => {
            let secs = retry_after.max(&1);
            let message = format!("Too many failed attempts. Try again in {secs} seconds.");
            let extra = Extra {
                error: Some(&message),
                ..Extra::default()
            };
            let response = page(app, principal, user, StatusCode::TOO_MANY_REQUESTS, extra).await;
            Some(with_header(
                response,
                header::RETRY_AFTER,
                HeaderValue::from(*secs),
            ))
        }
        MfaError::Store(e) => Some(store_failure(app, e)),
        _ => None,
    }
}

/// `POST /account/security/totp`: start an enrolment; the page with the QR code, the
/// secret and the form for the first code. With a second factor already (a passkey) it
/// asks for a current code ([`step_up`]): 403 with the reason when it is missing or
/// wrong. 409 when an app is enrolled already.
pub async fn totp_begin(
    State(app): State<App>,
    MaybeAuthenticated(principal): MaybeAuthenticated,
    ClientAddr(address): ClientAddr,
    form: Result<Form<SecurityForm>, FormRejection>,
) -> Response {
    let user = match signed_in_user(&app, principal.as_ref()).await {
        Ok(user) => user,
        Err(answer) => return answer,
    };
    let Some(principal) = principal else {
        return see_other("/login");
    };
    let Ok(Form(form)) = form else {
        return bad_form(&app);
    };
    if form.code.is_too_long() {
        return too_long(&app, &principal, &user).await;
    }
    let already = async || {
        let extra = Extra {
            error: Some("An authenticator app is enrolled already: remove it first."),
            ..Extra::default()
        };
        page(&app, &principal, &user, StatusCode::CONFLICT, extra).await
    };
    let methods = match app.engine().mfa_methods(user.id).await {
        Ok(m) if m.totp => return already().await,
        Ok(m) => m,
        Err(e) => return store_failure(&app, &e),
    };
    if let Err(refusal) =
        step_up(&app, &user, methods, &principal, Some(&form.code), &address).await
    {
        return refused(&app, &principal, &user, refusal).await;
    }
    match app.engine().begin_totp(&user, issuer(&app)).await {
        Ok(e) => {
            tracing::info!(user = %user.username, "authenticator app enrolment started");
            let extra = Extra {
                enrolment: Some(enrolment_view(&e)),
                ..Extra::default()
            };
            page(&app, &principal, &user, StatusCode::OK, extra).await
        }
        Err(MfaError::AlreadyEnrolled) => already().await,
        Err(e) => match common_failure(&app, &principal, &user, &e).await {
            Some(answer) => answer,
            None => unexpected(&app, &e),
        },
    }
}

fn unexpected(app: &App, e: &MfaError) -> Response {
    tracing::error!(error = %e, "unexpected second-factor error");
    error_page(
        app,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Something went wrong on our side. Please try again shortly.",
    )
}

/// `POST /account/security/totp/confirm`: the first code. The page with the ten recovery
/// codes, shown this once; the form again with 403 for a wrong code, 422 for none; 409
/// without an enrolment started.
pub async fn totp_confirm(
    State(app): State<App>,
    MaybeAuthenticated(principal): MaybeAuthenticated,
    ClientAddr(address): ClientAddr,
    form: Result<Form<SecurityForm>, FormRejection>,
) -> Response {
    let user = match signed_in_user(&app, principal.as_ref()).await {
        Ok(user) => user,
        Err(answer) => return answer,
    };
    let Some(principal) = principal else {
        return see_other("/login");
    };
    let Ok(Form(form)) = form else {
        return bad_form(&app);
    };
    let fail = async |status, error: &str| {
        let extra = Extra {
            error: Some(error),
            ..Extra::default()
        };
        page(&app, &principal, &user, status, extra).await
    };
    if form.code.is_empty() || form.code.is_too_long() {
        return fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter the 6-digit code the app shows.",
        )
        .await;
    }
    match app
        .engine()
        .confirm_totp(&user, form.code.as_str(), &address)
        .await
    {
        Ok(codes) => {
            tracing::info!(user = %user.username, "authenticator app enrolled");
            let extra = Extra {
                notice: Some(
                    "The authenticator app is set up: from now on, logging in asks for its \
                     code after the password.",
                ),
                new_codes: shown(&codes),
                ..Extra::default()
            };
            page(&app, &principal, &user, StatusCode::OK, extra).await
        }
        Err(MfaError::Invalid) => {
            fail(
                StatusCode::FORBIDDEN,
                "That code is not valid. Enter the current code the app shows (check the \
                 phone's clock if it keeps failing), or start again for a new QR code.",
            )
            .await
        }
        Err(MfaError::NotPending) => {
            fail(
                StatusCode::CONFLICT,
                "No enrolment is waiting for a code: set up the authenticator app again.",
            )
            .await
        }
        Err(e) => match common_failure(&app, &principal, &user, &e).await {
            Some(answer) => answer,
            None => unexpected(&app, &e),
        },
    }
}

/// The page for a step-up refusal: 403 saying what was wrong, 429, 503.
async fn refused(
    app: &App,
    principal: &Principal,
    user: &User,
    refusal: StepUpRefusal,
) -> Response {
    let error = match refusal {
        StepUpRefusal::NoCode(_) => {
            "Enter a current code from your authenticator app, or a recovery code, to do this."
        }
        StepUpRefusal::Invalid(_) => STEP_UP_INVALID,
        StepUpRefusal::Throttled(retry_after) => {
            let e = MfaError::Throttled { retry_after };
            return common_failure(app, principal, user, &e)
                .await
                .unwrap_or_else(|| unexpected(app, &e));
        }
        StepUpRefusal::Store(e) => return store_failure(app, &e),
    };
    let extra = Extra {
        error: Some(error),
        ..Extra::default()
    };
    page(app, principal, user, StatusCode::FORBIDDEN, extra).await
}

/// `POST /account/security/totp/remove`: remove the authenticator app, with a current
/// code ([`step_up`]); 303 back to the page. 403 with the reason when the code is
/// missing or wrong; 404 when there is no app.
pub async fn totp_remove(
    State(app): State<App>,
    MaybeAuthenticated(principal): MaybeAuthenticated,
    ClientAddr(address): ClientAddr,
    form: Result<Form<SecurityForm>, FormRejection>,
) -> Response {
    let user = match signed_in_user(&app, principal.as_ref()).await {
        Ok(user) => user,
        Err(answer) => return answer,
    };
    let Some(principal) = principal else {
        return see_other("/login");
    };
    let Ok(Form(form)) = form else {
        return bad_form(&app);
    };
    if form.code.is_too_long() {
        return too_long(&app, &principal, &user).await;
    }
    let has_totp = match app.engine().factors(user.id).await {
        Ok(factors) => factors.iter().any(|f| f.kind == FactorKind::Totp),
        Err(e) => return store_failure(&app, &e),
    };
    if !has_totp {
        let extra = Extra {
            error: Some("No authenticator app is enrolled."),
            ..Extra::default()
        };
        return page(&app, &principal, &user, StatusCode::NOT_FOUND, extra).await;
    }
    let methods = match app.engine().mfa_methods(user.id).await {
        Ok(m) => m,
        Err(e) => return store_failure(&app, &e),
    };
    if let Err(refusal) =
        step_up(&app, &user, methods, &principal, Some(&form.code), &address).await
    {
        return refused(&app, &principal, &user, refusal).await;
    }
    if let Err(e) = app.engine().remove_totp(user.id).await {
        return store_failure(&app, &e);
    }
    tracing::warn!(user = %user.username, "authenticator app removed");
    see_other("/account/security?done=totp-removed")
}

/// `POST /account/security/recovery-codes`: ten new recovery codes (the old ones stop
/// working), with a current code ([`step_up`]); the page showing them this once. 403 with
/// the reason when the code is missing or wrong; 409 without a second factor.
pub async fn regenerate_codes(
    State(app): State<App>,
    MaybeAuthenticated(principal): MaybeAuthenticated,
    ClientAddr(address): ClientAddr,
    form: Result<Form<SecurityForm>, FormRejection>,
) -> Response {
    let user = match signed_in_user(&app, principal.as_ref()).await {
        Ok(user) => user,
        Err(answer) => return answer,
    };
    let Some(principal) = principal else {
        return see_other("/login");
    };
    let Ok(Form(form)) = form else {
        return bad_form(&app);
    };
    if form.code.is_too_long() {
        return too_long(&app, &principal, &user).await;
    }
    let methods = match app.engine().mfa_methods(user.id).await {
        Ok(m) if m.is_enrolled() => m,
        Ok(_) => {
            let extra = Extra {
                error: Some(
                    "Recovery codes back up a second factor: set up an authenticator app first.",
                ),
                ..Extra::default()
            };
            return page(&app, &principal, &user, StatusCode::CONFLICT, extra).await;
        }
        Err(e) => return store_failure(&app, &e),
    };
    if let Err(refusal) =
        step_up(&app, &user, methods, &principal, Some(&form.code), &address).await
    {
        return refused(&app, &principal, &user, refusal).await;
    }
    match app.engine().regenerate_recovery_codes(user.id).await {
        Ok(codes) => {
            tracing::warn!(user = %user.username, "new recovery codes made; the old ones no longer work");
            let extra = Extra {
                notice: Some("New recovery codes: the old ones no longer work."),
                new_codes: shown(&codes),
                ..Extra::default()
            };
            page(&app, &principal, &user, StatusCode::OK, extra).await
        }
        Err(e) => store_failure(&app, &e),
    }
}
