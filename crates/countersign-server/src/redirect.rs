//! Where a browser may be sent back to after logging in or out (`/login?rd=URL`,
//! `/logout?rd=URL`): never an open redirect.
//!
//! A return URL is accepted when it is
//! - a path on this server (`/account/sessions`): starts with one `/`, not `//` or `/\`
//!   (which browsers read as another host);
//! - or an absolute `http` or `https` URL without user info whose host is allowed: the host
//!   of a `--public-url`, or a host `--forward-auth-domains` names (`example.test` exactly,
//!   `*.example.test` any name below it). Ports are not compared.
//!
//! Anything else gives `None`, and the caller sends the browser to `/`.
//!
//! The URL is parsed exactly as a browser parses it (the WHATWG URL standard, through the
//! `url` crate), and what is sent back in `Location` is that parse's serialization, so the
//! host that was checked is the host the browser goes to: backslashes, tabs and newlines,
//! `%2f`, user info (`https://good@evil`), odd schemes (`javascript:`) and IDN tricks
//! cannot make the two differ. Control characters and spaces are refused outright.

use url::Url;

/// The longest return URL considered.
pub const MAX_RETURN_URL: usize = 4096;

/// A host name allowed as a redirect target: exact, or every name below a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainPattern {
    /// Lowercase; for a wildcard the suffix with its leading dot (`.example.test`).
    name: String,
    wildcard: bool,
}

impl DomainPattern {
    /// `example.test` or `*.example.test` (no scheme, no port).
    ///
    /// # Errors
    /// A sentence saying what is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let lower = text.trim().to_ascii_lowercase();
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        let ok = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
            });
        if !ok {
            return Err(format!(
                "expected a host name such as example.test or a wildcard such as \
                 *.example.test (no scheme, no port), got {text:?}"
            ));
        }
        Ok(Self {
            name: if wildcard {
                format!(".{name}")
            } else {
                name.to_owned()
            },
            wildcard,
        })
    }

    /// Whether `host` (lowercase, without a trailing dot) is allowed by this pattern.
    pub fn matches(&self, host: &str) -> bool {
        if self.wildcard {
            host.len() > self.name.len() && host.ends_with(&self.name)
        } else {
            host == self.name
        }
    }
}

impl std::fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.wildcard {
            write!(f, "*{}", self.name)
        } else {
            f.write_str(&self.name)
        }
    }
}

/// The hosts a browser may be sent back to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReturnTo {
    hosts: Vec<DomainPattern>,
}

impl ReturnTo {
    /// The hosts of `public_urls` (origins such as `https://auth.example.test`) and
    /// `domains`.
    pub fn new(public_urls: &[String], domains: &[DomainPattern]) -> Self {
        let mut hosts: Vec<DomainPattern> = public_urls
            .iter()
            .filter_map(|u| Url::parse(u).ok())
            .filter_map(|u| u.host_str().map(host_key))
            .map(|name| DomainPattern {
                name,
                wildcard: false,
            })
            .collect();
        hosts.extend(domains.iter().cloned());
        Self { hosts }
    }

    /// Whether an absolute URL's host is allowed.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host_key(host);
        self.hosts.iter().any(|p| p.matches(&host))
    }

    /// `rd` if it is a safe place to send the browser, as the URL to put in `Location`.
    pub fn check(&self, rd: &str) -> Option<String> {
        if rd.is_empty()
            || rd.len() > MAX_RETURN_URL
            || rd.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return None;
        }
        // A path on this server: resolved against a base no URL can name, it must stay
        // there, and it must not start like a host (`//`, `/\`, which browsers treat alike).
        if rd.starts_with('/') {
            if rd.starts_with("//") || rd.starts_with("/\\") {
                return None;
            }
            let base = Url::parse("https://return-to.invalid/").ok()?;
            let url = base.join(rd).ok()?;
            if url.host_str() != Some("return-to.invalid") || url.port().is_some() {
                return None;
            }
            let mut path = url.path().to_owned();
            if let Some(q) = url.query() {
                path.push('?');
                path.push_str(q);
            }
            if let Some(f) = url.fragment() {
                path.push('#');
                path.push_str(f);
            }
            // Serialized, a path never starts with `//` (the parser keeps `/.//` for that),
            // but say it once more where it matters.
            return (path.starts_with('/') && !path.starts_with("//")).then_some(path);
        }
        let url = Url::parse(rd).ok()?;
        let allowed = matches!(url.scheme(), "http" | "https")
            && url.username().is_empty()
            && url.password().is_none()
            && url.host_str().is_some_and(|h| self.allows_host(h));
        allowed.then(|| url.to_string())
    }
}

