//! Cookie names, `Set-Cookie` values and reading the `Cookie` header.

use http::{HeaderMap, HeaderValue, header};

/// How the session and CSRF cookies are named and flagged.
///
/// [`CookieConfig::secure`] (the default) gives the cookies `Secure` and the `__Host-`
/// prefix, which a browser only accepts over HTTPS, from the host itself (no `Domain`) and
/// with `Path=/`, so a sibling subdomain cannot plant one. [`CookieConfig::insecure`] is
/// the server's `--insecure-cookies`, for plain-HTTP development only: it drops both.
///
/// The base name is `countersign`; [`CookieConfig::with_name`] changes it (two apps on one
/// host need two names). The session cookie is called `__Host-<name>` and the pre-session
/// CSRF cookie `__Host-<name>-csrf` (without the prefix when insecure).
///
/// [`CookieConfig::with_domain`] shares the session cookie with every host below a domain
/// (single sign-on across subdomains, for forward authentication): it gets `Domain=` and,
/// since `__Host-` forbids a domain, the `__Secure-` prefix. The CSRF cookie stays
/// `__Host-`: only this server's own forms use it.
///
/// # Examples
/// ```
/// use countersign_axum::CookieConfig;
///
/// let prod = CookieConfig::secure();
/// assert_eq!(prod, CookieConfig::default());
/// assert_eq!(prod.session_name(), "__Host-countersign");
/// assert_eq!(
///     prod.session_cookie("v", 60).to_str().unwrap(),
///     "__Host-countersign=v; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax",
/// );
/// let dev = CookieConfig::insecure();
/// assert_eq!(dev.csrf_name(), "countersign-csrf");
///
/// let mine = CookieConfig::secure().with_name("buggy-race").unwrap();
/// assert_eq!(mine.session_name(), "__Host-buggy-race");
/// assert_eq!(mine.csrf_name(), "__Host-buggy-race-csrf");
/// assert!(CookieConfig::secure().with_name("a; Domain=evil").is_err());
///
/// let sso = CookieConfig::secure().with_domain("Example.Test").unwrap();
/// assert_eq!(sso.session_name(), "__Secure-countersign");
/// assert_eq!(sso.csrf_name(), "__Host-countersign-csrf");
/// assert_eq!(
///     sso.session_cookie("v", 60).to_str().unwrap(),
///     "__Secure-countersign=v; Domain=example.test; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax",
/// );
/// assert!(CookieConfig::secure().with_domain("evil; Path=/x").is_err());
/// ```
///
/// Between a password and a second factor the browser holds the engine's sealed challenge
/// ([`Auth::mfa_challenge`](countersign::auth::Auth::mfa_challenge)) in a third cookie,
/// `__Host-<name>-mfa` (host-only like the CSRF cookie, `HttpOnly`, five minutes), which
/// grants nothing by itself:
/// ```
/// use countersign_axum::CookieConfig;
///
/// let prod = CookieConfig::secure();
/// assert_eq!(prod.challenge_name(), "__Host-countersign-mfa");
/// assert_eq!(
///     prod.challenge_cookie("v", 300).to_str().unwrap(),
///     "__Host-countersign-mfa=v; Path=/; Max-Age=300; HttpOnly; Secure; SameSite=Lax",
/// );
/// assert_eq!(CookieConfig::insecure().challenge_name(), "countersign-mfa");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieConfig {
    secure: bool,
    session_name: Box<str>,
    csrf_name: Box<str>,
    challenge_name: Box<str>,
    domain: Option<Box<str>>,
}

/// The cookies' base name unless [`CookieConfig::with_name`] gives another.
pub const DEFAULT_COOKIE_NAME: &str = "countersign";

/// The longest base name [`CookieConfig::with_name`] accepts, in bytes.
pub const MAX_COOKIE_NAME: usize = 64;

/// A cookie name [`CookieConfig::with_name`] refuses: empty, longer than
/// [`MAX_COOKIE_NAME`], with a character a cookie name may not hold (RFC 6265 §4.1.1: a
/// `token`, so no space, `;`, `=`, quote or control character), or starting with the
/// `__Host-` / `__Secure-` prefix (the prefix is added when the cookies are secure).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} cannot name a cookie: use 1 to 64 letters, digits, `-`, `_` or `.`, without a `__Host-` or `__Secure-` prefix"
)]
pub struct BadCookieName(pub String);

