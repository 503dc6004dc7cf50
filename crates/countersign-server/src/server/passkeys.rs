//! Passkeys over HTTP (`docs/mfa.md`): the JSON routes the pages' script
//! (`/passkeys.js`) and API clients use, and the script itself.
//!
//! - `GET /api/account/passkeys`, `POST /api/account/passkeys/register/begin` and
//!   `…/register/finish`, `PATCH` and `DELETE /api/account/passkeys/{id}`: a signed-in
//!   user's passkeys (session with `X-CSRF-Token`, or a bearer token).
//! - `POST /api/passkey/login/begin` and `…/finish`: a passwordless login in the browser
//!   (the login page's CSRF token; a session cookie on success).
//! - `POST /login/mfa/passkey/begin` and `POST /login/mfa/passkey`: the second step of a
//!   browser login (`/login/mfa`), with the challenge cookie the password step set.
//! - `POST /api/token/passkey/begin` and `POST /api/token/passkey`: the same for API
//!   clients, answered with a token pair.
//! - `POST /api/token/mfa/passkey/begin` and `POST /api/token/mfa/passkey`: a passkey as
//!   the second step after `POST /api/token` answered `mfa_required`.
//!
//! Each ceremony is two calls: `begin` answers `{"options", "state", "expires_in"}`; the
//! page hands `options` to `navigator.credentials.create()` or `.get()` (binary fields
//! are base64url strings) and posts the credential back as JSON with the `state`.
//! Without a public URL on a domain (`https://`, or `http://localhost`), passkeys are
//! off and these routes answer 404 `passkeys_disabled`.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use countersign::auth::{Authentication, Method, Principal};
use countersign::mfa::FactorId;
use countersign::mfa::passkey::{PasskeyCeremony, PasskeyError, PasskeySummary};
use countersign::user::User;
use countersign_axum::{Authenticated, MaybeAuthenticated, read_cookie};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::api::JsonOrForm;
use super::error::ApiError;
use super::mfa::{OptionalCode, step_up, step_up_answer};
use super::state::{App, ClientAddr, UserAgent};
use crate::display::rfc3339;

/// The pages' passkey script: base64url conversions around `navigator.credentials`.
pub const SCRIPT: &str = include_str!("../../templates/passkeys.js");

/// `GET /passkeys.js`.
pub async fn script() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        SCRIPT,
    )
        .into_response()
}

/// Where a passkey call is: what an [`PasskeyError::Invalid`] means there.
#[derive(Clone, Copy)]
enum Step {
    /// Registering: the credential was refused.
    Register,
    /// Signing in or the second step: the assertion was refused.
    SignIn,
}

fn passkey_error(e: PasskeyError, step: Step) -> ApiError {
    match e {
        PasskeyError::Disabled => ApiError::new(
            StatusCode::NOT_FOUND,
            "passkeys_disabled",
            "Passkeys are not enabled on this server (it needs a --public-url with https://, \
             or http://localhost).",
        ),
        PasskeyError::Expired => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "expired",
            "This passkey request has expired or was already used; start again.",
        ),
        PasskeyError::Malformed(why) => ApiError::invalid_request(format!(
            "The credential is not a WebAuthn credential: {why}"
        )),
        PasskeyError::Invalid => match step {
            Step::Register => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_credential",
                "The passkey could not be registered: it was made for another site, without \
                 user verification, or does not verify.",
            ),
            Step::SignIn => ApiError::invalid_grant("The passkey could not be verified."),
        },
        PasskeyError::AlreadyRegistered => ApiError::new(
            StatusCode::CONFLICT,
            "already_registered",
            "This passkey is registered already.",
        ),
        PasskeyError::TooMany => ApiError::new(
            StatusCode::CONFLICT,
            "too_many_passkeys",
            e.to_string() + ".",
        ),
        PasskeyError::BadName => ApiError::invalid_request(e.to_string() + "."),
        PasskeyError::Throttled { retry_after } => ApiError::throttled(retry_after),
        PasskeyError::Store(e) => ApiError::store(&e),
        // A kind added to the engine later: refuse, as for a credential that failed.
        _ => ApiError::invalid_grant("The passkey could not be verified."),
    }
}

fn summary(p: &PasskeySummary) -> Value {
    json!({
        "id": p.id.as_str(),
        "name": p.name,
        "created_at": rfc3339(p.created_at),
        "last_used_at": p.last_used_at.map(rfc3339),
        "synced": p.synced,
        "counter_regressed_at": p.counter_regressed_at.map(rfc3339),
    })
}

fn ceremony(c: &PasskeyCeremony) -> Json<Value> {
    Json(json!({
        "options": c.options,
        "state": c.state,
        "expires_in": c.expires_in,
    }))
}