/// A host as compared: lowercase, without a trailing dot.
fn host_key(host: &str) -> String {
    let lower = host.to_ascii_lowercase();
    lower.strip_suffix('.').unwrap_or(&lower).to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn allow() -> ReturnTo {
        ReturnTo::new(
            &[
                "https://auth.example.test".to_owned(),
                "http://127.0.0.1:8080".to_owned(),
            ],
            &[
                DomainPattern::parse("app.example.test").unwrap(),
                DomainPattern::parse("*.apps.example.test").unwrap(),
            ],
        )
    }

    #[test]
    fn allowed_targets_come_back_normalized() {
        let r = allow();
        for (rd, expected) in [
            ("/", "/"),
            ("/account/sessions", "/account/sessions"),
            ("/a?b=c#d", "/a?b=c#d"),
            ("/a/../b", "/b"),
            ("https://auth.example.test/x", "https://auth.example.test/x"),
            (
                "http://auth.example.test:9000/x",
                "http://auth.example.test:9000/x",
            ),
            ("https://app.example.test", "https://app.example.test/"),
            (
                "HTTPS://APP.Example.Test/Path",
                "https://app.example.test/Path",
            ),
            ("https://app.example.test./", "https://app.example.test./"),
            (
                "https://a.apps.example.test/q?x=1&y=2",
                "https://a.apps.example.test/q?x=1&y=2",
            ),
            (
                "https://a.b.apps.example.test/",
                "https://a.b.apps.example.test/",
            ),
            ("http://127.0.0.1:5000/hello", "http://127.0.0.1:5000/hello"),
            (
                "https://app.example.test/caf\u{e9}",
                "https://app.example.test/caf%C3%A9",
            ),
            // The browser's reading of the host is what is checked and sent.
            ("https://0x7f.0.0.1:8080/", "https://127.0.0.1:8080/"),
        ] {
            assert_eq!(r.check(rd).as_deref(), Some(expected), "{rd}");
        }
    }

    #[test]
    fn tricks_fall_back() {
        let r = allow();
        let long = format!("/{}", "a".repeat(MAX_RETURN_URL));
        let tricks = [
            "",
            "//evil.test",
            "//evil.test/path",
            "///evil.test",
            "/\\evil.test",
            "\\\\evil.test",
            "\\/evil.test",
            "https:evil.test",
            "https:/evil.test",
            "https:\\\\evil.test",
            "https://evil.test",
            "https://evil.test/https://app.example.test",
            "https://app.example.test.evil.test/",
            "https://evil-app.example.test/",
            "https://apps.example.test/",
            "https://example.test/",
            "https://app.example.test@evil.test/",
            "https://evil.test@app.example.test/",
            "https://user:pass@app.example.test/",
            "https://evil.test\\@app.example.test/",
            "https://evil.test\\.app.example.test/",
            "https://evil.test#@app.example.test/",
            "https://evil.test?@app.example.test/",
            "https://evil.test%2f@app.example.test/",
            "https://app.example.test%2f@evil.test/",
            "https://app.example.test%40evil.test/",
            "https://evil.test%2eapp.example.test/",
            "javascript:alert(1)",
            "JavaScript:alert(1)//app.example.test",
            "java\tscript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox(1)",
            "ftp://app.example.test/",
            "file:///etc/passwd",
            " https://app.example.test/",
            "https://app.example.test/\n",
            "/\t/evil.test",
            "/\n/evil.test",
            "/%0a/evil.test",
            "%2f%2fevil.test",
            "%2F%2Fevil.test",
            "evil.test",
            "app.example.test",
            ".evil.test",
            "https://ⓔⓥⓘⓛ.test/",
            "https://xn--app-example-test.evil/",
            "https://[::1]/",
            "https://127.0.0.2/",
            &long,
        ];
        for rd in tricks {
            let got = r.check(rd);
            assert!(
                got.is_none()
                    || got
                        .as_deref()
                        .is_some_and(|g| g.starts_with('/') && !g.starts_with("//")),
                "{rd:?} gave {got:?}"
            );
            if let Some(g) = got {
                // A local path: it must resolve to this server.
                let base = Url::parse("https://here.invalid/").unwrap();
                assert_eq!(
                    base.join(&g).unwrap().host_str(),
                    Some("here.invalid"),
                    "{rd:?}"
                );
            }
        }
        // Encoded slashes stay in the path of a local URL: they are not a host.
        assert_eq!(
            r.check("/%2f%2fevil.test").as_deref(),
            Some("/%2f%2fevil.test")
        );
    }

    #[test]
    fn domains_parse() {
        assert_eq!(
            DomainPattern::parse("Example.Test").unwrap().to_string(),
            "example.test"
        );
        assert_eq!(
            DomainPattern::parse("*.example.test").unwrap().to_string(),
            "*.example.test"
        );
        for bad in [
            "",
            "*",
            "*.",
            "https://example.test",
            "example.test:443",
            "a..b",
            "a b",
            "*.*.x",
            "a.*.x",
        ] {
            assert!(DomainPattern::parse(bad).is_err(), "{bad}");
        }
        let w = DomainPattern::parse("*.example.test").unwrap();
        assert!(w.matches("a.example.test"));
        assert!(!w.matches("example.test"));
        assert!(!w.matches("aexample.test"));
    }

    #[test]
    fn nothing_allowed_without_configuration_but_local_paths() {
        let r = ReturnTo::default();
        assert_eq!(r.check("/x").as_deref(), Some("/x"));
        assert_eq!(r.check("http://localhost/"), None);
    }
}
