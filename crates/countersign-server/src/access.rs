//! Access rules for forward authentication (`docs/forward-auth.md`): which requests behind
//! the proxy need what.
//!
//! The rules are `[[access]]` tables of `countersign.toml`, tried in order; the first whose
//! `host`, `path` and `methods` all match the original request decides, and when none does,
//! `default_policy` (default `authenticated`) decides:
//!
//! ```toml
//! default_policy = "authenticated"
//!
//! [[access]]
//! name = "admin area"           # optional, shown by `countersign access check` and logs
//! host = "app.example.test"     # exact, or "*.example.test"; ":8443" for one port only
//! path = "/admin"               # a prefix of whole segments; `*` matches within a segment
//! methods = ["POST", "DELETE"]  # optional: any method when absent
//! policy = "role:admin"         # public | authenticated | mfa | role:NAME | deny
//! ```
//!
//! Matching, and why:
//! - `host` is compared with the original URL's host name, case-insensitively and without
//!   a trailing dot (`app.example.test.` is the same host to DNS, so it must not escape a
//!   rule). Without a port it matches every port (`127.0.0.1` matches `127.0.0.1:8443`);
//!   with one it matches that port only, the scheme's default port counting for a URL that
//!   names none. `*.example.test` matches every name below `example.test` (not
//!   `example.test` itself).
//! - `path` is compared with the original path after percent-decoding, merging repeated
//!   slashes and removing `.` and `..` segments: the path the application routes, so
//!   `/%61dmin/`, `//admin` and `/public/../admin` are all `/admin/`. A pattern matches a
//!   path that equals it or continues it at a segment boundary: `/admin` matches `/admin`,
//!   `/admin/` and `/admin/users` but not `/administrator`; `/admin/` matches `/admin/` and
//!   below but not `/admin`. `*` matches any characters other than `/` (`/api/*/settings`
//!   matches `/api/v1/settings` and `/api/v1/settings/email`).
//! - `methods` are compared with the original method, upper case.
//!
//! Policies: `public` lets everyone through (a logged-in user's name is still passed on);
//! `authenticated` needs a logged-in user (else 401); `mfa` a user who logged in with a
//! second factor (401 for nobody; 403 `mfa_required` for a password-only login, whose
//! page links to `/account/security`); `role:NAME` a user with that role
//! (401 for nobody, 403 for another role); `deny` refuses everyone (403, even anonymous:
//! logging in would not help).
//!
//! Rules are checked once, at startup and at each reload: a bad rule is an error naming its
//! number (and `name`), never a rule that silently matches nothing.

use std::fmt;

use serde::Deserialize;

/// What a rule (or the default) requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Everyone.
    Public,
    /// Any logged-in user.
    Authenticated,
    /// A user logged in with a second factor (`amr` holds `mfa`).
    Mfa,
    /// A logged-in user with this role.
    Role(String),
    /// No one.
    Deny,
}

impl Policy {
    /// Parse `public`, `authenticated`, `mfa`, `role:NAME` or `deny`.
    ///
    /// # Errors
    /// A sentence saying what is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "public" => Ok(Self::Public),
            "authenticated" => Ok(Self::Authenticated),
            "mfa" => Ok(Self::Mfa),
            "deny" => Ok(Self::Deny),
            other => match other.strip_prefix("role:") {
                Some(role) => countersign::user::Role::parse(role)
                    .map(|r| Self::Role(r.as_str().to_owned()))
                    .map_err(|_| {
                        format!(
                            "{role:?} is not a role name (1 to 32 of a-z, 0-9, `_`, `-`, \
                             starting with a letter)"
                        )
                    }),
                None => Err(format!(
                    "expected public, authenticated, mfa, role:NAME or deny, got {other:?}"
                )),
            },
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Public => f.write_str("public"),
            Self::Authenticated => f.write_str("authenticated"),
            Self::Mfa => f.write_str("mfa"),
            Self::Role(role) => write!(f, "role:{role}"),
            Self::Deny => f.write_str("deny"),
        }
    }
}

