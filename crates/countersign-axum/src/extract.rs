//! The authenticated user of a request: by bearer token or session cookie.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::{FromRef, FromRequestParts};
use countersign::auth::{Auth, BearerError, Method, Principal, SessionError};
use http::request::Parts;
use http::{HeaderMap, header};

use crate::cookie::{CookieConfig, read_cookie};
use crate::proxies::TrustedProxies;
use crate::rejection::AuthRejection;

/// What the extractors and the CSRF guard need: the engine, cookie settings and the
/// origins allowed to make state-changing requests.
///
/// Put it in the router state as `Arc<AuthState>`, directly or as a field of your own
/// state with a [`FromRef`] impl.
#[derive(Debug)]
pub struct AuthState {
    /// The authentication service.
    pub auth: Arc<Auth>,
    /// Cookie names and flags.
    pub cookies: CookieConfig,
    /// Origins (`https://app.example.com`) besides the request's own that may send
    /// state-changing requests; compared case-insensitively, without a trailing `/`. A
    /// request a browser marks `Sec-Fetch-Site: same-site` passes the origin check only
    /// when its `Origin` is one of these (see [`CsrfLayer`](crate::CsrfLayer)).
    pub allowed_origins: Vec<String>,
    /// The peers whose `Forwarded` / `X-Forwarded-*` headers are believed (none by
    /// default): see [`Origin`](crate::Origin).
    pub trusted_proxies: TrustedProxies,
}

impl AuthState {
    /// State with no extra allowed origins and no trusted proxies.
    pub fn new(auth: Arc<Auth>, cookies: CookieConfig) -> Self {
        Self {
            auth,
            cookies,
            allowed_origins: Vec::new(),
            trusted_proxies: TrustedProxies::none(),
        }
    }

    /// The same state, also allowing state changes from these origins.
    #[must_use]
    pub fn with_allowed_origins<I, O>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = O>,
        O: Into<String>,
    {
        self.allowed_origins
            .extend(origins.into_iter().map(Into::into));
        self
    }

    /// The same state, believing forwarding headers from these peers.
    #[must_use]
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }
}

/// The user of a request, by bearer token or session cookie; rejects otherwise.
///
/// An `Authorization` header wins over a cookie: a request with both is judged by its
/// token alone. The bearer scheme is case-insensitive and takes exactly one token; any
/// other `Authorization` value (`Basic …`, `Bearer` alone, non-UTF-8) is an invalid token.
/// Rejections are [`AuthRejection`]s: `MissingToken`, `ExpiredToken`, `InvalidToken`,
/// `InvalidSession` or `Unavailable`.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use axum::{Json, Router, routing::get};
/// use countersign_axum::{AuthState, Authenticated};
/// use serde_json::{Value, json};
///
/// async fn protected(Authenticated(user): Authenticated) -> Json<Value> {
///     Json(json!({
///         "message": format!("Hello {}, you have access to this protected route.", user.username)
///     }))
/// }
///
/// fn router(state: Arc<AuthState>) -> Router {
///     Router::new().route("/protected", get(protected)).with_state(state)
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated(pub Principal);

/// The user of a request if there is one: for pages that show something to everyone.
///
/// A missing, bad or expired credential gives `None`, never a rejection; only an
/// unavailable store is one (503), since "not logged in" would then be a lie. When the
/// [`CsrfLayer`](crate::CsrfLayer) is installed, a bad session cookie seen here is
/// also cleared on the response (unless the handler sets a new one).
///
/// # Examples
/// ```
/// use axum::response::Html;
/// use countersign_axum::MaybeAuthenticated;
///
/// async fn home(MaybeAuthenticated(user): MaybeAuthenticated) -> Html<String> {
///     Html(match user {
///         Some(p) => format!("Logged in as {}", p.username), // escape in real pages
///         None => "You are not logged in".to_owned(),
///     })
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaybeAuthenticated(pub Option<Principal>);

/// A role a route can require with [`RequireRole`].
///
/// # Examples
/// ```
/// use countersign_axum::RoleName;
///
/// struct Editor;
/// impl RoleName for Editor {
///     const NAME: &'static str = "editor";
/// }
/// ```
pub trait RoleName {
    /// The role, as in the token's `role` claim.
    const NAME: &'static str;
}

/// The `admin` role.
#[derive(Clone, Copy, Debug)]
pub struct Admin;

impl RoleName for Admin {
    const NAME: &'static str = "admin";
}

/// What [`RequireRole`] holds for any role: a [`Principal`]. (A helper so that
/// `RequireRole<R>` can be a one-field tuple struct; you never name it.)
#[doc(hidden)]
pub trait RoleHolder {
    /// Always [`Principal`].
    type Principal;
}

impl<R: RoleName> RoleHolder for R {
    type Principal = Principal;
}

