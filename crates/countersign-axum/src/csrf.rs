//! Cross-site request forgery defence: [`CsrfLayer`] (its docs hold the decision table).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use countersign::auth::Auth;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tower::{Layer, Service};

use crate::cookie::{read_cookie, sets_cookie};
use crate::extract::{
    AuthState, BearerHeader, StaleSession, bearer_header, count, remember, session_rejection,
};
use crate::rejection::AuthRejection;

/// The header that carries the synchronizer token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The form field that carries the synchronizer token.
pub const CSRF_FIELD: &str = "csrf_token";

/// The largest form body the guard reads to find [`CSRF_FIELD`]; larger bodies get
/// [`AuthRejection::PayloadTooLarge`] (send the token in [`CSRF_HEADER`] instead).
pub const FORM_LIMIT: usize = 64 * 1024;

/// The layer that refuses cross-site state changes: put it around the routes a browser
/// uses, with [`axum::Router::layer`].
///
/// Two independent checks guard every state-changing request that a browser could send
/// with ambient credentials (a session cookie, or the pre-session cookie of a login form):
///
/// 1. **Where the request came from**, decided by the browser's most reliable signal.
///    `Sec-Fetch-Site` is set by every current browser and cannot be set by a page, so
///    when it is present it decides; `Origin` is compared only when it is absent (older
///    browsers, and non-browser clients, which carry no ambient credentials anyway).
/// 2. **A synchronizer token** the attacker cannot read: the `X-CSRF-Token` header or, in
///    an `application/x-www-form-urlencoded` body, the `csrf_token` field. With a live
///    session it must be the session's token ([`csrf_token_for`](crate::csrf_token_for));
///    without one (login and registration forms, against login CSRF) it must match the
///    signed pre-session cookie set by [`issue_pre_session_csrf`]. The token is required
///    in every row of the table below: passing the origin check is never enough.
///
/// The origin check, row by row (each row has a unit test):
///
/// | `Sec-Fetch-Site` | `Origin` | verdict |
/// |---|---|---|
/// | `same-origin` | anything, `null` included | pass |
/// | `none` (the user typed the address or used a bookmark) | anything | pass |
/// | `same-site` | one of [`AuthState::allowed_origins`] | pass |
/// | `same-site` | absent, `null` or any other origin | refuse |
/// | `cross-site` | anything | refuse |
/// | any other value, or several `Sec-Fetch-Site` headers | anything | refuse |
/// | absent | absent | pass (no browser sent it) |
/// | absent | `null` | refuse (sandboxed frames, `data:` pages) |
/// | absent | the request's own origin, or one of [`AuthState::allowed_origins`] | pass |
/// | absent | any other origin, several `Origin` headers, not text | refuse |
///
/// Why `Origin: null` passes with `Sec-Fetch-Site: same-origin`: under
/// `Referrer-Policy: no-referrer` the Fetch standard has the browser send `Origin: null`
/// on every form post, same-origin ones included, and `no-referrer` is a policy security
/// guides recommend. A page of another origin cannot make the browser say `same-origin`.
///
/// The request's own origin is the scheme and host the request arrived on: the `Host`
/// header and the connection's scheme (`http`, unless the request URI carries one), or
/// what a trusted proxy reports in `Forwarded` / `X-Forwarded-Proto` / `-Host` (see
/// [`Origin`](crate::Origin) and [`AuthState::trusted_proxies`]). It does not depend on
/// the cookie settings: a server with `Secure` cookies reached at `http://127.0.0.1:8080`
/// is at that origin, and a browser there says so.
///
/// Safe methods (`GET`, `HEAD`, `OPTIONS`) and requests with `Authorization: Bearer` are
/// exempt: a browser never attaches a bearer token on its own, and a cross-site page
/// cannot add one without a CORS preflight.
///
/// A refusal is answered as the client can read it: a short HTML page for a browser (its
/// `Accept` names `text/html`), the JSON [`AuthRejection`] otherwise; an application can
/// render its own page instead with [`CsrfLayer::on_rejection`] (re-showing a login form
/// with a fresh token, say).
///
/// Failures are [`AuthRejection::CsrfFailed`] (403); a store outage while looking up the
/// session is [`AuthRejection::Unavailable`] (503); a form body over [`FORM_LIMIT`] is
/// [`AuthRejection::PayloadTooLarge`] (413). A form body read for its token is handed on
/// to the handler unchanged. The session the guard looked up is kept for the extractors,
/// so a guarded request costs one lookup, not two.
///
/// Forms must carry the right token: render a signed-in user's forms with
/// [`csrf_token_for`](crate::csrf_token_for), and forms shown before there is a session
/// with [`issue_pre_session_csrf`]. Routes for non-browser clients that send credentials
/// in the body and no cookies (`POST /api/token`) should sit outside this layer, or their
/// clients must send a bearer token.
///
/// It also clears a bad session cookie that [`MaybeAuthenticated`](crate::MaybeAuthenticated)
/// passed over, unless the handler sets a new one, and the cookie of an
/// [`AuthRejection::InvalidSession`] under a name set with
/// [`CookieConfig::with_name`](crate::CookieConfig::with_name) (the rejection itself only
/// knows the default names).
///
/// A request with nothing to check (a safe method or a bearer token, and no session
/// cookie) goes straight to the route: no allocation, no extra future.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use axum::{Router, routing::post};
/// use countersign_axum::{AuthState, Authenticated, CsrfLayer};
///
/// async fn rename(Authenticated(user): Authenticated) -> String {
///     format!("renamed by {}", user.username)
/// }
///
/// fn router(state: Arc<AuthState>) -> Router {
///     Router::new()
///         .route("/buggy/rename", post(rename))
///         .layer(CsrfLayer::new(Arc::clone(&state)))
///         .with_state(state)
/// }
/// ```
#[derive(Clone)]
pub struct CsrfLayer {
    state: Arc<AuthState>,
    skip: Arc<Skip>,
    on_rejection: Option<RejectionPage>,
}

