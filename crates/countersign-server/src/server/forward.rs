//! Forward authentication (`docs/forward-auth.md`): a reverse proxy asks, for each request
//! it is about to pass on, whether the request may go through and who sent it.
//!
//! - `GET /auth/request`, for nginx `auth_request`: the original request is named by
//!   `X-Original-URL` (absolute) and `X-Original-Method`. The answer is **only** 200, 401
//!   or 403, since nginx treats any other status as an error: a refusal for any other
//!   reason (an untrusted peer, a missing header, a store outage) is a 403 whose body says
//!   why. A 401 to a browser navigation carries the login page's URL in `Location`, for
//!   nginx to send the browser there (`auth_request_set` + `error_page 401`).
//! - `GET /auth/forward`, for Traefik `ForwardAuth` and Caddy `forward_auth`: the original
//!   request is `X-Forwarded-Method`, `-Proto`, `-Host` and `-Uri`. A browser navigation
//!   (GET or HEAD, `Accept` naming `text/html`) that needs a login gets 302 to the login
//!   page with `rd=` the original URL; anything else 401 with the RFC 6750 challenge. A
//!   store outage is 503 with `Retry-After` (these proxies pass it on).
//!
//! Each endpoint reads only its own headers. Traefik and Caddy copy the client's headers
//! into the request they send here and overwrite only the ones they set themselves, so a
//! client could otherwise send `X-Original-URL: https://app/public` through Traefik and be
//! judged by the rule of a path it is not requesting.
//!
//! Those headers decide which rule applies, so they are read only from a trusted proxy
//! (`--trusted-proxies`): from any other peer both endpoints answer 403, whatever the
//! request holds, and log once (at `warn`) how to fix the configuration.
//!
//! Both authenticate with the session cookie or `Authorization: Bearer`, through the same
//! extractor and engine cache as `/protected`, so revocation works the same and the hot path
//! is one cached lookup. On 200 for a known user they set `Remote-User` (the username),
//! `Remote-Groups` (the role) and `Countersign-Jwt-Assertion`: a JWT signed like access
//! tokens, with `sub`, `username`, `role`, `iat`, `exp` (60 s after `iat`), `aud` (the
//! original URL's origin) and `iss`. On 200 for nobody (a `public` rule) the three
//! headers are present and empty, so that a proxy copying them replaces what a client
//! sent. It is cached per credential and audience and reused
//! for 30 s, so the upstream always gets one with at least 30 s left, and a busy session
//! costs one signature per 30 s, not one per request.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::net::SocketAddr;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use countersign::auth::{Method, Principal};
use countersign::jwt::Claims;
use countersign_axum::{AuthRejection, Authenticated};
use serde_json::json;
use url::Url;

use super::app::App;
use super::pages;
use crate::access::{self, AccessRules, Asker, Policy, Rule, Verdict};
use crate::redirect::ReturnTo;

/// `Remote-User`: the username.
pub const REMOTE_USER: HeaderName = HeaderName::from_static("remote-user");
/// `Remote-Groups`: the role (comma-separated, should a user ever have several).
pub const REMOTE_GROUPS: HeaderName = HeaderName::from_static("remote-groups");
/// `Countersign-Jwt-Assertion`: the signed identity for the upstream.
pub const ASSERTION: HeaderName = HeaderName::from_static("countersign-jwt-assertion");

/// An assertion's lifetime, seconds.
pub const ASSERTION_TTL_SECS: i64 = 60;
/// How long a cached assertion is handed out again, seconds (so at least
/// `ASSERTION_TTL_SECS - ASSERTION_REUSE_SECS` are left when the upstream gets it).
pub const ASSERTION_REUSE_SECS: i64 = 30;
/// Cached assertions kept at most; past it, expired ones are dropped, then all.
const ASSERTION_CACHE_MAX: usize = 10_000;
/// The longest original URL considered.
const MAX_ORIGINAL_URL: usize = 8 * 1024;

