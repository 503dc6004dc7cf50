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

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use countersign::auth::Principal;
use countersign_axum::AuthRejection;
use serde_json::json;

use super::pages;
use super::state::App;
use crate::access::{AccessRules, Asker, Policy, Rule, Verdict};

mod original;
mod state;
pub use original::{Original, OriginalError};
pub use state::{ASSERTION_REUSE_SECS, ASSERTION_TTL_SECS, ForwardAuth};

/// `Remote-User`: the username.
pub const REMOTE_USER: HeaderName = HeaderName::from_static("remote-user");
/// `Remote-Groups`: the role (comma-separated, should a user ever have several).
pub const REMOTE_GROUPS: HeaderName = HeaderName::from_static("remote-groups");
/// `Countersign-Jwt-Assertion`: the signed identity for the upstream.
pub const ASSERTION: HeaderName = HeaderName::from_static("countersign-jwt-assertion");

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

/// `GET /auth/request`: nginx `auth_request`.
pub async fn auth_request(State(app): State<App>, request: Request) -> Response {
    decide(&app, Endpoint::Request, request).await
}

/// `GET /auth/forward`: Traefik `ForwardAuth`, Caddy `forward_auth`.
pub async fn auth_forward(State(app): State<App>, request: Request) -> Response {
    decide(&app, Endpoint::Forward, request).await
}

async fn decide(app: &App, endpoint: Endpoint, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
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

    let who = match countersign_axum::authenticate(&app.auth, &parts.headers).await {
        Ok(p) => Ok(p),
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
    let asker = who.as_ref().ok().map(|p| Asker {
        role: &p.role,
        mfa: p.is_mfa(),
    });
    let mut verdict = AccessRules::verdict(policy, asker);
    // `--require-mfa`: a user of such a role without a second factor passes only `public`.
    if verdict == Verdict::Allow
        && *policy != Policy::Public
        && asker.is_some_and(|a| super::require_mfa::must_enrol(app, a.role, a.mfa))
    {
        verdict = Verdict::SecondFactor;
    }
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
            if navigation && !forward.return_to().allows_host(&original.host) {
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
            forbidden(app, policy, verdict, who.is_ok(), &original, &parts)
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
        .assertion(app.engine(), principal, &original.origin())
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
    verdict: Verdict,
    known: bool,
    original: &Original,
    parts: &Parts,
) -> Response {
    let (error, message) = match policy {
        Policy::Role(role) if known && verdict != Verdict::SecondFactor => (
            "insufficient_scope",
            format!("This page requires the {role} role."),
        ),
        _ if verdict == Verdict::SecondFactor => (
            "mfa_required",
            "This page requires signing in with a second factor: set one up under \
             Account security (/account/security), then sign in again."
                .to_owned(),
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
    let challenge = match error {
        "insufficient_scope" => Some(r#"Bearer realm="countersign", error="insufficient_scope""#),
        "mfa_required" => Some(
            r#"Bearer realm="countersign", error="insufficient_user_authentication", error_description="A second factor is required""#,
        ),
        _ => None,
    };
    if let Some(challenge) = challenge {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
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

/// Count an answer in `countersign_forward_auth_total`. The allowed answers, nearly every
/// request, count through handles made on first use (no registry lookup per request).
fn count(endpoint: Endpoint, outcome: &'static str) {
    static ALLOWED: [OnceLock<metrics::Counter>; 2] = [OnceLock::new(), OnceLock::new()];
    if outcome == "allow" {
        let cell = &ALLOWED[endpoint as usize];
        cell.get_or_init(|| {
            metrics::counter!(
                "countersign_forward_auth_total",
                "endpoint" => endpoint.label(),
                "outcome" => "allow"
            )
        })
        .increment(1);
        return;
    }
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