/// An `[[access]]` table as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// A name for messages.
    pub name: Option<String>,
    /// `app.example.test`, `*.example.test`, optionally with `:PORT`.
    pub host: Option<String>,
    /// A path prefix, `*` allowed within segments.
    pub path: Option<String>,
    /// Methods the rule applies to.
    pub methods: Option<Vec<String>>,
    /// `public`, `authenticated`, `mfa`, `role:NAME` or `deny`.
    pub policy: Option<String>,
}

/// A host pattern: a name or `*.suffix`, and maybe a port.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HostPattern {
    /// The name, lowercased; for a wildcard, the suffix with its leading dot.
    name: String,
    wildcard: bool,
    port: Option<u16>,
}

impl HostPattern {
    fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "host {text:?} {why}: expected a host name such as app.example.test, a \
                 wildcard such as *.example.test, an IP address, each optionally with :PORT"
            )
        };
        let text_lower = text.trim().to_ascii_lowercase();
        let (name, port) = split_port(&text_lower).ok_or_else(|| bad("has a bad port"))?;
        let (wildcard, name) = match name.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, name),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() {
            return Err(bad("is empty"));
        }
        let ipv6 = name.starts_with('[') && name.ends_with(']');
        let ok = ipv6
            && name[1..name.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_ok()
            || !ipv6
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
                });
        if !ok || name.len() > 253 {
            return Err(bad(if name.contains('*') {
                "has a `*` other than a leading `*.`"
            } else {
                "is not a host name"
            }));
        }
        if wildcard && ipv6 {
            return Err(bad("is a wildcard of an IP address"));
        }
        Ok(Self {
            name: if wildcard {
                format!(".{name}")
            } else {
                name.to_owned()
            },
            wildcard,
            port,
        })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        if self.wildcard {
            host.len() > self.name.len() && host.ends_with(&self.name)
        } else {
            host == self.name
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            write!(f, "*{}", self.name)?;
        } else {
            f.write_str(&self.name)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// `name[:port]` or `[v6]:port`: the name and the port, `None` for a bad port.
fn split_port(text: &str) -> Option<(&str, Option<u16>)> {
    let (name, port) = if text.starts_with('[') {
        match text.find(']') {
            Some(end) if end + 1 == text.len() => (text, None),
            Some(end) => (&text[..=end], Some(text[end + 1..].strip_prefix(':')?)),
            None => return None,
        }
    } else {
        match text.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (text, None),
        }
    };
    match port {
        None => Some((name, None)),
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some((name, Some(p.parse::<u16>().ok().filter(|p| *p != 0)?)))
        }
        Some(_) => None,
    }
}

/// A path pattern: a prefix of whole segments, `*` matching within a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PathPattern(String);

impl PathPattern {
    fn parse(text: &str) -> Result<Self, String> {
        if !text.starts_with('/') {
            return Err(format!("path {text:?} must start with `/`"));
        }
        if text.contains("**") {
            return Err(format!(
                "path {text:?}: `**` is not supported (`*` matches within one segment, and \
                 every pattern is already a prefix)"
            ));
        }
        if text
            .bytes()
            .any(|b| b.is_ascii_control() || matches!(b, b' ' | b'?' | b'#' | b'%'))
        {
            return Err(format!(
                "path {text:?} holds a space, `?`, `#`, `%` or a control character: write the \
                 decoded path, without a query"
            ));
        }
        let normal = normalize_path(text);
        // Normalizing keeps a trailing slash, so `/admin/` stays a pattern for `/admin/…`.
        if normal != text {
            return Err(format!(
                "path {text:?} is not in normal form (repeated `/`, `.` or `..` segments): \
                 write {normal:?}"
            ));
        }
        Ok(Self(text.to_owned()))
    }