/// An application's own answer to a refused request: see [`CsrfLayer::on_rejection`].
pub type RejectionPage = Arc<dyn Fn(&Parts, &AuthRejection) -> Option<Response> + Send + Sync>;

impl std::fmt::Debug for CsrfLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfLayer")
            .field("skip", &self.skip)
            .field("on_rejection", &self.on_rejection.is_some())
            .finish_non_exhaustive()
    }
}

/// Requests the guard leaves alone.
#[derive(Clone, Debug, Default)]
struct Skip {
    /// Route patterns (as in `MatchedPath`) of routes that take no ambient credentials.
    routes: Vec<Box<str>>,
    /// Requests that matched no route (the router's fallback).
    unmatched: bool,
}

impl Skip {
    fn skips(&self, request: &Request) -> bool {
        match request.extensions().get::<MatchedPath>() {
            Some(route) => self.routes.iter().any(|r| **r == *route.as_str()),
            None => self.unmatched,
        }
    }
}

impl CsrfLayer {
    /// The layer, checking against `state`'s engine, cookie names and allowed origins.
    pub fn new(state: Arc<AuthState>) -> Self {
        Self {
            state,
            skip: Arc::default(),
            on_rejection: None,
        }
    }

    /// Answer refused requests with the application's own response where `page` gives
    /// one: it gets the request's head and the rejection, and returns `None` to leave the
    /// answer to the layer (an HTML page for a browser, JSON otherwise).
    ///
    /// A login form refused for an expired token is best answered with the form again,
    /// a fresh token, the same status and a sentence saying what happened.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use axum::response::{Html, IntoResponse};
    /// use countersign_axum::{AuthRejection, AuthState, CsrfLayer};
    ///
    /// fn layer(state: Arc<AuthState>) -> CsrfLayer {
    ///     CsrfLayer::new(state).on_rejection(|parts, rejection| {
    ///         (parts.uri.path() == "/login").then(|| {
    ///             (rejection.status(), Html("<p>The form expired: try again.</p>")).into_response()
    ///         })
    ///     })
    /// }
    /// ```
    #[must_use]
    pub fn on_rejection<F>(mut self, page: F) -> Self
    where
        F: Fn(&Parts, &AuthRejection) -> Option<Response> + Send + Sync + 'static,
    {
        self.on_rejection = Some(Arc::new(page));
        self
    }