/// The account of a signed-in principal.
async fn account(app: &App, principal: &Principal) -> Result<User, ApiError> {
    let user = app.engine().user_by_name(&principal.username).await?;
    match user {
        Some(user) if principal.user_id.is_none_or(|id| id == user.id) => Ok(user),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "This credential names no account here.",
        )),
    }
}

/// `GET /api/account/passkeys`: my passkeys, and whether passkeys are on.
///
/// # Errors
/// A store failure (503).
pub async fn list(
    State(app): State<App>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let user = account(&app, &principal).await?;
    let passkeys: Vec<Value> = app
        .engine()
        .passkeys(user.id)
        .await?
        .iter()
        .map(summary)
        .collect();
    let rp = app.engine().passkey_config();
    Ok(Json(json!({
        "enabled": rp.is_some(),
        "rp_id": rp.map(|rp| rp.rp_id()),
        "passkeys": passkeys,
    })))
}

/// `POST /api/account/passkeys/register/begin`: options for
/// `navigator.credentials.create()`. Adding a passkey to an account that has a second
/// factor needs a fresh one ([`step_up`]): a `code`, or a login with one in the last 5
/// minutes.
///
/// # Errors
/// 404 when passkeys are off, 403 `mfa_required`, 409 at the most passkeys, 429, 503.
pub async fn register_begin(
    State(app): State<App>,
    Authenticated(principal): Authenticated,
    ClientAddr(address): ClientAddr,
    OptionalCode(code): OptionalCode,
) -> Result<Response, ApiError> {
    let user = account(&app, &principal).await?;
    if app.engine().passkey_config().is_none() {
        return Err(passkey_error(PasskeyError::Disabled, Step::Register));
    }
    let methods = app.engine().mfa_methods(user.id).await?;
    if let Err(refusal) = step_up(&app, &user, methods, &principal, code.as_ref(), &address).await {
        return Ok(step_up_answer(refusal));
    }
    let c = app
        .engine()
        .begin_passkey_registration(&user)
        .await
        .map_err(|e| passkey_error(e, Step::Register))?;
    Ok(ceremony(&c).into_response())
}