/// The user of a request, who must have role `R`: as [`Authenticated`], and then
/// [`AuthRejection::InsufficientScope`] (403) for any other role. The field is the
/// [`Principal`].
///
/// # Examples
/// ```
/// use countersign_axum::{Admin, RequireRole};
///
/// async fn admin_page(RequireRole(admin): RequireRole<Admin>) -> String {
///     format!("Hello {}, you see every buggy.", admin.username)
/// }
/// ```
pub struct RequireRole<R: RoleName>(pub <R as RoleHolder>::Principal);

impl<R: RoleName> RequireRole<R> {
    /// The principal.
    pub fn into_inner(self) -> Principal {
        self.0
    }
}

impl<R: RoleName> Clone for RequireRole<R> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<R: RoleName> std::fmt::Debug for RequireRole<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequireRole")
            .field(&R::NAME)
            .field(&self.0)
            .finish()
    }
}

/// The session's CSRF token, for the hidden `csrf_token` field of a form (or the
/// `X-CSRF-Token` header), when the principal came by session cookie; `None` for a bearer
/// token, whose requests need none.
pub fn csrf_token_for(principal: &Principal) -> Option<&str> {
    match &principal.method {
        Method::Session { csrf_token, .. } => Some(csrf_token),
        Method::Bearer { .. } => None,
    }
}

/// The outcome of authenticating a request, kept in its extensions so that the CSRF guard
/// and several extractors on one request look up (and count) the credential once.
#[derive(Clone)]
struct Resolved(Result<Option<Principal>, AuthRejection>);

/// Set when a bad session cookie was seen and swallowed: the CSRF guard then clears it.
#[derive(Clone, Default)]
pub(crate) struct StaleSession(pub(crate) Arc<AtomicBool>);

impl StaleSession {
    pub(crate) fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_marked(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The `Authorization` header, parsed.
pub(crate) enum BearerHeader<'a> {
    /// No header, or an empty one (the seeds' "Token is missing!").
    Absent,
    /// `Bearer <token>`.
    Token(&'a str),
    /// Anything else: another scheme, no token, several tokens or headers, not UTF-8.
    Malformed,
}

pub(crate) fn bearer_header(headers: &HeaderMap) -> BearerHeader<'_> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return BearerHeader::Absent;
    };
    if values.next().is_some() {
        return BearerHeader::Malformed;
    }
    let value = trim_spaces(value.as_bytes());
    if value.is_empty() {
        return BearerHeader::Absent;
    }
    let Some(space) = value.iter().position(|&b| b == b' ') else {
        return BearerHeader::Malformed;
    };
    let (scheme, token) = (&value[..space], trim_spaces(&value[space..]));
    if !scheme.eq_ignore_ascii_case(b"bearer") || token.is_empty() || !is_visible_ascii(token) {
        return BearerHeader::Malformed;
    }
    // Invariant: visible ASCII is UTF-8.
    match std::str::from_utf8(token) {
        Ok(token) => BearerHeader::Token(token),
        Err(_) => BearerHeader::Malformed,
    }
}

fn trim_spaces(mut bytes: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' '] = bytes {
        bytes = rest;
    }
    bytes
}

/// Every byte is printable ASCII other than space (`!`..=`~`). Written as a fold over
/// the whole slice, without an early exit, so that it compiles to vector compares: a
/// token is a few hundred bytes and this runs on every bearer request.
fn is_visible_ascii(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(true, |ok, &b| ok & (b > b' ') & (b < 0x7f))
}

/// Authenticate a request (once: the answer is kept in the extensions). `Ok(None)` when
/// it carries no credential.
pub(crate) async fn resolve(
    state: &AuthState,
    parts: &mut Parts,
) -> Result<Option<Principal>, AuthRejection> {
    if let Some(Resolved(done)) = parts.extensions.get::<Resolved>() {
        return done.clone();
    }
    let outcome = resolve_headers(state, &parts.headers).await;
    parts.extensions.insert(Resolved(outcome.clone()));
    outcome
}

async fn resolve_headers(
    state: &AuthState,
    headers: &HeaderMap,
) -> Result<Option<Principal>, AuthRejection> {
    let outcome = match bearer_header(headers) {
        BearerHeader::Token(token) => state
            .auth
            .verify_bearer(token)
            .await
            .map_err(bearer_rejection),
        BearerHeader::Malformed => {
            tracing::debug!(code = "malformed_header", "bearer token refused");
            Err(AuthRejection::InvalidToken)
        }
        BearerHeader::Absent => match read_cookie(headers, state.cookies.session_name()) {
            Some(value) => state
                .auth
                .session(value)
                .await
                .map(|record| Auth::principal_from_session(&record))
                .map_err(session_rejection),
            None => return Ok(None),
        },
    };
    count(&outcome);
    outcome.map(Some)
}