    /// Leave requests to these routes (their patterns, as given to `Router::route`)
    /// unchecked: routes for non-browser clients that take credentials in the body and set
    /// no cookie, such as `POST /api/token`.
    ///
    /// With it the layer can wrap a whole router in one `layer` call (axum boxes every
    /// route once per call; one guard less to pass through is measurable on a hot path).
    /// Install it with [`axum::Router::layer`], which runs it after routing: the route
    /// pattern is only known there.
    #[must_use]
    pub fn skip_routes<I, R>(mut self, routes: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<Box<str>>,
    {
        let skip = Arc::make_mut(&mut self.skip);
        skip.routes.extend(routes.into_iter().map(Into::into));
        self
    }

    /// Leave requests that matched no route unchecked, so that they reach the router's
    /// fallback (a 404) rather than a 403. Only for a fallback that changes nothing.
    #[must_use]
    pub fn skip_unmatched(mut self) -> Self {
        Arc::make_mut(&mut self.skip).unmatched = true;
        self
    }
}

impl<S> Layer<S> for CsrfLayer {
    type Service = CsrfGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CsrfGuard {
            inner,
            state: Arc::clone(&self.state),
            skip: Arc::clone(&self.skip),
            on_rejection: self.on_rejection.clone(),
        }
    }
}

/// The service of [`CsrfLayer`].
#[derive(Clone)]
pub struct CsrfGuard<S> {
    inner: S,
    state: Arc<AuthState>,
    skip: Arc<Skip>,
    on_rejection: Option<RejectionPage>,
}

impl<S> std::fmt::Debug for CsrfGuard<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfGuard")
            .field("skip", &self.skip)
            .finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// The future of [`CsrfGuard`]: the route's own future when there is nothing to check.
    #[project = CsrfFutureProj]
    pub struct CsrfFuture<F> {
        #[pin]
        inner: Either<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = EitherProj]
    enum Either<F> {
        Direct { #[pin] future: F },
        Checked { future: Pin<Box<dyn Future<Output = Response> + Send>> },
    }
}

impl<F> Future for CsrfFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.project() {
            EitherProj::Direct { future } => future.poll(cx),
            EitherProj::Checked { future } => future.as_mut().poll(cx).map(Ok),
        }
    }
}

impl<F> std::fmt::Debug for CsrfFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfFuture").finish_non_exhaustive()
    }
}

impl<S> Service<Request> for CsrfGuard<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = CsrfFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if self.skip.skips(&request) {
            return CsrfFuture {
                inner: Either::Direct {
                    future: self.inner.call(request),
                },
            };
        }
        let bearer = bearer_header(request.headers());
        let exempt = matches!(bearer, BearerHeader::Token(_));
        let session_cookie = matches!(bearer, BearerHeader::Absent)
            && read_cookie(request.headers(), self.state.cookies.session_name()).is_some();
        if (exempt || is_safe(request.method())) && !session_cookie {
            return CsrfFuture {
                inner: Either::Direct {
                    future: self.inner.call(request),
                },
            };
        }
        // The service that was made ready is the one that must serve this request.
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        let state = Arc::clone(&self.state);
        let on_rejection = self.on_rejection.clone();
        CsrfFuture {
            inner: Either::Checked {
                future: Box::pin(async move {
                    guard(
                        &state,
                        request,
                        exempt,
                        session_cookie,
                        on_rejection.as_ref(),
                        inner,
                    )
                    .await
                }),
            },
        }
    }
}

/// The full check, for a request with a session cookie or an unsafe method.
async fn guard<S>(
    state: &AuthState,
    request: Request,
    exempt: bool,
    session_cookie: bool,
    on_rejection: Option<&RejectionPage>,
    mut inner: S,
) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let (mut parts, body) = request.into_parts();
    let stale = session_cookie.then(StaleSession::default);
    if let Some(stale) = &stale {
        parts.extensions.insert(stale.clone());
    }
    let outcome = if is_safe(&parts.method) || exempt {
        Ok(body)
    } else {
        check(state, &mut parts, body, stale.as_ref()).await
    };
    let mut response = match outcome {
        Ok(body) => match inner.call(Request::from_parts(parts, body)).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Err(rejection) => {
            if !matches!(rejection, AuthRejection::Unavailable { .. }) {
                // Unavailable was counted where the store failed.
                rejection.count();
            }
            on_rejection
                .and_then(|page| page(&parts, &rejection))
                .unwrap_or_else(|| rejection.respond_to(&parts))
        }
    };
    if let Some(stale) = stale
        && stale.is_marked()
        && !sets_cookie(response.headers(), state.cookies.session_name())
    {
        response
            .headers_mut()
            .append(header::SET_COOKIE, state.cookies.clear_session_cookie());
    }
    response
}