/// Which endpoint is answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/auth/request` (nginx).
    Request,
    /// `/auth/forward` (Traefik, Caddy).
    Forward,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Forward => "forward",
        }
    }
}

/// What forward authentication needs besides the engine: the rules (swapped on SIGHUP),
/// where the login page is, where browsers may be sent back to, and the assertion cache.
pub struct ForwardAuth {
    rules: ArcSwap<AccessRules>,
    return_to: ReturnTo,
    /// `https://auth.example.test/login`, or `/login` without a public URL.
    login: String,
    issuer: String,
    assertions: AssertionCache,
    warned_untrusted: AtomicBool,
}

impl std::fmt::Debug for ForwardAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardAuth")
            .field("rules", &self.rules.load().rules().len())
            .field("return_to", &self.return_to)
            .field("login", &self.login)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl ForwardAuth {
    /// Forward authentication with these rules; the login page at the first public URL
    /// (else `/login` on whatever host the browser is at), browsers sent back only to
    /// `return_to`'s hosts.
    pub fn new(rules: AccessRules, public_urls: &[String], return_to: ReturnTo) -> Self {
        let base = public_urls.first().map(|u| u.trim_end_matches('/'));
        Self {
            rules: ArcSwap::from_pointee(rules),
            return_to,
            login: format!("{}/login", base.unwrap_or_default()),
            issuer: base.unwrap_or("countersign").to_owned(),
            assertions: AssertionCache::default(),
            warned_untrusted: AtomicBool::new(false),
        }
    }

    /// Replace the rules (SIGHUP).
    pub fn set_rules(&self, rules: AccessRules) {
        self.rules.store(std::sync::Arc::new(rules));
    }

    /// The rules in use.
    pub fn rules(&self) -> std::sync::Arc<AccessRules> {
        self.rules.load_full()
    }

    /// Where browsers may be sent back to after login and logout.
    pub fn return_to(&self) -> &ReturnTo {
        &self.return_to
    }

    /// The `iss` of assertions: the first public URL, else `countersign` (an asymmetric
    /// signer with its own issuer configured replaces it).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The login page's URL that returns to `original` afterwards.
    pub fn login_url(&self, original: &Url) -> String {
        let rd: String = form_urlencoded_byte_serialize(original.as_str());
        format!("{}?rd={rd}", self.login)
    }
}

/// Percent-encode a query value (everything but `A-Z a-z 0-9 - . _ ~`).
fn form_urlencoded_byte_serialize(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3 / 2);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The request the proxy is asking about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Original {
    /// Upper case.
    pub method: String,
    /// As parsed (and normalized) by the URL standard.
    pub url: Url,
    /// Lowercase, no port, no trailing dot.
    pub host: String,
    /// Explicit, or the scheme's default.
    pub port: u16,
    /// [`access::normalize_path`] of the URL's path.
    pub path: String,
}