/// A cookie domain [`CookieConfig::with_domain`] refuses: not a host name (letters,
/// digits, `-`, `_` in dot-separated labels), or an IP address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} cannot be a cookie domain: use a host name such as example.test")]
pub struct BadCookieDomain(pub String);

impl Default for CookieConfig {
    fn default() -> Self {
        Self::secure()
    }
}

impl CookieConfig {
    /// `Secure` cookies with the `__Host-` prefix: for any site served over HTTPS (the
    /// default).
    pub fn secure() -> Self {
        Self::named(true, DEFAULT_COOKIE_NAME)
    }

    /// Cookies without `Secure` and without the prefix, for plain-HTTP development only: a
    /// network attacker can read and set them.
    pub fn insecure() -> Self {
        Self::named(false, DEFAULT_COOKIE_NAME)
    }

    /// The same flags with another base name.
    ///
    /// # Errors
    /// [`BadCookieName`] when `name` cannot name a cookie.
    pub fn with_name(self, name: &str) -> Result<Self, BadCookieName> {
        let lower = name.to_ascii_lowercase();
        let ok = !name.is_empty()
            && name.len() <= MAX_COOKIE_NAME
            && name.bytes().all(is_token_byte)
            && !lower.starts_with("__host-")
            && !lower.starts_with("__secure-");
        if ok {
            Ok(Self::named(self.secure, name).domain(self.domain))
        } else {
            Err(BadCookieName(name.to_owned()))
        }
    }

    /// The same cookies, the session cookie shared with every host below `domain`
    /// (`Domain=domain`, and `__Secure-` in place of `__Host-` when secure). A leading dot
    /// is dropped, as browsers do.
    ///
    /// # Errors
    /// [`BadCookieDomain`] when `domain` is not a host name.
    pub fn with_domain(self, domain: &str) -> Result<Self, BadCookieDomain> {
        let lower = domain.trim().trim_start_matches('.').to_ascii_lowercase();
        let ok = !lower.is_empty()
            && lower.len() <= 253
            && lower.parse::<std::net::IpAddr>().is_err()
            && lower.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
            });
        if !ok {
            return Err(BadCookieDomain(domain.to_owned()));
        }
        Ok(self.domain(Some(lower.into())))
    }

    /// The session cookie's name for `domain`: `__Secure-` instead of `__Host-`.
    fn domain(mut self, domain: Option<Box<str>>) -> Self {
        if domain.is_some()
            && let Some(base) = self.session_name.strip_prefix("__Host-")
        {
            self.session_name = format!("__Secure-{base}").into();
        }
        self.domain = domain;
        self
    }

    fn named(secure: bool, name: &str) -> Self {
        let prefix = if secure { "__Host-" } else { "" };
        Self {
            secure,
            session_name: format!("{prefix}{name}").into(),
            csrf_name: format!("{prefix}{name}-csrf").into(),
            challenge_name: format!("{prefix}{name}-mfa").into(),
            domain: None,
        }
    }

    /// The session cookie's `Domain`, when it is shared across subdomains.
    pub fn cookie_domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// Whether the cookies are `Secure` with the `__Host-` prefix.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The session cookie's name: `__Host-countersign`, or `countersign` when insecure.
    pub fn session_name(&self) -> &str {
        &self.session_name
    }

    /// The pre-session CSRF cookie's name: `__Host-countersign-csrf`, or
    /// `countersign-csrf` when insecure.
    pub fn csrf_name(&self) -> &str {
        &self.csrf_name
    }

    /// The second-factor challenge cookie's name: `__Host-countersign-mfa`, or
    /// `countersign-mfa` when insecure.
    pub fn challenge_name(&self) -> &str {
        &self.challenge_name
    }

    /// The scheme of this server's own origin, as the CSRF guard compares it with
    /// `Origin`: `https` when secure, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.secure { "https" } else { "http" }
    }

    /// `Set-Cookie` for a session: `Path=/; Max-Age=…; HttpOnly; Secure; SameSite=Lax`
    /// (`Secure` only when secure). `value` is the engine's cookie value
    /// ([`Auth::start_session`](countersign::auth::Auth::start_session)); characters a
    /// cookie value may not hold are dropped, and a negative `max_age_secs` counts as 0.
    pub fn session_cookie(&self, value: &str, max_age_secs: i64) -> HeaderValue {
        set_cookie(
            self,
            self.session_name(),
            value,
            Some(max_age_secs.max(0)),
            self.cookie_domain(),
        )
    }

    /// `Set-Cookie` that deletes the session cookie (empty value, `Max-Age=0`).
    pub fn clear_session_cookie(&self) -> HeaderValue {
        set_cookie(self, self.session_name(), "", Some(0), self.cookie_domain())
    }

    /// `Set-Cookie` for the pre-session CSRF cookie (the signed value from
    /// [`Auth::pre_session_csrf`](countersign::auth::Auth::pre_session_csrf)): a browser
    /// session cookie (no `Max-Age`), `HttpOnly`, since the form carries its own copy.
    pub fn csrf_cookie(&self, value: &str) -> HeaderValue {
        set_cookie(self, self.csrf_name(), value, None, None)
    }

    /// `Set-Cookie` that deletes the pre-session CSRF cookie (once signed in, the
    /// session's own token takes over).
    pub fn clear_csrf_cookie(&self) -> HeaderValue {
        set_cookie(self, self.csrf_name(), "", Some(0), None)
    }

    /// `Set-Cookie` for the challenge between a password and a second factor (the sealed
    /// value of [`Auth::mfa_challenge`](countersign::auth::Auth::mfa_challenge)): host-only,
    /// `HttpOnly`, `Max-Age` the challenge's lifetime. It grants nothing by itself: only the
    /// second-factor form reads it.
    pub fn challenge_cookie(&self, value: &str, max_age_secs: i64) -> HeaderValue {
        set_cookie(
            self,
            self.challenge_name(),
            value,
            Some(max_age_secs.max(0)),
            None,
        )
    }

    /// `Set-Cookie` that deletes the challenge cookie (the login finished or must restart).
    pub fn clear_challenge_cookie(&self) -> HeaderValue {
        set_cookie(self, self.challenge_name(), "", Some(0), None)
    }
}