/// A CSRF pair for a form shown before there is a session (login, registration): the
/// `Set-Cookie` value for the signed pre-session cookie, and the token to put in the
/// form's hidden `csrf_token` field.
///
/// # Examples
/// ```no_run
/// use axum::response::{Html, IntoResponse};
/// use countersign_axum::{AuthState, issue_pre_session_csrf};
/// use http::header::SET_COOKIE;
///
/// fn login_form(state: &AuthState) -> impl IntoResponse {
///     let (cookie, token) = issue_pre_session_csrf(state);
///     let form = format!(
///         r#"<form method="post" action="/login">
///              <input type="hidden" name="csrf_token" value="{token}"> …</form>"#
///     );
///     ([(SET_COOKIE, cookie)], Html(form))
/// }
/// ```
pub fn issue_pre_session_csrf(state: &AuthState) -> (HeaderValue, String) {
    let (cookie, token) = state.auth.pre_session_csrf();
    (state.cookies.csrf_cookie(&cookie), token)
}

/// The CSRF pair for a form shown before there is a session, keeping the one the browser
/// already holds: when the request carries a good, unexpired pre-session cookie, its token
/// and no `Set-Cookie` (`None`); otherwise a new pair, as [`issue_pre_session_csrf`].
///
/// Use it for every view of a login form: a page that replaced the cookie on each view
/// would break the form in another tab (or one shown before a background request the
/// browser made). The cookie is replaced at sign-in and sign-out, and when it expires.
///
/// # Examples
/// ```no_run
/// use axum::response::{Html, IntoResponse, Response};
/// use countersign_axum::{AuthState, pre_session_csrf};
/// use http::{HeaderMap, header::SET_COOKIE};
///
/// fn login_form(state: &AuthState, headers: &HeaderMap) -> Response {
///     let (cookie, token) = pre_session_csrf(state, headers);
///     let mut page = Html(format!(
///         r#"<form method="post"><input type="hidden" name="csrf_token" value="{token}"></form>"#
///     ))
///     .into_response();
///     if let Some(cookie) = cookie {
///         page.headers_mut().append(SET_COOKIE, cookie);
///     }
///     page
/// }
/// ```
pub fn pre_session_csrf(state: &AuthState, headers: &HeaderMap) -> (Option<HeaderValue>, String) {
    let kept = read_cookie(headers, state.cookies.csrf_name())
        .and_then(|cookie| state.auth.pre_session_csrf_token(cookie));
    match kept {
        Some(token) => (None, token.to_owned()),
        None => {
            let (cookie, token) = issue_pre_session_csrf(state);
            (Some(cookie), token)
        }
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Run both checks; on success, the request to hand on (with its body restored).
async fn check(
    state: &AuthState,
    parts: &mut Parts,
    body: Body,
    stale: Option<&StaleSession>,
) -> Result<Body, AuthRejection> {
    if let Err(code) = origin_check(state, parts) {
        tracing::debug!(code, "CSRF check failed");
        return Err(AuthRejection::CsrfFailed);
    }
    let (presented, body) = presented_token(&parts.headers, body).await?;
    let Some(presented) = presented else {
        tracing::debug!(code = "missing_token", "CSRF check failed");
        return Err(AuthRejection::CsrfFailed);
    };

    let session_cookie = match bearer_header(&parts.headers) {
        BearerHeader::Absent => read_cookie(&parts.headers, state.cookies.session_name()),
        // A malformed Authorization header: the extractors judge the request by it, not
        // by the cookie, so there is no session to hold the token against.
        _ => None,
    };
    if let Some(value) = session_cookie {
        match state.auth.session(value).await {
            Ok(record) => {
                let principal = Auth::principal_from_session(&record);
                let outcome = Ok(principal);
                count(&outcome);
                remember(parts, outcome.map(Some));
                if state.auth.check_session_csrf(&record, &presented) {
                    return Ok(body);
                }
                tracing::debug!(code = "session_token", "CSRF check failed");
                return Err(AuthRejection::CsrfFailed);
            }
            Err(e) => {
                let rejection = session_rejection(e);
                rejection.count();
                if let AuthRejection::Unavailable { .. } = rejection {
                    return Err(rejection);
                }
                remember(parts, Err(rejection));
                if let Some(stale) = stale {
                    stale.mark();
                }
                // No live session: the form is a pre-session one (a login form shown
                // after the session ended, say).
            }
        }
    }
    let signed = read_cookie(&parts.headers, state.cookies.csrf_name());
    if signed.is_some_and(|cookie| state.auth.check_pre_session_csrf(cookie, &presented)) {
        Ok(body)
    } else {
        tracing::debug!(code = "pre_session_token", "CSRF check failed");
        Err(AuthRejection::CsrfFailed)
    }
}

/// The origin part of the check: the table on [`CsrfLayer`]. `Err` carries
/// the stable code logged at `debug`.
fn origin_check(state: &AuthState, parts: &Parts) -> Result<(), &'static str> {
    let origin = match single(&parts.headers, header::ORIGIN.as_str()) {
        Single::Absent => None,
        Single::One(origin) => Some(origin),
        Single::Bad => return Err("origin_header"),
    };
    match single(&parts.headers, "sec-fetch-site") {
        Single::One(site) if site.eq_ignore_ascii_case("same-origin") => Ok(()),
        Single::One(site) if site.eq_ignore_ascii_case("none") => Ok(()),
        Single::One(site) if site.eq_ignore_ascii_case("same-site") => {
            match origin.map(normalize_origin) {
                Some(origin) if is_allowed(state, &origin) => Ok(()),
                _ => Err("same_site"),
            }
        }
        Single::One(_) | Single::Bad => Err("sec_fetch_site"),
        Single::Absent => {
            let Some(origin) = origin else {
                return Ok(());
            };
            if origin.eq_ignore_ascii_case("null") {
                return Err("origin_null");
            }
            let origin = normalize_origin(origin);
            if is_allowed(state, &origin) {
                return Ok(());
            }
            let own = crate::Origin::of(parts, &state.trusted_proxies).own_origin();
            match own {
                Some(own) if own.eq_ignore_ascii_case(&origin) => Ok(()),
                _ => Err("origin"),
            }
        }
    }
}

/// A header that may appear at most once.
enum Single<'a> {
    Absent,
    One(&'a str),
    /// Several headers, or a value that is not text.
    Bad,
}

fn single<'a>(headers: &'a HeaderMap, name: &str) -> Single<'a> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Single::Absent;
    };
    if values.next().is_some() {
        return Single::Bad;
    }
    match value.to_str() {
        Ok(v) => Single::One(v.trim()),
        Err(_) => Single::Bad,
    }
}