/// Why the original request cannot be known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OriginalError {
    /// A header the endpoint needs is absent.
    #[error("the proxy did not send {0}")]
    Missing(&'static str),
    /// A header came more than once, or with a list of values.
    #[error("the proxy sent {0} more than once")]
    Repeated(&'static str),
    /// A header's value is not usable.
    #[error("the proxy sent an unusable {0}")]
    Invalid(&'static str),
}

impl Original {
    /// The original request of an nginx `auth_request` subrequest.
    ///
    /// # Errors
    /// [`OriginalError`] naming the header.
    pub fn from_original_headers(headers: &HeaderMap) -> Result<Self, OriginalError> {
        let url = one(headers, "x-original-url", false)?
            .ok_or(OriginalError::Missing("X-Original-URL"))?;
        let method = one(headers, "x-original-method", true)?
            .ok_or(OriginalError::Missing("X-Original-Method"))?;
        Self::new(method, url, "X-Original-URL")
    }

    /// The original request of a Traefik or Caddy forward-auth request.
    ///
    /// # Errors
    /// [`OriginalError`] naming the header.
    pub fn from_forwarded_headers(headers: &HeaderMap) -> Result<Self, OriginalError> {
        let method = one(headers, "x-forwarded-method", true)?
            .ok_or(OriginalError::Missing("X-Forwarded-Method"))?;
        let proto = one(headers, "x-forwarded-proto", true)?
            .ok_or(OriginalError::Missing("X-Forwarded-Proto"))?;
        let host = one(headers, "x-forwarded-host", true)?
            .ok_or(OriginalError::Missing("X-Forwarded-Host"))?;
        let uri = one(headers, "x-forwarded-uri", false)?
            .ok_or(OriginalError::Missing("X-Forwarded-Uri"))?;
        let proto = match proto.to_ascii_lowercase().as_str() {
            "http" => "http",
            "https" => "https",
            _ => return Err(OriginalError::Invalid("X-Forwarded-Proto")),
        };
        // Only what a `Host` header may hold: nothing that would end the authority early.
        let host_ok = host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        });
        if !host_ok {
            return Err(OriginalError::Invalid("X-Forwarded-Host"));
        }
        if !uri.starts_with('/') {
            return Err(OriginalError::Invalid("X-Forwarded-Uri"));
        }
        Self::new(method, &format!("{proto}://{host}{uri}"), "X-Forwarded-Uri")
    }

    /// A request given by hand (`countersign access check`), read as `X-Original-URL` and
    /// `X-Original-Method` are.
    ///
    /// # Errors
    /// [`OriginalError::Invalid`].
    pub fn parse(method: &str, url: &str) -> Result<Self, OriginalError> {
        Self::new(method, url, "X-Original-URL")
    }

    fn new(method: &str, url: &str, url_header: &'static str) -> Result<Self, OriginalError> {
        let method_ok = !method.is_empty()
            && method.len() <= 32
            && method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-');
        if !method_ok {
            return Err(OriginalError::Invalid(if url_header == "X-Original-URL" {
                "X-Original-Method"
            } else {
                "X-Forwarded-Method"
            }));
        }
        if url.len() > MAX_ORIGINAL_URL {
            return Err(OriginalError::Invalid(url_header));
        }
        let url = Url::parse(url).map_err(|_| OriginalError::Invalid(url_header))?;
        if !matches!(url.scheme(), "http" | "https")
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(OriginalError::Invalid(url_header));
        }
        let host = url
            .host_str()
            .ok_or(OriginalError::Invalid(url_header))?
            .to_ascii_lowercase();
        let host = host.strip_suffix('.').unwrap_or(&host).to_owned();
        let port = url
            .port_or_known_default()
            .ok_or(OriginalError::Invalid(url_header))?;
        let path = access::normalize_path(url.path());
        Ok(Self {
            method: method.to_ascii_uppercase(),
            url,
            host,
            port,
            path,
        })
    }

    /// As the rules see it.
    pub fn as_request(&self) -> access::Request<'_> {
        access::Request {
            method: &self.method,
            host: &self.host,
            port: self.port,
            path: &self.path,
        }
    }

    /// `scheme://host[:port]`, the default port left out: the assertion's audience.
    pub fn origin(&self) -> String {
        match self.url.port() {
            Some(port) => format!("{}://{}:{port}", self.url.scheme(), self.host),
            None => format!("{}://{}", self.url.scheme(), self.host),
        }
    }

    fn is_navigation(&self, headers: &HeaderMap) -> bool {
        matches!(self.method.as_str(), "GET" | "HEAD")
            && headers
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|m| {
                    m.split(';')
                        .next()
                        .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html"))
                })
    }
}

/// The one value of header `name`: `None` when absent; an error when it comes twice, is
/// not visible ASCII, or (`no_list`) holds a comma.
fn one<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
    no_list: bool,
) -> Result<Option<&'a str>, OriginalError> {
    let shown = shown_name(name);
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OriginalError::Repeated(shown));
    }
    let text = value
        .to_str()
        .map_err(|_| OriginalError::Invalid(shown))?
        .trim();
    if text.is_empty() {
        return Ok(None);
    }
    if no_list && text.contains(',') {
        return Err(OriginalError::Repeated(shown));
    }
    Ok(Some(text))
}

