//! Second factors over the JSON API (`docs/http.md`), and the step-up rule the security
//! page shares:
//!
//! - `POST /api/token/mfa`: the `mfa_token` of a 401 `mfa_required` and a code (TOTP or a
//!   recovery code) for the usual token pair, whose access tokens say `amr` and
//!   `auth_time`.
//! - `GET /api/account/mfa`: my second factors; `POST /api/account/mfa/totp` starts an
//!   authenticator-app enrolment, `POST /api/account/mfa/totp/confirm` finishes it with a
//!   first code (and answers the ten recovery codes, once); `DELETE /api/account/mfa/totp`
//!   and `POST /api/account/mfa/recovery-codes` need a fresh second factor ([`step_up`]),
//!   as does starting an enrolment once the account has a second factor (a passkey), and
//!   adding or removing a passkey (`server/passkeys.rs`).
//!
//! The account routes take a bearer token or a session cookie with its CSRF token, like
//! every `/api/` route; `POST /api/token/mfa`, like `POST /api/token`, takes its
//! credentials in the body and sits outside the CSRF guard.

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use countersign::auth::{MfaError, MfaMethods, Principal, TotpEnrolment};
use countersign::mfa::FactorKind;
use countersign::user::User;
use countersign_axum::Authenticated;
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroize;

use super::api::{JsonOrForm, token_pair};
use super::error::{ApiError, mfa_common, step_up_required};
use super::login::{self, Via};
use super::state::{App, ClientAddr};
use crate::display::rfc3339;

/// How recently a second factor must have been proved for a change that needs one
/// without asking for a code again: five minutes.
pub const FRESH_SECS: i64 = 300;

/// The longest code accepted (a recovery code with separators is 19 characters).
pub const MAX_CODE_LEN: usize = 64;

/// A code as typed: wiped when dropped, redacted in `Debug`.
#[derive(Default, Deserialize)]
#[serde(transparent)]
pub struct Code(String);

impl Drop for Code {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Code {
    /// The code without surrounding spaces.
    pub fn as_str(&self) -> &str {
        self.0.trim()
    }

    /// Whether nothing was sent (spaces alone are a code that does not match).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether it is longer than any code ([`MAX_CODE_LEN`] characters).
    pub fn is_too_long(&self) -> bool {
        self.0.chars().count() > MAX_CODE_LEN
    }
}

impl From<&str> for Code {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Code([redacted])")
    }
}

fn empty_code() -> ApiError {
    ApiError::invalid_request(
        "Send the code from your authenticator app, or a recovery code, as `code`.",
    )
}

fn long_code() -> ApiError {
    ApiError::invalid_request(format!(
        "`code` is longer than any code ({MAX_CODE_LEN} characters)."
    ))
}

/// The account a signed-in principal names (a token made elsewhere may name only a
/// username); 403 `insufficient_scope` when there is none here, or it is disabled.
pub async fn account(app: &App, principal: &Principal) -> Result<User, ApiError> {
    let user = app.engine().user_by_name(&principal.username).await?;
    match user {
        Some(user) if !user.disabled && principal.user_id.is_none_or(|id| id == user.id) => {
            Ok(user)
        }
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "This credential names no account here.",
        )),
    }
}

/// The name shown above the account in an authenticator app: the host of the first
/// `--public-url`, else `countersign`.
pub fn issuer(app: &App) -> &str {
    &app.site.totp_issuer
}

/// Whether `principal` proved a second factor within [`FRESH_SECS`].
pub fn is_fresh(app: &App, principal: &Principal) -> bool {
    principal.is_mfa() && principal.authenticated_within(FRESH_SECS, app.engine().now())
}

/// Why a change that needs a fresh second factor was refused.
#[derive(Debug)]
pub enum StepUpRefusal {
    /// No code, and the login is not a fresh second factor.
    NoCode(MfaMethods),
    /// The code is not valid (or was used already).
    Invalid(MfaMethods),
    /// Too many failed attempts (the login throttle): retry after this many seconds.
    Throttled(i64),
    /// A store failed.
    Store(countersign::store::StoreError),
}