/// An origin as compared: lowercase, no trailing `/`, no default port for its scheme.
fn normalize_origin(origin: &str) -> String {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let default_port = if origin.starts_with("https://") {
        ":443"
    } else if origin.starts_with("http://") {
        ":80"
    } else {
        return origin;
    };
    match origin.strip_suffix(default_port) {
        Some(bare) => bare.to_owned(),
        None => origin,
    }
}

fn is_allowed(state: &AuthState, origin: &str) -> bool {
    state
        .allowed_origins
        .iter()
        .any(|allowed| normalize_origin(allowed) == origin)
}

/// The token the request presents, from the header or the form body; the body comes back
/// for the handler.
async fn presented_token(
    headers: &HeaderMap,
    body: Body,
) -> Result<(Option<String>, Body), AuthRejection> {
    if let Some(value) = headers.get(CSRF_HEADER) {
        let token = value.to_str().ok().map(|v| v.trim().to_owned());
        return Ok((token, body));
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Ok((None, body));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = AuthRejection::PayloadTooLarge { limit: FORM_LIMIT };
    if declared.is_some_and(|n| n > FORM_LIMIT as u64) {
        return Err(too_large);
    }
    let bytes = match Limited::new(body, FORM_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return Err(too_large),
        Err(e) => {
            tracing::debug!(error = %e, "CSRF check could not read the form body");
            return Err(AuthRejection::CsrfFailed);
        }
    };
    let token = form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.into_owned());
    Ok((token, Body::from(bytes)))
}