fn shown_name(name: &str) -> &'static str {
    match name {
        "x-original-url" => "X-Original-URL",
        "x-original-method" => "X-Original-Method",
        "x-forwarded-method" => "X-Forwarded-Method",
        "x-forwarded-proto" => "X-Forwarded-Proto",
        "x-forwarded-host" => "X-Forwarded-Host",
        _ => "X-Forwarded-Uri",
    }
}

/// `GET /auth/request`: nginx `auth_request`.
pub async fn auth_request(State(app): State<App>, request: Request) -> Response {
    decide(&app, Endpoint::Request, request).await
}

/// `GET /auth/forward`: Traefik `ForwardAuth`, Caddy `forward_auth`.
pub async fn auth_forward(State(app): State<App>, request: Request) -> Response {
    decide(&app, Endpoint::Forward, request).await
}

async fn decide(app: &App, endpoint: Endpoint, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let forward = &app.site.forward;
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !peer.is_some_and(|p| app.auth.trusted_proxies.contains(p)) {
        if !forward.warned_untrusted.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                peer = ?peer,
                "forward auth asked by a peer that is not a trusted proxy: answered 403. \
                 Start countersign with --trusted-proxies naming the proxy's address"
            );
        }
        return refuse(
            endpoint,
            "untrusted_peer",
            "Forward authentication answers only trusted proxies.",
        );
    }
    let original = match endpoint {
        Endpoint::Request => Original::from_original_headers(&parts.headers),
        Endpoint::Forward => Original::from_forwarded_headers(&parts.headers),
    };
    let original = match original {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(endpoint = endpoint.label(), reason = %e, "forward auth: no usable original request");
            return refuse(
                endpoint,
                "bad_original_request",
                &format!(
                    "{}: see the proxy configuration in docs/forward-auth.md.",
                    sentence(&e.to_string())
                ),
            );
        }
    };

    let who = match Authenticated::from_request_parts(&mut parts, app).await {
        Ok(Authenticated(p)) => Ok(p),
        Err(rejection @ AuthRejection::Unavailable { .. }) => {
            count(endpoint, "unavailable");
            return match endpoint {
                Endpoint::Forward => without_cookies(rejection.into_response()),
                Endpoint::Request => {
                    let mut r = refuse(endpoint, "unavailable", &rejection.message());
                    if let AuthRejection::Unavailable { retry_after_secs } = rejection {
                        r.headers_mut()
                            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                    }
                    r
                }
            };
        }
        Err(rejection) => Err(rejection),
    };

    let rules = forward.rules.load();
    let (rule, policy) = rules.policy_for(&original.as_request());
    let asker = who.as_ref().ok().map(|p| Asker { role: &p.role });
    let verdict = AccessRules::verdict(policy, asker);
    tracing::debug!(
        endpoint = endpoint.label(),
        method = %original.method,
        host = %original.host,
        path = %original.path,
        rule = rule.map_or_else(|| "default".to_owned(), Rule::label),
        policy = %policy,
        verdict = ?verdict,
        "forward auth"
    );
    match (verdict, who) {
        (Verdict::Allow, Ok(principal)) => allowed(app, endpoint, &principal, &original),
        (Verdict::Allow, Err(_)) => {
            count(endpoint, "allow");
            anonymous()
        }
        (Verdict::Unauthenticated, Err(rejection)) => {
            count(endpoint, "unauthenticated");
            let navigation = original.is_navigation(&parts.headers);
            let login = forward.login_url(&original.url);
            if navigation && !forward.return_to.allows_host(&original.host) {
                tracing::debug!(
                    host = %original.host,
                    "the original host is not in --public-url or --forward-auth-domains: \
                     after logging in, the browser will land on / instead"
                );
            }
            match (endpoint, navigation) {
                (Endpoint::Forward, true) => found(&login),
                (_, navigation) => {
                    let mut r = without_cookies(rejection.into_response());
                    if navigation && let Ok(v) = HeaderValue::from_str(&login) {
                        r.headers_mut().insert(header::LOCATION, v);
                    }
                    r
                }
            }
        }
        (_, who) => {
            count(endpoint, "forbidden");
            forbidden(app, policy, who.is_ok(), &original, &parts)
        }
    }
}