/// Count an authentication attempt: successes by method, failures by reason.
///
/// A success, the hot path, counts through a handle made on first use: looking the counter
/// up in the recorder's registry on every request (a key built and hashed, a shared lock,
/// a reference count taken and dropped) costs more than the increment. So the recorder
/// must be installed before the first request is authenticated, as a server does at
/// startup; the counters of failures are looked up each time.
pub(crate) fn count(outcome: &Result<Principal, AuthRejection>) {
    static BEARER: OnceLock<metrics::Counter> = OnceLock::new();
    static SESSION: OnceLock<metrics::Counter> = OnceLock::new();
    match outcome {
        Ok(principal) => {
            let (cell, method) = match principal.method {
                Method::Bearer { .. } => (&BEARER, "bearer"),
                Method::Session { .. } => (&SESSION, "session"),
            };
            cell.get_or_init(
                || metrics::counter!("countersign_auth_success_total", "method" => method),
            )
            .increment(1);
        }
        Err(rejection) => rejection.count(),
    }
}

/// Authenticate a request by its headers alone, as [`Authenticated`] does (a bearer
/// token, else the session cookie; the same checks, cache and counters), for a handler
/// that asks about a request other than its own, such as a forward-authentication
/// endpoint. Nothing is remembered in the request, and a bad session cookie is not
/// marked for clearing: the caller answers for it.
///
/// # Errors
/// The [`AuthRejection`] an [`Authenticated`] extractor would give, with
/// [`AuthRejection::MissingToken`] when the request carries neither credential.
pub async fn authenticate(
    state: &AuthState,
    headers: &HeaderMap,
) -> Result<Principal, AuthRejection> {
    match resolve_headers(state, headers).await {
        Ok(Some(principal)) => Ok(principal),
        Ok(None) => {
            let rejection = AuthRejection::MissingToken;
            rejection.count();
            Err(rejection)
        }
        Err(rejection) => Err(rejection),
    }
}

/// Keep the outcome of authenticating a request (the CSRF guard, which looked the session
/// up already) for the extractors.
pub(crate) fn remember(parts: &mut Parts, outcome: Result<Option<Principal>, AuthRejection>) {
    parts.extensions.insert(Resolved(outcome));
}

fn bearer_rejection(e: BearerError) -> AuthRejection {
    match e {
        BearerError::Jwt(e) if e.is_expired() => {
            tracing::debug!(code = e.code(), "bearer token refused");
            AuthRejection::ExpiredToken
        }
        BearerError::Jwt(e) => {
            tracing::debug!(code = e.code(), "bearer token refused");
            AuthRejection::InvalidToken
        }
        BearerError::NoSubject => {
            tracing::debug!(code = "no_subject", "bearer token refused");
            AuthRejection::InvalidToken
        }
        BearerError::Revoked => {
            tracing::info!(code = "revoked", "revoked bearer token presented");
            AuthRejection::InvalidToken
        }
        BearerError::Store(e) => {
            tracing::warn!(error = %e, "token revocation check failed: store unavailable");
            AuthRejection::unavailable()
        }
        // A kind added to the engine later: refuse, as for any bad token.
        _ => {
            tracing::debug!(code = "other", "bearer token refused");
            AuthRejection::InvalidToken
        }
    }
}

pub(crate) fn session_rejection(e: SessionError) -> AuthRejection {
    match e {
        SessionError::Invalid => {
            tracing::debug!(code = "invalid_session", "session cookie refused");
            AuthRejection::InvalidSession
        }
        SessionError::Store(e) => {
            tracing::warn!(error = %e, "session lookup failed: store unavailable");
            AuthRejection::unavailable()
        }
        _ => {
            tracing::debug!(code = "other", "session cookie refused");
            AuthRejection::InvalidSession
        }
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    Arc<AuthState>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = Arc::<AuthState>::from_ref(state);
        match resolve(&state, parts).await {
            Ok(Some(principal)) => Ok(Self(principal)),
            Err(AuthRejection::InvalidSession) => {
                // The rejection clears the cookie under the default names only; the guard
                // knows the configured one.
                if let Some(stale) = parts.extensions.get::<StaleSession>() {
                    stale.mark();
                }
                Err(AuthRejection::InvalidSession)
            }
            Err(rejection) => Err(rejection),
            Ok(None) => {
                let rejection = AuthRejection::MissingToken;
                rejection.count();
                Err(rejection)
            }
        }
    }
}

impl<S> FromRequestParts<S> for MaybeAuthenticated
where
    Arc<AuthState>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = Arc::<AuthState>::from_ref(state);
        match resolve(&state, parts).await {
            Ok(principal) => Ok(Self(principal)),
            Err(rejection @ AuthRejection::Unavailable { .. }) => Err(rejection),
            Err(AuthRejection::InvalidSession) => {
                if let Some(stale) = parts.extensions.get::<StaleSession>() {
                    stale.mark();
                }
                Ok(Self(None))
            }
            Err(_) => Ok(Self(None)),
        }
    }
}

impl<S, R> FromRequestParts<S> for RequireRole<R>
where
    Arc<AuthState>: FromRef<S>,
    S: Send + Sync,
    R: RoleName,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        if principal.has_role(R::NAME) {
            Ok(Self(principal))
        } else {
            tracing::debug!(
                required = R::NAME,
                role = %principal.role,
                "role missing"
            );
            let rejection = AuthRejection::InsufficientScope { required: R::NAME };
            rejection.count();
            Err(rejection)
        }
    }
}
