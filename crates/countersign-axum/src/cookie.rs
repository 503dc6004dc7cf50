//! Cookie names, `Set-Cookie` values and reading the `Cookie` header.

use http::{HeaderMap, HeaderValue, header};

/// How the session and CSRF cookies are named and flagged.
///
/// With `secure: true` (the default) the cookies carry `Secure` and the `__Host-` prefix,
/// which a browser only accepts over HTTPS, from the host itself (no `Domain`) and with
/// `Path=/`, so a sibling subdomain cannot plant one. `secure: false` is the server's
/// `--insecure-cookies`, for plain-HTTP development only: it drops both.
///
/// # Examples
/// ```
/// use countersign_axum::CookieConfig;
///
/// let prod = CookieConfig { secure: true };
/// assert_eq!(prod.session_name(), "__Host-countersign");
/// assert_eq!(
///     prod.session_cookie("v", 60).to_str().unwrap(),
///     "__Host-countersign=v; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax",
/// );
/// let dev = CookieConfig { secure: false };
/// assert_eq!(dev.csrf_name(), "countersign-csrf");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieConfig {
    /// Whether cookies are `Secure` with the `__Host-` prefix (false only for plain-HTTP
    /// development).
    pub secure: bool,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self { secure: true }
    }
}

impl CookieConfig {
    /// The session cookie's name: `__Host-countersign`, or `countersign` when insecure.
    pub fn session_name(&self) -> &'static str {
        if self.secure {
            "__Host-countersign"
        } else {
            "countersign"
        }
    }

    /// The pre-session CSRF cookie's name: `__Host-countersign-csrf`, or
    /// `countersign-csrf` when insecure.
    pub fn csrf_name(&self) -> &'static str {
        if self.secure {
            "__Host-countersign-csrf"
        } else {
            "countersign-csrf"
        }
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
        set_cookie(self, self.session_name(), value, Some(max_age_secs.max(0)))
    }

    /// `Set-Cookie` that deletes the session cookie (empty value, `Max-Age=0`).
    pub fn clear_session_cookie(&self) -> HeaderValue {
        set_cookie(self, self.session_name(), "", Some(0))
    }

    /// `Set-Cookie` for the pre-session CSRF cookie (the signed value from
    /// [`Auth::pre_session_csrf`](countersign::auth::Auth::pre_session_csrf)): a browser
    /// session cookie (no `Max-Age`), `HttpOnly`, since the form carries its own copy.
    pub fn csrf_cookie(&self, value: &str) -> HeaderValue {
        set_cookie(self, self.csrf_name(), value, None)
    }

    /// `Set-Cookie` that deletes the pre-session CSRF cookie (once signed in, the
    /// session's own token takes over).
    pub fn clear_csrf_cookie(&self) -> HeaderValue {
        set_cookie(self, self.csrf_name(), "", Some(0))
    }
}

/// Whether `b` may appear in a cookie value (RFC 6265 §4.1.1 `cookie-octet`).
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

fn set_cookie(config: &CookieConfig, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut out = String::with_capacity(name.len() + value.len() + 72);
    out.push_str(name);
    out.push('=');
    out.extend(
        value
            .bytes()
            .filter(|&b| is_cookie_octet(b))
            .map(char::from),
    );
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
    // Invariant: names are our constants and the value was filtered to cookie-octets, so
    // every byte is visible ASCII or a space, which a header value accepts.
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