/// 200 with the identity headers for `principal`.
fn allowed(app: &App, endpoint: Endpoint, principal: &Principal, original: &Original) -> Response {
    let (Ok(user), Ok(groups)) = (
        HeaderValue::from_str(&principal.username),
        HeaderValue::from_str(&principal.role),
    ) else {
        // A bearer token made elsewhere may carry any text; never pass on a name the
        // upstream would read differently.
        tracing::warn!("forward auth: a username or role cannot be sent as a header: refused");
        return refuse(
            endpoint,
            "invalid_identity",
            "The identity cannot be passed on.",
        );
    };
    let Some(assertion) = app
        .site
        .forward
        .assertion(app, principal, &original.origin())
    else {
        return refuse(
            endpoint,
            "unavailable",
            "The identity assertion could not be signed.",
        );
    };
    count(endpoint, "allow");
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert(REMOTE_USER, user);
    headers.insert(REMOTE_GROUPS, groups);
    headers.insert(ASSERTION, assertion);
    response
}

/// 200 for nobody (a `public` rule): the identity headers present and empty. A proxy that
/// copies them (Caddy's `copy_headers`, Traefik's `authResponseHeaders`) then overwrites
/// whatever the client sent under those names, and Caddy 2.6 does not put its own
/// placeholder text in their place, as it does for a header the answer lacks.
fn anonymous() -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    for name in [REMOTE_USER, REMOTE_GROUPS, ASSERTION] {
        headers.insert(name, HeaderValue::from_static(""));
    }
    response
}

/// 403 for an authenticated user without the role, or for a `deny` rule.
fn forbidden(
    app: &App,
    policy: &Policy,
    known: bool,
    original: &Original,
    parts: &Parts,
) -> Response {
    let (error, message) = match policy {
        Policy::Role(role) if known => (
            "insufficient_scope",
            format!("This page requires the {role} role."),
        ),
        _ => ("access_denied", "Access to this page is denied.".to_owned()),
    };
    let mut response = if original.is_navigation(&parts.headers) {
        pages::error_page(app, StatusCode::FORBIDDEN, "Access denied", &message)
    } else {
        (
            StatusCode::FORBIDDEN,
            axum::Json(json!({ "error": error, "message": message })),
        )
            .into_response()
    };
    if error == "insufficient_scope" {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer realm="countersign", error="insufficient_scope""#),
        );
    }
    response
}

/// 403 with `{"error": code, "message": message}`: the answer to a question that cannot be
/// answered (both endpoints: nginx knows only 200, 401 and 403).
fn refuse(endpoint: Endpoint, code: &'static str, message: &str) -> Response {
    count(endpoint, code);
    (
        StatusCode::FORBIDDEN,
        axum::Json(json!({ "error": code, "message": message })),
    )
        .into_response()
}

/// 302 to `location`.
fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        // The URL was serialized by the URL parser: always ASCII.
        Err(_) => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// A rejection's response without the `Set-Cookie` clearing a bad session cookie: the
/// proxy may pass it to the browser on the application's host, where it means nothing.
fn without_cookies(mut response: Response) -> Response {
    response.headers_mut().remove(header::SET_COOKIE);
    response
}

fn count(endpoint: Endpoint, outcome: &'static str) {
    metrics::counter!(
        "countersign_forward_auth_total",
        "endpoint" => endpoint.label(),
        "outcome" => outcome
    )
    .increment(1);
}

fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Signed assertions, by credential and audience.
#[derive(Default)]
struct AssertionCache {
    hasher: RandomState,
    entries: RwLock<HashMap<u64, Cached>>,
}

struct Cached {
    token: HeaderValue,
    sub: String,
    username: String,
    role: String,
    audience: String,
    reuse_until: i64,
    expires: i64,
}

impl ForwardAuth {
    /// The assertion for `principal` at `audience`: the cached one while it has at least
    /// `ASSERTION_TTL_SECS - ASSERTION_REUSE_SECS` left, else a new one. `None` when it
    /// cannot be signed.
    fn assertion(&self, app: &App, principal: &Principal, audience: &str) -> Option<HeaderValue> {
        let now = app.engine().now().0;
        let sub = principal
            .user_id
            .map_or_else(|| principal.username.clone(), |id| id.to_string());
        let key = self
            .assertions
            .hasher
            .hash_one((credential(principal), audience));
        let cache = &self.assertions.entries;
        if let Ok(entries) = cache.read()
            && let Some(c) = entries.get(&key)
            && now < c.reuse_until
            && now >= c.reuse_until - ASSERTION_REUSE_SECS
            && c.sub == sub
            && c.username == principal.username
            && c.role == principal.role
            && c.audience == audience
        {
            return Some(c.token.clone());
        }
        let iat = countersign::clock::UnixTime(now);
        let mut claims = Claims::new(iat.add_secs(ASSERTION_TTL_SECS));
        claims.sub = Some(sub.clone());
        claims.username = Some(principal.username.clone());
        claims.role = Some(principal.role.clone());
        claims.iat = Some(iat);
        // The issuer the service announces (its public URL) when it runs; else ours.
        let issuer = app.engine().token_keys().issuer().map(str::to_owned);
        claims.iss = Some(issuer.unwrap_or_else(|| self.issuer.clone()));
        claims.aud = vec![audience.to_owned()];
        let token = match app.engine().sign_claims(&mut claims) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "forward auth: the assertion could not be signed");
                return None;
            }
        };
        let mut value = HeaderValue::from_str(&token).ok()?;
        value.set_sensitive(true);
        if let Ok(mut entries) = cache.write() {
            if entries.len() >= ASSERTION_CACHE_MAX {
                entries.retain(|_, c| c.expires > now);
                if entries.len() >= ASSERTION_CACHE_MAX {
                    entries.clear();
                }
            }
            entries.insert(
                key,
                Cached {
                    token: value.clone(),
                    sub,
                    username: principal.username.clone(),
                    role: principal.role.clone(),
                    audience: audience.to_owned(),
                    reuse_until: now + ASSERTION_REUSE_SECS,
                    expires: now + ASSERTION_TTL_SECS,
                },
            );
        }
        Some(value)
    }
}