/// `POST /api/account/passkeys/register/finish`'s body.
#[derive(Debug, Deserialize)]
pub struct FinishRegistration {
    state: String,
    credential: Box<RawValue>,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/account/passkeys/register/finish`: the browser's new credential, with a
/// name (default "Passkey"). 201 with the passkey, and `recovery_codes` (shown once) when
/// it is the account's first second factor.
///
/// # Errors
/// 400 for a refused, expired or malformed credential or a bad name, 409 when it is
/// registered already, 503.
pub async fn register_finish(
    State(app): State<App>,
    Authenticated(principal): Authenticated,
    body: Result<JsonOrForm<FinishRegistration>, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let JsonOrForm(body) = body?;
    let user = account(&app, &principal).await?;
    let name = body.name.as_deref().unwrap_or("Passkey");
    let done = app
        .engine()
        .finish_passkey_registration(&user, &body.state, body.credential.get(), name)
        .await
        .map_err(|e| passkey_error(e, Step::Register))?;
    let mut answer = json!({ "passkey": summary(&done.passkey) });
    if let Some(codes) = &done.recovery_codes {
        answer["recovery_codes"] =
            json!(codes.codes.iter().map(|c| c.as_str()).collect::<Vec<_>>());
    }
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `PATCH /api/account/passkeys/{id}`'s body.
#[derive(Debug, Deserialize)]
pub struct Rename {
    name: String,
}

fn no_such_passkey() -> ApiError {
    ApiError::not_found("You have no passkey with that id.")
}

/// `PATCH /api/account/passkeys/{id}`: rename one of my passkeys.
///
/// # Errors
/// 404 when I have no such passkey, 400 for a bad name, 503.
pub async fn rename(
    State(app): State<App>,
    Authenticated(principal): Authenticated,
    id: Result<Path<String>, PathRejection>,
    body: Result<JsonOrForm<Rename>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id.map_err(|_| no_such_passkey())?;
    let JsonOrForm(body) = body?;
    let user = account(&app, &principal).await?;
    let id = FactorId(id);
    if !app
        .engine()
        .rename_passkey(user.id, &id, &body.name)
        .await
        .map_err(|e| passkey_error(e, Step::Register))?
    {
        return Err(no_such_passkey());
    }
    let passkeys = app.engine().passkeys(user.id).await?;
    let renamed = passkeys
        .iter()
        .find(|p| p.id == id)
        .ok_or_else(no_such_passkey)?;
    Ok(Json(json!({ "passkey": summary(renamed) })))
}

/// `DELETE /api/account/passkeys/{id}`: remove one of my passkeys. 204. Needs a fresh
/// second factor ([`step_up`]): a `code` (query or body), or a login with one in the
/// last 5 minutes.
///
/// # Errors
/// 404 when I have no such passkey, 403 `mfa_required`, 429, 503.
pub async fn remove(
    State(app): State<App>,
    Authenticated(principal): Authenticated,
    ClientAddr(address): ClientAddr,
    id: Result<Path<String>, PathRejection>,
    OptionalCode(code): OptionalCode,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|_| no_such_passkey())?;
    let user = account(&app, &principal).await?;
    let id = FactorId(id);
    if !app
        .engine()
        .passkeys(user.id)
        .await?
        .iter()
        .any(|p| p.id == id)
    {
        return Err(no_such_passkey());
    }
    let methods = app.engine().mfa_methods(user.id).await?;
    if let Err(refusal) = step_up(&app, &user, methods, &principal, code.as_ref(), &address).await {
        return Ok(step_up_answer(refusal));
    }
    if !app.engine().remove_passkey(user.id, &id).await? {
        return Err(no_such_passkey());
    }
    tracing::warn!(user = %user.username, "passkey removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/passkey/login/begin` and `POST /api/token/passkey/begin`: options for
/// `navigator.credentials.get()` naming no credential (the authenticator offers its
/// passkeys for this site).
///
/// # Errors
/// 404 when passkeys are off.
pub async fn login_begin(State(app): State<App>) -> Result<Json<Value>, ApiError> {
    let c = app
        .engine()
        .begin_passkey_login()
        .map_err(|e| passkey_error(e, Step::SignIn))?;
    Ok(ceremony(&c))
}

/// The body that finishes an assertion ceremony.
#[derive(Debug, Deserialize)]
pub struct FinishAssertion {
    state: String,
    credential: Box<RawValue>,
}

/// A passwordless login's outcome, logged and counted as logins are.
fn logged(
    result: Result<(User, Authentication), PasskeyError>,
    via: &'static str,
) -> Result<(User, Authentication), ApiError> {
    let label = match &result {
        Ok((user, authn)) => {
            tracing::info!(user = %user.username, via, amr = %authn.amr.to_text(), "passkey login succeeded");
            "success"
        }
        Err(PasskeyError::Throttled { retry_after }) => {
            tracing::warn!(via, retry_after, "passkey login throttled");
            "throttled"
        }
        Err(PasskeyError::Store(e)) => {
            tracing::error!(via, error = %e, "passkey login failed: store error");
            "error"
        }
        Err(e) => {
            tracing::info!(via, error = %e, "passkey login failed");
            "invalid"
        }
    };
    metrics::counter!("countersign_passkey_logins_total", "outcome" => label, "via" => via)
        .increment(1);
    result.map_err(|e| passkey_error(e, Step::SignIn))
}

/// A new session for `user` (the request's old one ends), as the answer's cookies, and
/// where to go.
async fn session_answer(
    app: &App,
    current: Option<&Principal>,
    user: &User,
    authn: Authentication,
    user_agent: &str,
    address: &str,
) -> Result<Response, ApiError> {
    if let Some(Principal {
        method: Method::Session { key, .. },
        ..
    }) = current
    {
        app.engine().end_session(key).await?;
    }
    let (cookie, _) = app
        .engine()
        .start_session_with(user, authn, user_agent, address)
        .await?;
    let max_age = app.engine().config().sessions.absolute_secs;
    let mut response = Json(json!({
        "username": user.username.as_str(),
        "amr": authn.amr.names().collect::<Vec<_>>(),
        "redirect": "/",
    }))
    .into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        app.auth.cookies.session_cookie(&cookie, max_age),
    );
    headers.append(header::SET_COOKIE, app.auth.cookies.clear_csrf_cookie());
    crate::server::flask::write_back(app, user, &mut response);
    Ok(response)
}

/// `POST /api/passkey/login/finish`: the browser's assertion for a session (the cookie is
/// set; the answer names the user and `redirect`).
///
/// # Errors
/// 401 `invalid_grant` for an unknown credential, a disabled account or an assertion that
/// does not verify; 400 for an expired state or a malformed credential; 429; 503.
pub async fn login_finish(
    State(app): State<App>,
    MaybeAuthenticated(current): MaybeAuthenticated,
    ClientAddr(address): ClientAddr,
    UserAgent(user_agent): UserAgent,
    body: Result<JsonOrForm<FinishAssertion>, ApiError>,
) -> Result<Response, ApiError> {
    let JsonOrForm(body) = body?;
    let result = app
        .engine()
        .finish_passkey_login(&body.state, body.credential.get(), &address)
        .await;
    let (user, authn) = logged(result, "form")?;
    session_answer(&app, current.as_ref(), &user, authn, &user_agent, &address).await
}

fn token_pair(pair: &countersign::auth::TokenPair) -> Json<Value> {
    Json(json!({
        "access_token": pair.access_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
        "refresh_token": pair.refresh_token.as_str(),
    }))
}