/// The step-up rule of a sensitive change (adding or removing a second factor, new
/// recovery codes): nothing to prove while the user has no second factor; otherwise a login that
/// proved one within [`FRESH_SECS`], or a current code (TOTP or a recovery code, which it
/// then uses up), checked and throttled like a login. `methods` are the user's second
/// factors, as the caller read them to decide the change.
///
/// # Errors
/// [`StepUpRefusal`].
pub async fn step_up(
    app: &App,
    user: &User,
    methods: MfaMethods,
    principal: &Principal,
    code: Option<&Code>,
    address: &str,
) -> Result<(), StepUpRefusal> {
    if !methods.is_enrolled() || is_fresh(app, principal) {
        return Ok(());
    }
    let Some(code) = code.filter(|c| !c.is_empty() && !c.is_too_long()) else {
        return Err(StepUpRefusal::NoCode(methods));
    };
    match app.engine().verify_code(user, code.as_str(), address).await {
        Ok(_) => {
            tracing::info!(user = %user.username, "step-up: a second factor was proved again");
            Ok(())
        }
        Err(MfaError::Throttled { retry_after }) => Err(StepUpRefusal::Throttled(retry_after)),
        Err(MfaError::Store(e)) => Err(StepUpRefusal::Store(e)),
        Err(_) => Err(StepUpRefusal::Invalid(methods)),
    }
}

/// A message for a step-up without a code.
pub const STEP_UP_NO_CODE: &str = "This change needs a current code from your authenticator \
    app, or a recovery code, unless you logged in with a second factor (a code or a passkey) \
    in the last 5 minutes: send it as `code`, or log in again.";

/// A message for a step-up with a wrong code.
pub const STEP_UP_INVALID: &str = "That code is not valid, or was used already. Try the current \
    code from your authenticator app, or an unused recovery code.";

/// The API's answer to a step-up refusal: 403 `mfa_required` with the methods, 429, 503.
pub fn step_up_answer(refusal: StepUpRefusal) -> Response {
    match refusal {
        StepUpRefusal::NoCode(m) => step_up_required(STEP_UP_NO_CODE, &m),
        StepUpRefusal::Invalid(m) => step_up_required(STEP_UP_INVALID, &m),
        StepUpRefusal::Throttled(secs) => ApiError::throttled(secs).into_response(),
        StepUpRefusal::Store(e) => ApiError::store(&e).into_response(),
    }
}

/// `POST /api/token/mfa`'s body.
#[derive(Deserialize)]
pub struct TokenMfaRequest {
    mfa_token: String,
    code: Code,
}

impl Drop for TokenMfaRequest {
    fn drop(&mut self) {
        self.mfa_token.zeroize();
    }
}

impl std::fmt::Debug for TokenMfaRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenMfaRequest([redacted])")
    }
}

/// The answer for an `mfa_token` that cannot be used: 401 `expired` (start again from
/// the password).
pub fn expired_mfa_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "expired",
        "The mfa_token is not valid: it expired (after 5 minutes), was used already, or its \
         account can no longer log in. Log in again with the password.",
    )
}

/// `POST /api/token/mfa`: the `mfa_token` of a 401 `mfa_required` and a code for a token
/// pair. A wrong code may be retried with the same `mfa_token` (each try counts against
/// the login throttle); the first success uses it up.
///
/// # Errors
/// 401 `expired` for a bad, expired or used `mfa_token`, 401 `invalid_grant` for a
/// wrong code; 400, 413, 415, 422 for a malformed body; 429; 503.
pub async fn token(
    State(app): State<App>,
    ClientAddr(address): ClientAddr,
    body: Result<JsonOrForm<TokenMfaRequest>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let JsonOrForm(request) = body?;
    if request.mfa_token.is_empty() {
        return Err(ApiError::invalid_request(
            "Send the mfa_token from /api/token.",
        ));
    }
    if request.code.is_empty() {
        return Err(empty_code());
    }
    if request.code.is_too_long() {
        return Err(long_code());
    }
    let done = app
        .engine()
        .complete_mfa(&request.mfa_token, request.code.as_str(), &address)
        .await;
    let (user, authn) = match done {
        Ok(done) => done,
        Err(MfaError::Invalid) => {
            login::second_step(Via::Api, None, "invalid");
            return Err(ApiError::invalid_grant(
                "That code is not valid, or was used already.",
            ));
        }
        Err(e) => {
            let outcome = match &e {
                MfaError::Throttled { .. } => "throttled",
                MfaError::Store(_) => "error",
                _ => "expired",
            };
            login::second_step(Via::Api, None, outcome);
            return Err(mfa_common(&e).unwrap_or_else(expired_mfa_token));
        }
    };
    login::second_step(Via::Api, Some(user.username.as_str()), "success");
    let pair = app.engine().issue_tokens_with(&user, authn).await?;
    Ok(token_pair(&pair))
}