/// Whether `b` may appear in a cookie name (an RFC 7230 `tchar`).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `b` may appear in a cookie value (RFC 6265 §4.1.1 `cookie-octet`).
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

fn set_cookie(
    config: &CookieConfig,
    name: &str,
    value: &str,
    max_age: Option<i64>,
    domain: Option<&str>,
) -> HeaderValue {
    let mut out = String::with_capacity(name.len() + value.len() + 72);
    out.push_str(name);
    out.push('=');
    out.extend(
        value
            .bytes()
            .filter(|&b| is_cookie_octet(b))
            .map(char::from),
    );
    if let Some(domain) = domain {
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    out.push_str("; Path=/");
    if let Some(secs) = max_age {
        out.push_str("; Max-Age=");
        out.push_str(&secs.to_string());
    }
    out.push_str("; HttpOnly");
    if config.secure {
        out.push_str("; Secure");
    }
    out.push_str("; SameSite=Lax");
    // Invariant: names are tokens (checked by `with_name`), a domain is a host name
    // (checked by `with_domain`) and the value was filtered to
    // cookie-octets, so every byte is visible ASCII or a space, which a header value accepts.
    let mut value = HeaderValue::try_from(out).expect("cookie octets are valid header bytes");
    // A session id or CSRF token: `Debug` of the value (and of anything holding it, such
    // as `SignedIn`) prints `Sensitive`, never the cookie.
    value.set_sensitive(true);
    value
}

/// The value of the first cookie called `name` in the request's `Cookie` headers.
///
/// Headers that are not UTF-8 are skipped; a value in double quotes is unquoted.
///
/// # Examples
/// ```
/// use http::{HeaderMap, HeaderValue, header::COOKIE};
/// use countersign_axum::read_cookie;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(COOKIE, HeaderValue::from_static("a=1; countersign=abc.def"));
/// assert_eq!(read_cookie(&headers, "countersign"), Some("abc.def"));
/// assert_eq!(read_cookie(&headers, "b"), None);
/// ```
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| {
                let v = v.trim();
                v.strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v)
            })
        })
}

/// Whether a response already sets a cookie called `name`.
pub(crate) fn sets_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers.get_all(header::SET_COOKIE).iter().any(|v| {
        v.as_bytes()
            .strip_prefix(name.as_bytes())
            .is_some_and(|rest| rest.first() == Some(&b'='))
    })
}