    fn matches(&self, path: &str) -> bool {
        glob_prefix(&self.0, path)
    }
}

/// Whether `pattern` matches `path` or a prefix of it that ends at a segment boundary:
/// segment by segment, each pattern segment matching one path segment (`*` any run of
/// characters within it); a pattern ending in `/` needs more of the path after its last
/// segment. Both start with `/`. Linear in the path for each pattern segment: no
/// backtracking across segments, so no path can make it slow.
fn glob_prefix(pattern: &str, path: &str) -> bool {
    let mut pattern_segments: Vec<&str> = pattern[1..].split('/').collect();
    let open_ended = pattern.ends_with('/');
    if open_ended {
        pattern_segments.pop();
    }
    let mut path_segments = path.get(1..).unwrap_or_default().split('/');
    for want in &pattern_segments {
        match path_segments.next() {
            Some(have) if segment_matches(want.as_bytes(), have.as_bytes()) => {}
            _ => return false,
        }
    }
    // `/admin/` needs a `/` after `admin`: a next segment, even an empty one.
    !open_ended || path_segments.next().is_some()
}

/// Whether `text` matches `pattern`, where `*` stands for any run of bytes: the greedy
/// algorithm that backs up only to the last `*`, O(len(pattern) × len(text)) at worst.
fn segment_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// The path as an application routes it: percent-decoded (invalid UTF-8 kept as U+FFFD),
/// repeated slashes merged, `.` and `..` segments removed (never above the root). Starts
/// with `/`; a trailing slash is kept.
pub fn normalize_path(raw: &str) -> String {
    // The common case, a path already in normal form, is returned as it is.
    if raw.starts_with('/')
        && !raw.contains(['%', '\\'])
        && !raw.contains("//")
        && !raw.split('/').any(|seg| seg == "." || seg == "..")
    {
        return raw.to_owned();
    }
    let decoded: Vec<u8> = percent_decode(raw.as_bytes());
    let decoded = String::from_utf8_lossy(&decoded);
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = decoded.split('/').collect();
    let last = parts.len().saturating_sub(1);
    let mut trailing = false;
    for (i, seg) in parts.iter().enumerate() {
        match *seg {
            "" => trailing = i == last && i != 0,
            "." => trailing = i == last,
            ".." => {
                segments.pop();
                trailing = i == last;
            }
            s => {
                segments.push(s);
                trailing = false;
            }
        }
    }
    let mut out = String::with_capacity(decoded.len() + 1);
    for seg in &segments {
        out.push('/');
        out.push_str(seg);
    }
    if trailing || segments.is_empty() {
        out.push('/');
    }
    out
}

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// One checked rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its place in the file, from 1.
    pub number: usize,
    /// Its `name`, if any.
    pub name: Option<String>,
    host: Option<HostPattern>,
    path: Option<PathPattern>,
    methods: Option<Vec<String>>,
    /// What it requires.
    pub policy: Policy,
}

impl Rule {
    fn matches(&self, request: &Request<'_>) -> bool {
        self.host
            .as_ref()
            .is_none_or(|h| h.matches(request.host, request.port))
            && self.path.as_ref().is_none_or(|p| p.matches(request.path))
            && self
                .methods
                .as_ref()
                .is_none_or(|m| m.iter().any(|m| m == request.method))
    }

    /// `rule 2 ("admin area")`, for messages.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("rule {} ({name:?})", self.number),
            None => format!("rule {}", self.number),
        }
    }
}

impl fmt::Display for Rule {
    /// The rule as it would be written: `host = "…", path = "…", policy = "…"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(host) = &self.host {
            write!(f, "host = \"{host}\", ")?;
        }
        if let Some(path) = &self.path {
            write!(f, "path = \"{}\", ", path.0)?;
        }
        if let Some(methods) = &self.methods {
            let list: Vec<String> = methods.iter().map(|m| format!("\"{m}\"")).collect();
            write!(f, "methods = [{}], ", list.join(", "))?;
        }
        write!(f, "policy = \"{}\"", self.policy)
    }
}