/// `GET /api/account/mfa`: my second factors.
///
/// # Errors
/// A store failure (503).
pub async fn status(
    State(app): State<App>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let user = account(&app, &principal).await?;
    let engine = app.engine();
    let methods = engine.mfa_methods(user.id).await?;
    let factors = engine.factors(user.id).await?;
    let totp = factors.iter().find(|f| f.kind == FactorKind::Totp);
    let codes = engine.recovery_code_status(user.id).await?;
    let used: Vec<Value> = codes
        .iter()
        .filter_map(|c| c.used_at)
        .map(|at| json!({ "used_at": rfc3339(at) }))
        .collect();
    Ok(Json(json!({
        "enrolled": methods.is_enrolled(),
        "methods": methods.names(),
        "totp": {
            "enrolled": methods.totp,
            "pending": totp.is_some_and(|f| !f.confirmed),
            "created_at": totp.filter(|f| f.confirmed).map(|f| rfc3339(f.created_at)),
            "last_used_at": totp.and_then(|f| f.last_used_at).map(rfc3339),
        },
        "passkeys": methods.passkeys,
        "recovery_codes": {
            "left": methods.recovery_codes_left,
            "total": codes.len(),
            "created_at": codes.first().map(|c| rfc3339(c.created_at)),
            "used": used,
        },
        "fresh": is_fresh(&app, &principal),
    })))
}

/// The enrolment's answer: the URI and the secret (for typing in), not the QR code.
fn enrolment(e: &TotpEnrolment) -> Json<Value> {
    Json(json!({
        "otpauth_uri": e.otpauth_uri.as_str(),
        "secret": e.secret.as_str(),
    }))
}

/// 409 for an authenticator app that is enrolled already.
pub fn already_enrolled() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "already_enrolled",
        "An authenticator app is enrolled already: remove it first.",
    )
}

/// `POST /api/account/mfa/totp`: start an authenticator-app enrolment (replacing one
/// that was started and not confirmed). It counts only once confirmed. Adding a factor to
/// an account that has one (a passkey) needs a fresh second factor ([`step_up`]): its
/// confirmation makes new recovery codes.
///
/// # Errors
/// 409 `already_enrolled`; 403 `mfa_required`; 429; a store failure (503).
pub async fn totp_begin(
    State(app): State<App>,
    Authenticated(principal): Authenticated,
    ClientAddr(address): ClientAddr,
    OptionalCode(code): OptionalCode,
) -> Result<Response, ApiError> {
    let user = account(&app, &principal).await?;
    let methods = app.engine().mfa_methods(user.id).await?;
    if methods.totp {
        return Err(already_enrolled());
    }
    if let Err(refusal) = step_up(&app, &user, methods, &principal, code.as_ref(), &address).await {
        return Ok(step_up_answer(refusal));
    }
    match app.engine().begin_totp(&user, issuer(&app)).await {
        Ok(e) => {
            tracing::info!(user = %user.username, "authenticator app enrolment started");
            Ok(enrolment(&e).into_response())
        }
        Err(MfaError::AlreadyEnrolled) => Err(already_enrolled()),
        Err(e) => Err(mfa_common(&e).unwrap_or_else(|| unexpected(&e))),
    }
}

/// An engine error a route does not expect: logged, 500.
pub fn unexpected(e: &MfaError) -> ApiError {
    tracing::error!(error = %e, "unexpected second-factor error");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "Something went wrong on our side.",
    )
}

/// A body with a `code`.
#[derive(Debug, Default, Deserialize)]
pub struct CodeRequest {
    #[serde(default)]
    code: Code,
}

/// `POST /api/account/mfa/totp/confirm`: the first code from the app. The enrolment then
/// counts, and ten new recovery codes (replacing any old ones) are answered, once.
///
/// # Errors
/// 403 `invalid_code` for a wrong code; 409 `not_pending` without an enrolment started;
/// 429; 400, 413, 415, 422 for a malformed body; 503.
pub async fn totp_confirm(
    State(app): State<App>,
    Authenticated(principal): Authenticated,
    ClientAddr(address): ClientAddr,
    body: Result<JsonOrForm<CodeRequest>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let user = account(&app, &principal).await?;
    let JsonOrForm(request) = body?;
    if request.code.is_empty() {
        return Err(empty_code());
    }
    if request.code.is_too_long() {
        return Err(long_code());
    }
    match app
        .engine()
        .confirm_totp(&user, request.code.as_str(), &address)
        .await
    {
        Ok(codes) => {
            tracing::info!(user = %user.username, "authenticator app enrolled");
            let codes: Vec<&str> = codes.codes.iter().map(|c| c.as_str()).collect();
            Ok(Json(json!({ "recovery_codes": codes })))
        }
        Err(MfaError::Invalid) => Err(invalid_code()),
        Err(MfaError::NotPending) => Err(not_pending()),
        Err(e) => Err(mfa_common(&e).unwrap_or_else(|| unexpected(&e))),
    }
}

