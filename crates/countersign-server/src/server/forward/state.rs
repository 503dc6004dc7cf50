//! What forward authentication keeps between requests: the access rules (swapped on
//! SIGHUP), where the login page is, where browsers may be sent back to, and the signed
//! assertions handed to upstreams, cached per credential and audience.

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use axum::http::HeaderValue;
use countersign::auth::{Auth, Method, Principal};
use countersign::jwt::Claims;
use url::Url;

use crate::access::AccessRules;
use crate::redirect::ReturnTo;

/// An assertion's lifetime, seconds.
pub const ASSERTION_TTL_SECS: i64 = 60;
/// How long a cached assertion is handed out again, seconds (so at least
/// `ASSERTION_TTL_SECS - ASSERTION_REUSE_SECS` are left when the upstream gets it).
pub const ASSERTION_REUSE_SECS: i64 = 30;
/// Cached assertions kept at most per thread; past it, expired ones are dropped, then all.
const ASSERTION_CACHE_MAX: usize = 10_000;

/// What forward authentication needs besides the engine: the rules (swapped on SIGHUP),
/// where the login page is, where browsers may be sent back to, and the assertion cache.
pub struct ForwardAuth {
    pub(super) rules: ArcSwap<AccessRules>,
    return_to: ReturnTo,
    /// `https://auth.example.test/login`, or `/login` without a public URL.
    login: String,
    issuer: String,
    assertions: AssertionCache,
    /// Whether the answer to a peer that is not a trusted proxy was logged already.
    pub(super) warned_untrusted: AtomicBool,
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

/// Signed assertions, by credential and audience, kept per thread: a hit touches nothing
/// another core writes (no lock, no shared reference count), so answering the same session
/// from every worker at once does not bounce a cache line between cores. Each worker thread
/// signs its own copy once per [`ASSERTION_REUSE_SECS`]: a few signatures a minute.
struct AssertionCache {
    /// Which [`ForwardAuth`] the entries are for (tests and benches make several in one
    /// process, each with its own keys).
    instance: u64,
    hasher: RandomState,
}

impl Default for AssertionCache {
    fn default() -> Self {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        Self {
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            hasher: RandomState::new(),
        }
    }
}

thread_local! {
    /// This thread's assertions, by instance and cache key.
    static ASSERTIONS: RefCell<HashMap<(u64, u64), Cached>> = RefCell::new(HashMap::new());
}

struct Cached {
    token: HeaderValue,
    user_id: Option<countersign::user::UserId>,
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
    pub(super) fn assertion(
        &self,
        engine: &Auth,
        principal: &Principal,
        audience: &str,
    ) -> Option<HeaderValue> {
        let now = engine.now().0;
        let key = (
            self.assertions.instance,
            credential_key(&self.assertions.hasher, principal, audience),
        );
        let hit = ASSERTIONS.with_borrow(|entries| {
            entries
                .get(&key)
                .filter(|c| {
                    now < c.reuse_until
                        && now >= c.reuse_until - ASSERTION_REUSE_SECS
                        && c.user_id == principal.user_id
                        && c.username == principal.username
                        && c.role == principal.role
                        && c.audience == audience
                })
                .map(|c| c.token.clone())
        });
        if hit.is_some() {
            return hit;
        }
        let sub = principal
            .user_id
            .map_or_else(|| principal.username.clone(), |id| id.to_string());
        let iat = countersign::clock::UnixTime(now);
        let mut claims = Claims::new(iat.add_secs(ASSERTION_TTL_SECS));
        claims.sub = Some(sub);
        claims.username = Some(principal.username.clone());
        claims.role = Some(principal.role.clone());
        claims.iat = Some(iat);
        // The issuer the service announces (its public URL) when it runs; else ours.
        let issuer = engine.token_keys().issuer().map(str::to_owned);
        claims.iss = Some(issuer.unwrap_or_else(|| self.issuer.clone()));
        claims.aud = vec![audience.to_owned()];
        let token = match engine.sign_claims(&mut claims) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "forward auth: the assertion could not be signed");
                return None;
            }
        };
        let mut value = HeaderValue::from_str(&token).ok()?;
        value.set_sensitive(true);
        ASSERTIONS.with_borrow_mut(|entries| {
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
                    user_id: principal.user_id,
                    username: principal.username.clone(),
                    role: principal.role.clone(),
                    audience: audience.to_owned(),
                    reuse_until: now + ASSERTION_REUSE_SECS,
                    expires: now + ASSERTION_TTL_SECS,
                },
            );
        });
        Some(value)
    }
}

/// The cache key of a credential (the session, or the token) and an audience, hashed
/// where they are: nothing is copied on the hot path.
fn credential_key(hasher: &RandomState, principal: &Principal, audience: &str) -> u64 {
    match &principal.method {
        Method::Session { key, .. } => hasher.hash_one((0u8, key, audience)),
        Method::Bearer { jti: Some(jti), .. } => hasher.hash_one((1u8, jti.as_str(), audience)),
        Method::Bearer { jti: None, exp } => {
            hasher.hash_one((2u8, principal.username.as_str(), exp.0, audience))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