/// A rule that cannot be used: which one, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("access {label}: {message}")]
pub struct BadRule {
    /// `rule 3 ("admin area")`.
    pub label: String,
    /// What is wrong.
    pub message: String,
}

/// The rules and the default, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRules {
    rules: Vec<Rule>,
    default: Policy,
}

impl Default for AccessRules {
    /// No rules; every request needs a logged-in user.
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            default: Policy::Authenticated,
        }
    }
}

/// The original request, as the rules see it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Upper case.
    pub method: &'a str,
    /// The host name: lowercase, no port, no trailing dot.
    pub host: &'a str,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// The normalized path ([`normalize_path`]).
    pub path: &'a str,
}

/// Who is asking, as far as the rules care.
#[derive(Clone, Copy, Debug)]
pub struct Asker<'a> {
    /// The role.
    pub role: &'a str,
    /// Whether the login used a second factor.
    pub mfa: bool,
}

/// The answer for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through.
    Allow,
    /// Log in first (401, or the login page).
    Unauthenticated,
    /// Refused whoever asks, or refused to this user (403).
    Forbidden,
    /// The user must log in with a second factor (403 `mfa_required`).
    SecondFactor,
}

impl AccessRules {
    /// Check `raw` (in file order) and the default policy (`None`: `authenticated`).
    ///
    /// # Errors
    /// The first bad rule, or a bad default.
    pub fn new(raw: &[RawRule], default: Option<&str>) -> Result<Self, BadRule> {
        let default = match default {
            Some(text) => Policy::parse(text).map_err(|message| BadRule {
                label: "default_policy".to_owned(),
                message,
            })?,
            None => Policy::Authenticated,
        };
        let rules = raw
            .iter()
            .enumerate()
            .map(|(i, r)| check_rule(i + 1, r))
            .collect::<Result<_, _>>()?;
        Ok(Self { rules, default })
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The policy when no rule matches.
    pub fn default_policy(&self) -> &Policy {
        &self.default
    }

    /// The first rule matching `request` (`None`: the default applies) and its policy.
    pub fn policy_for(&self, request: &Request<'_>) -> (Option<&Rule>, &Policy) {
        match self.rules.iter().find(|r| r.matches(request)) {
            Some(rule) => (Some(rule), &rule.policy),
            None => (None, &self.default),
        }
    }

    /// The verdict of `policy` for `asker` (`None`: nobody is logged in).
    pub fn verdict(policy: &Policy, asker: Option<Asker<'_>>) -> Verdict {
        match (policy, asker) {
            (Policy::Public, _) => Verdict::Allow,
            (Policy::Deny, _) => Verdict::Forbidden,
            (Policy::Authenticated | Policy::Mfa | Policy::Role(_), None) => {
                Verdict::Unauthenticated
            }
            (Policy::Authenticated, Some(_)) => Verdict::Allow,
            (Policy::Mfa, Some(a)) if a.mfa => Verdict::Allow,
            (Policy::Mfa, Some(_)) => Verdict::SecondFactor,
            (Policy::Role(role), Some(a)) if a.role == role => Verdict::Allow,
            (Policy::Role(_), Some(_)) => Verdict::Forbidden,
        }
    }
}

fn check_rule(number: usize, raw: &RawRule) -> Result<Rule, BadRule> {
    let label = match &raw.name {
        Some(name) => format!("rule {number} ({name:?})"),
        None => format!("rule {number}"),
    };
    let bad = |message: String| BadRule {
        label: label.clone(),
        message,
    };
    let policy = match &raw.policy {
        Some(p) => Policy::parse(p).map_err(bad)?,
        None => {
            return Err(bad(
                "no policy: add policy = \"public\", \"authenticated\", \"mfa\", \"role:NAME\" or \"deny\""
                    .to_owned(),
            ));
        }
    };
    let host = raw
        .host
        .as_deref()
        .map(HostPattern::parse)
        .transpose()
        .map_err(bad)?;
    let path = raw
        .path
        .as_deref()
        .map(PathPattern::parse)
        .transpose()
        .map_err(bad)?;
    let methods = match &raw.methods {
        None => None,
        Some(list) if list.is_empty() => {
            return Err(bad(
                "methods = [] matches nothing: list methods, or leave `methods` out for all"
                    .to_owned(),
            ));
        }
        Some(list) => Some(
            list.iter()
                .map(|m| {
                    let ok = !m.is_empty()
                        && m.len() <= 32
                        && m.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-');
                    if ok {
                        Ok(m.to_ascii_uppercase())
                    } else {
                        Err(bad(format!("{m:?} is not an HTTP method")))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(Rule {
        number,
        name: raw.name.clone(),
        host,
        path,
        methods,
        policy,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rules(toml_text: &str) -> Result<AccessRules, BadRule> {
        #[derive(Deserialize)]
        struct File {
            default_policy: Option<String>,
            #[serde(default)]
            access: Vec<RawRule>,
        }
        let file: File = toml::from_str(toml_text).unwrap();
        AccessRules::new(&file.access, file.default_policy.as_deref())
    }

    fn req<'a>(method: &'a str, host: &'a str, port: u16, path: &'a str) -> Request<'a> {
        Request {
            method,
            host,
            port,
            path,
        }
    }

    fn rule_number(r: &AccessRules, request: Request<'_>) -> Option<usize> {
        r.policy_for(&request).0.map(|rule| rule.number)
    }

    #[test]
    fn policies_parse_and_print() {
        for text in [
            "public",
            "authenticated",
            "mfa",
            "deny",
            "role:admin",
            "role:ops-2",
        ] {
            assert_eq!(Policy::parse(text).unwrap().to_string(), text);
        }
        for text in [
            "",
            "Public",
            "role:",
            "role:Admin",
            "role:a b",
            "allow",
            "role",
        ] {
            assert!(Policy::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn verdicts() {
        let user = Some(Asker {
            role: "user",
            mfa: false,
        });
        let admin = Some(Asker {
            role: "admin",
            mfa: false,
        });
        let two_factor = Some(Asker {
            role: "user",
            mfa: true,
        });
        let role = Policy::Role("admin".to_owned());
        use Verdict::*;
        let table = [
            (Policy::Public, None, Allow),
            (Policy::Public, user, Allow),
            (Policy::Authenticated, None, Unauthenticated),
            (Policy::Authenticated, user, Allow),
            (role.clone(), None, Unauthenticated),
            (role.clone(), user, Forbidden),
            (role, admin, Allow),
            (Policy::Deny, None, Forbidden),
            (Policy::Deny, admin, Forbidden),
            (Policy::Mfa, None, Unauthenticated),
            (Policy::Mfa, admin, SecondFactor),
            (Policy::Mfa, two_factor, Allow),
            (Policy::Authenticated, two_factor, Allow),
        ];
        for (policy, asker, verdict) in table {
            assert_eq!(
                AccessRules::verdict(&policy, asker),
                verdict,
                "{policy} {asker:?}"
            );
        }
    }

    #[test]
    fn first_match_wins_then_the_default() {
        let r = rules(
            r#"
            default_policy = "deny"
            [[access]]
            host = "app.example.test"
            path = "/admin"
            policy = "role:admin"
            [[access]]
            host = "*.example.test"
            path = "/static/"
            methods = ["get", "HEAD"]
            policy = "public"
            [[access]]
            host = "*.example.test"
            policy = "authenticated"
            "#,
        )
        .unwrap();
        assert_eq!(r.default_policy(), &Policy::Deny);
        let n = |m, h, p| rule_number(&r, req(m, h, 443, p));
        assert_eq!(n("GET", "app.example.test", "/admin"), Some(1));
        assert_eq!(n("POST", "app.example.test", "/admin/users"), Some(1));
        assert_eq!(n("GET", "app.example.test", "/administrator"), Some(3));
        assert_eq!(n("GET", "b.example.test", "/static/app.css"), Some(2));
        assert_eq!(n("HEAD", "b.example.test", "/static/"), Some(2));
        assert_eq!(n("POST", "b.example.test", "/static/app.css"), Some(3));
        assert_eq!(n("GET", "b.example.test", "/static"), Some(3));
        assert_eq!(n("GET", "x.y.example.test", "/"), Some(3));
        assert_eq!(n("GET", "example.test", "/"), None);
        assert_eq!(n("GET", "evil-example.test", "/"), None);
        assert_eq!(n("GET", "example.test.evil", "/"), None);
        let (rule, policy) = r.policy_for(&req("GET", "other.test", 80, "/"));
        assert!(rule.is_none());
        assert_eq!(policy, &Policy::Deny);
    }

    #[test]
    fn default_policy_is_authenticated() {
        let r = rules("").unwrap();
        assert_eq!(r.default_policy(), &Policy::Authenticated);
        assert_eq!(r, AccessRules::default());
    }

    #[test]
    fn hosts_and_ports() {
        let r = rules(
            r#"
            [[access]]
            host = "127.0.0.1"
            policy = "public"
            [[access]]
            host = "App.Example.Test:8443"
            policy = "deny"
            [[access]]
            host = "[::1]:8080"
            policy = "deny"
            [[access]]
            host = "*.example.test:443"
            policy = "deny"
            "#,
        )
        .unwrap();
        let n = |h, port| rule_number(&r, req("GET", h, port, "/"));
        assert_eq!(n("127.0.0.1", 8443), Some(1));
        assert_eq!(n("127.0.0.1", 80), Some(1));
        assert_eq!(n("app.example.test", 8443), Some(2));
        assert_eq!(n("app.example.test", 443), Some(4));
        assert_eq!(n("app.example.test", 80), None);
        assert_eq!(n("[::1]", 8080), Some(3));
        assert_eq!(n("[::1]", 8081), None);
        assert_eq!(
            r.rules()[1].to_string(),
            "host = \"app.example.test:8443\", policy = \"deny\""
        );
    }

    #[test]
    fn paths_match_whole_segments_and_globs() {
        let p = |pattern: &str, path: &str| PathPattern::parse(pattern).unwrap().matches(path);
        assert!(p("/", "/"));
        assert!(p("/", "/anything/at/all"));
        assert!(p("/admin", "/admin"));
        assert!(p("/admin", "/admin/"));
        assert!(p("/admin", "/admin/users"));
        assert!(!p("/admin", "/administrator"));
        assert!(!p("/admin", "/"));
        assert!(p("/admin/", "/admin/"));
        assert!(p("/admin/", "/admin/x"));
        assert!(!p("/admin/", "/admin"));
        assert!(p("/api/*/settings", "/api/v1/settings"));
        assert!(p("/api/*/settings", "/api/v1/settings/email"));
        assert!(!p("/api/*/settings", "/api/v1/x/settings"));
        assert!(!p("/api/*/settings", "/api/v1/settingsx"));
        assert!(
            p("/api/*/settings", "/api//settings"),
            "an empty segment is a segment"
        );
        assert!(p("/files/*.pdf", "/files/a.pdf"));
        assert!(!p("/files/*.pdf", "/files/a.pdfx"));
        assert!(p("/v*", "/v2/x"));
        assert!(!p("/v*", "/x"));
    }

    #[test]
    fn normal_paths() {
        for (raw, normal) in [
            ("/", "/"),
            ("", "/"),
            ("/admin", "/admin"),
            ("/admin/", "/admin/"),
            ("//admin//x", "/admin/x"),
            ("/%61dmin/", "/admin/"),
            ("/public/../admin", "/admin"),
            ("/public/%2e%2e/admin/", "/admin/"),
            ("/public%2F..%2Fadmin", "/admin"),
            ("/a/./b/.", "/a/b/"),
            ("/../../etc", "/etc"),
            ("/a/..", "/"),
            ("/%zz", "/%zz"),
            ("/caf%C3%A9", "/café"),
            ("/%ff", "/\u{fffd}"),
        ] {
            assert_eq!(normalize_path(raw), normal, "{raw}");
        }
    }

    #[test]
    fn bad_rules_are_named() {
        let cases = [
            ("[[access]]\npath = \"/\"", "rule 1", "no policy"),
            (
                "[[access]]\npolicy = \"public\"\n[[access]]\nname = \"ops\"\npolicy = \"role:\"",
                "rule 2 (\"ops\")",
                "not a role name",
            ),
            (
                "[[access]]\npath = \"admin\"\npolicy = \"deny\"",
                "rule 1",
                "start with",
            ),
            (
                "[[access]]\npath = \"/a/**\"\npolicy = \"deny\"",
                "rule 1",
                "**",
            ),
            (
                "[[access]]\npath = \"/a/../b\"\npolicy = \"deny\"",
                "rule 1",
                "normal form",
            ),
            (
                "[[access]]\npath = \"//a\"\npolicy = \"deny\"",
                "rule 1",
                "normal form",
            ),
            (
                "[[access]]\npath = \"/a?b\"\npolicy = \"deny\"",
                "rule 1",
                "query",
            ),
            (
                "[[access]]\npath = \"/%61\"\npolicy = \"deny\"",
                "rule 1",
                "decoded",
            ),
            (
                "[[access]]\nhost = \"a.*.test\"\npolicy = \"deny\"",
                "rule 1",
                "`*`",
            ),
            (
                "[[access]]\nhost = \"*\"\npolicy = \"deny\"",
                "rule 1",
                "host",
            ),
            (
                "[[access]]\nhost = \"\"\npolicy = \"deny\"",
                "rule 1",
                "empty",
            ),
            (
                "[[access]]\nhost = \"a.test:0\"\npolicy = \"deny\"",
                "rule 1",
                "port",
            ),
            (
                "[[access]]\nhost = \"a.test:99999\"\npolicy = \"deny\"",
                "rule 1",
                "port",
            ),
            (
                "[[access]]\nhost = \"a b\"\npolicy = \"deny\"",
                "rule 1",
                "host name",
            ),
            (
                "[[access]]\nhost = \"https://a.test\"\npolicy = \"deny\"",
                "rule 1",
                "host",
            ),
            (
                "[[access]]\nmethods = []\npolicy = \"deny\"",
                "rule 1",
                "matches nothing",
            ),
            (
                "[[access]]\nmethods = [\"GET POST\"]\npolicy = \"deny\"",
                "rule 1",
                "method",
            ),
            ("default_policy = \"allow\"", "default_policy", "expected"),
        ];
        for (text, label, words) in cases {
            let e = rules(text).unwrap_err();
            assert_eq!(e.label, label, "{text}: {e}");
            assert!(e.to_string().contains(words), "{text}: {e}");
            assert!(
                e.to_string().starts_with(&format!("access {label}: ")),
                "{e}"
            );
        }
        // An unknown key in a rule is the file parser's error.
        let e = toml::from_str::<RawRule>("polcy = \"deny\"").unwrap_err();
        assert!(e.to_string().contains("polcy"), "{e}");
    }

    #[test]
    fn trailing_dots_in_patterns_are_dropped() {
        let r = rules("[[access]]\nhost = \"a.test.\"\npolicy = \"deny\"").unwrap();
        assert_eq!(rule_number(&r, req("GET", "a.test", 80, "/")), Some(1));
    }
}