/// 403 for a code that does not confirm an enrolment (the request is understood and the
/// credential good: the code is what is refused).
pub fn invalid_code() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "invalid_code",
        "That code is not valid. Enter the current code the app shows (check the phone's \
         clock if it keeps failing).",
    )
}

/// 409 for a confirmation without an enrolment started.
pub fn not_pending() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "not_pending",
        "No authenticator app enrolment is waiting for a code: start one first.",
    )
}

/// A `code` sent in the query (`?code=`) or in a JSON or form body; none when neither
/// has one. A body is read only when it says its type.
#[derive(Debug)]
pub struct OptionalCode(pub Option<Code>);

impl<S> FromRequest<S> for OptionalCode
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let from_query = request.uri().query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "code")
                .map(|(_, v)| Code::from(v.as_ref()))
        });
        let from_body = if request.headers().contains_key(header::CONTENT_TYPE) {
            let JsonOrForm(body) = JsonOrForm::<CodeRequest>::from_request(request, state).await?;
            Some(body.code).filter(|c| !c.is_empty())
        } else {
            None
        };
        let code = from_body.or(from_query).filter(|c| !c.is_empty());
        if code.as_ref().is_some_and(Code::is_too_long) {
            return Err(long_code());
        }
        Ok(Self(code))
    }
}

/// `DELETE /api/account/mfa/totp`: remove my authenticator app (or the enrolment
/// started). With a confirmed second factor it needs a fresh one ([`step_up`]): a `code`
/// (query or body), or a login that proved one in the last 5 minutes. When it was the
/// last second factor, the recovery codes go too.
///
/// # Errors
/// 403 `mfa_required`; 404 `not_found` without an authenticator app; 429; 503.
pub async fn totp_remove(
    State(app): State<App>,
    Authenticated(principal): Authenticated,
    ClientAddr(address): ClientAddr,
    OptionalCode(code): OptionalCode,
) -> Result<Response, ApiError> {
    let user = account(&app, &principal).await?;
    let has_totp = app
        .engine()
        .factors(user.id)
        .await?
        .iter()
        .any(|f| f.kind == FactorKind::Totp);
    if !has_totp {
        return Err(ApiError::not_found("No authenticator app is enrolled."));
    }
    let methods = app.engine().mfa_methods(user.id).await?;
    if let Err(refusal) = step_up(&app, &user, methods, &principal, code.as_ref(), &address).await {
        return Ok(step_up_answer(refusal));
    }
    app.engine().remove_totp(user.id).await?;
    tracing::warn!(user = %user.username, "authenticator app removed");
    let methods = app.engine().mfa_methods(user.id).await?;
    Ok(Json(json!({ "removed": true, "methods": methods.names() })).into_response())
}

/// `POST /api/account/mfa/recovery-codes`: ten new recovery codes, replacing the old
/// ones (used or not), answered once. Needs a fresh second factor ([`step_up`]).
///
/// # Errors
/// 403 `mfa_required`; 409 `not_enrolled` without a second factor; 429; 503.
pub async fn regenerate_codes(
    State(app): State<App>,
    Authenticated(principal): Authenticated,
    ClientAddr(address): ClientAddr,
    OptionalCode(code): OptionalCode,
) -> Result<Response, ApiError> {
    let user = account(&app, &principal).await?;
    let methods = app.engine().mfa_methods(user.id).await?;
    if !methods.is_enrolled() {
        return Err(not_enrolled());
    }
    if let Err(refusal) = step_up(&app, &user, methods, &principal, code.as_ref(), &address).await {
        return Ok(step_up_answer(refusal));
    }
    let codes = app.engine().regenerate_recovery_codes(user.id).await?;
    tracing::warn!(user = %user.username, "new recovery codes made; the old ones no longer work");
    let codes: Vec<&str> = codes.codes.iter().map(|c| c.as_str()).collect();
    Ok(Json(json!({ "recovery_codes": codes })).into_response())
}

/// 409 for recovery codes without a second factor to back up.
pub fn not_enrolled() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "not_enrolled",
        "Recovery codes back up a second factor: enrol an authenticator app or a passkey first.",
    )
}