/// What identifies the credential: the session, or the token.
fn credential(principal: &Principal) -> (u8, String) {
    match &principal.method {
        Method::Session { key, .. } => (0, key.to_string()),
        Method::Bearer { jti: Some(jti), .. } => (1, jti.clone()),
        Method::Bearer { jti: None, exp } => (2, format!("{}:{}", principal.username, exp.0)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn original_from_nginx_headers() {
        let o = Original::from_original_headers(&headers(&[
            ("x-original-url", "https://App.Example.Test./%61dmin//x?q=1"),
            ("x-original-method", "post"),
        ]))
        .unwrap();
        assert_eq!(o.method, "POST");
        assert_eq!(o.host, "app.example.test");
        assert_eq!(o.port, 443);
        assert_eq!(o.path, "/admin/x");
        assert_eq!(o.origin(), "https://app.example.test");
        let o = Original::from_original_headers(&headers(&[
            ("x-original-url", "http://127.0.0.1:8080/"),
            ("x-original-method", "GET"),
        ]))
        .unwrap();
        assert_eq!(
            (o.port, o.origin().as_str()),
            (8080, "http://127.0.0.1:8080")
        );
    }

    #[test]
    fn original_from_forwarded_headers() {
        let o = Original::from_forwarded_headers(&headers(&[
            ("x-forwarded-method", "GET"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "127.0.0.1:5000"),
            ("x-forwarded-uri", "/a/../admin?x=1,2"),
        ]))
        .unwrap();
        assert_eq!(
            (o.host.as_str(), o.port, o.path.as_str()),
            ("127.0.0.1", 5000, "/admin")
        );
        assert_eq!(o.url.as_str(), "http://127.0.0.1:5000/admin?x=1,2");
    }

    #[test]
    fn unusable_originals_are_named() {
        use OriginalError::*;
        let nginx =
            |pairs: &[(&'static str, &str)]| Original::from_original_headers(&headers(pairs));
        assert_eq!(
            nginx(&[("x-original-method", "GET")]),
            Err(Missing("X-Original-URL"))
        );
        assert_eq!(
            nginx(&[("x-original-url", "https://a.test/")]),
            Err(Missing("X-Original-Method"))
        );
        for url in [
            "/relative",
            "ftp://a.test/",
            "https://u:p@a.test/",
            "https://a.test:99999/",
            "javascript:x",
            "https://",
        ] {
            assert_eq!(
                nginx(&[("x-original-url", url), ("x-original-method", "GET")]),
                Err(Invalid("X-Original-URL")),
                "{url}"
            );
        }
        assert_eq!(
            nginx(&[
                ("x-original-url", "https://a.test/"),
                ("x-original-url", "https://b.test/"),
                ("x-original-method", "GET")
            ]),
            Err(Repeated("X-Original-URL"))
        );
        assert_eq!(
            nginx(&[
                ("x-original-url", "https://a.test/"),
                ("x-original-method", "GET, POST")
            ]),
            Err(Repeated("X-Original-Method"))
        );
        assert_eq!(
            nginx(&[
                ("x-original-url", "https://a.test/"),
                ("x-original-method", "G ET")
            ]),
            Err(Invalid("X-Original-Method"))
        );
        let fwd = |host: &str, uri: &str, proto: &str| {
            Original::from_forwarded_headers(&headers(&[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-proto", proto),
                ("x-forwarded-host", host),
                ("x-forwarded-uri", uri),
            ]))
        };
        assert_eq!(fwd("a.test", "/", "ftp"), Err(Invalid("X-Forwarded-Proto")));
        assert_eq!(
            fwd("a.test", "/", "https, http"),
            Err(Repeated("X-Forwarded-Proto"))
        );
        assert_eq!(
            fwd("a.test, b.test", "/", "https"),
            Err(Repeated("X-Forwarded-Host"))
        );
        for host in [
            "evil.test/x",
            "u@a.test",
            "a.test?x",
            "a.test#",
            "a.test\\x",
        ] {
            assert_eq!(
                fwd(host, "/", "https"),
                Err(Invalid("X-Forwarded-Host")),
                "{host}"
            );
        }
        for uri in ["x", "@evil.test/", "//evil.test/"] {
            let r = fwd("a.test", uri, "https");
            assert!(
                r.as_ref().is_err() || r.as_ref().is_ok_and(|o| o.host == "a.test"),
                "{uri}: {r:?}"
            );
        }
    }

    #[test]
    fn login_url_encodes_the_return_url() {
        let f = ForwardAuth::new(
            AccessRules::default(),
            &["https://auth.example.test".to_owned()],
            ReturnTo::default(),
        );
        let url = Url::parse("https://app.example.test/a b?x=1&y=2#f").unwrap();
        assert_eq!(
            f.login_url(&url),
            "https://auth.example.test/login?rd=https%3A%2F%2Fapp.example.test%2Fa%2520b%3Fx%3D1%26y%3D2%23f"
        );
        let f = ForwardAuth::new(AccessRules::default(), &[], ReturnTo::default());
        assert!(f.login_url(&url).starts_with("/login?rd=https%3A"));
        assert_eq!(f.issuer(), "countersign");
    }
}