/// `POST /api/token/passkey`: the assertion for an access token and a refresh token.
///
/// # Errors
/// As `POST /api/passkey/login/finish`.
pub async fn token_finish(
    State(app): State<App>,
    ClientAddr(address): ClientAddr,
    body: Result<JsonOrForm<FinishAssertion>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let JsonOrForm(body) = body?;
    let result = app
        .engine()
        .finish_passkey_login(&body.state, body.credential.get(), &address)
        .await;
    let (user, authn) = logged(result, "api")?;
    let pair = app.engine().issue_tokens_with(&user, authn).await?;
    Ok(token_pair(&pair))
}

/// `POST /api/token/mfa/passkey/begin`'s body.
#[derive(Deserialize)]
pub struct MfaBegin {
    mfa_token: String,
}

impl std::fmt::Debug for MfaBegin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaBegin([redacted])")
    }
}

/// `POST /api/token/mfa/passkey/begin`: options asking for one of the passkeys of the
/// user an `mfa_token` names.
///
/// # Errors
/// 400 `expired` for a bad, expired or used `mfa_token`, 401 when the user has no
/// passkey, 404 when passkeys are off.
pub async fn mfa_token_begin(
    State(app): State<App>,
    body: Result<JsonOrForm<MfaBegin>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let JsonOrForm(body) = body?;
    let c = app
        .engine()
        .begin_passkey_mfa(&body.mfa_token)
        .await
        .map_err(|e| passkey_error(e, Step::SignIn))?;
    Ok(ceremony(&c))
}

/// `POST /api/token/mfa/passkey`'s body.
#[derive(Deserialize)]
pub struct MfaFinish {
    mfa_token: String,
    state: String,
    credential: Box<RawValue>,
}

impl std::fmt::Debug for MfaFinish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaFinish([redacted])")
    }
}

/// `POST /api/token/mfa/passkey`: the `mfa_token` and an assertion for the token pair
/// (`amr`: `pwd` with `hwk` or `swk`, and `mfa`).
///
/// # Errors
/// As `POST /api/token/mfa/passkey/begin`, and 401 for an assertion that does not
/// verify, 429.
pub async fn mfa_token_finish(
    State(app): State<App>,
    ClientAddr(address): ClientAddr,
    body: Result<JsonOrForm<MfaFinish>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let JsonOrForm(body) = body?;
    let result = app
        .engine()
        .complete_mfa_passkey(
            &body.mfa_token,
            &body.state,
            body.credential.get(),
            &address,
        )
        .await;
    let (user, authn) = logged(result, "api-mfa")?;
    let pair = app.engine().issue_tokens_with(&user, authn).await?;
    Ok(token_pair(&pair))
}

/// The challenge cookie of the second step, or 400 `expired`.
fn challenge_cookie<'h>(app: &App, headers: &'h HeaderMap) -> Result<&'h str, ApiError> {
    read_cookie(headers, app.auth.cookies.challenge_name())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| passkey_error(PasskeyError::Expired, Step::SignIn))
}

/// `POST /login/mfa/passkey/begin`: options asking for one of the passkeys of the user
/// whose password the browser's challenge cookie vouches for.
///
/// # Errors
/// 400 `expired` without a good challenge, 401 when the user has no passkey, 404 when
/// passkeys are off.
pub async fn mfa_begin(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let challenge = challenge_cookie(&app, &headers)?;
    let c = app
        .engine()
        .begin_passkey_mfa(challenge)
        .await
        .map_err(|e| passkey_error(e, Step::SignIn))?;
    Ok(ceremony(&c))
}

/// `POST /login/mfa/passkey`: the assertion against the browser's challenge. A new
/// session (cookie set, challenge cookie deleted; `amr` `pwd` with `hwk` or `swk`, and
/// `mfa`) and `redirect`.
///
/// # Errors
/// As `POST /login/mfa/passkey/begin`, and 401 for an assertion that does not verify,
/// 429.
pub async fn mfa_finish(
    State(app): State<App>,
    MaybeAuthenticated(current): MaybeAuthenticated,
    ClientAddr(address): ClientAddr,
    UserAgent(user_agent): UserAgent,
    headers: HeaderMap,
    body: Result<JsonOrForm<FinishAssertion>, ApiError>,
) -> Result<Response, ApiError> {
    let JsonOrForm(body) = body?;
    let challenge = challenge_cookie(&app, &headers)?;
    let result = app
        .engine()
        .complete_mfa_passkey(challenge, &body.state, body.credential.get(), &address)
        .await;
    let (user, authn) = logged(result, "form-mfa")?;
    let mut response =
        session_answer(&app, current.as_ref(), &user, authn, &user_agent, &address).await?;
    response.headers_mut().append(
        header::SET_COOKIE,
        app.auth.cookies.clear_challenge_cookie(),
    );
    Ok(response)
}
