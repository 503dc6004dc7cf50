//! The request a proxy asks about, read from the headers each proxy sends: nginx's
//! `X-Original-URL` and `X-Original-Method`, or Traefik's and Caddy's `X-Forwarded-Method`,
//! `-Proto`, `-Host` and `-Uri`. Each header must come once, as visible ASCII.

use axum::http::{HeaderMap, header};
use url::Url;

use crate::access;

/// The longest original URL considered.
const MAX_ORIGINAL_URL: usize = 8 * 1024;

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

    /// Whether a browser is navigating: GET or HEAD, with `Accept` naming `text/html`.
    pub(super) fn is_navigation(&self, headers: &HeaderMap) -> bool {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use axum::http::HeaderValue;

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
}
