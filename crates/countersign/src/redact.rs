//! Store URLs (SQLite, PostgreSQL, Redis) as they may be shown: in logs, errors, `Display`
//! and `Debug`. One redactor for every store crate, so they hide the same things.

/// What a removed secret is replaced by.
const REDACTED: &str = "[redacted]";

/// `url` with its password, and any query parameter that may hold a secret, replaced by
/// `[redacted]`.
///
/// It errs on the side of hiding: the password is everything between the first `:` after
/// the scheme and the *last* `@`, so a password with an unescaped `@`, `/` or `?` is hidden
/// whole, and a URL that is not well formed loses more than its password rather than less.
/// Query parameters whose name contains `pass`, `secret` or `token` are hidden too
/// (PostgreSQL accepts `?password=…`).
///
/// # Examples
/// ```
/// use countersign::redact::redacted_url;
/// assert_eq!(
///     redacted_url("postgres://app:hunter2@db.internal:5432/auth"),
///     "postgres://app:[redacted]@db.internal:5432/auth"
/// );
/// assert_eq!(
///     redacted_url("postgres://db/auth?user=app&password=hunter2"),
///     "postgres://db/auth?user=app&password=[redacted]"
/// );
/// assert_eq!(redacted_url("sqlite://data/countersign.db?mode=rwc"), "sqlite://data/countersign.db?mode=rwc");
/// ```
pub fn redacted_url(url: &str) -> String {
    let (head, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(head);
    let rest = match (head.is_empty(), rest.rfind('@')) {
        (false, Some(at)) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push(':');
                    out.push_str(REDACTED);
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            &rest[at + 1..]
        }
        _ => rest,
    };
    // Every `name=value` between `?` and `&` delimiters, wherever they are: a malformed URL
    // whose query was taken for user info above still loses its secret parameters.
    let mut start = 0;
    for (i, delimiter) in rest.char_indices().filter(|&(_, c)| c == '?' || c == '&') {
        push_param(&mut out, &rest[start..i]);
        out.push(delimiter);
        start = i + 1;
    }
    push_param(&mut out, &rest[start..]);
    out
}

fn push_param(out: &mut String, part: &str) {
    match part.split_once('=') {
        Some((name, _)) if is_secret_param(name) => {
            out.push_str(name);
            out.push('=');
            out.push_str(REDACTED);
        }
        _ => out.push_str(part),
    }
}

/// Whether a URL query parameter's name says it may hold a secret (`pass`, `secret` or
/// `token` in it, any case).
pub fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "secret", "token"].iter().any(|s| name.contains(s))
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn passwords_are_hidden() {
        for (url, want) in [
            (
                "postgres://user:hunter2@host/db",
                "postgres://user:[redacted]@host/db",
            ),
            (
                "postgresql://user:hunter2@host:5432/db?sslmode=require",
                "postgresql://user:[redacted]@host:5432/db?sslmode=require",
            ),
            // An unescaped `@`, `/` or `?` in the password: still hidden, whole.
            (
                "postgres://user:hun@ter/2?x@host/db",
                "postgres://user:[redacted]@host/db",
            ),
            // Query parameters that carry secrets.
            (
                "postgres://host/db?user=u&password=hunter2&sslpassword=x&application_name=a",
                "postgres://host/db?user=u&password=[redacted]&sslpassword=[redacted]&application_name=a",
            ),
            (
                "postgres://host/db?PassWord=hunter2",
                "postgres://host/db?PassWord=[redacted]",
            ),
            // Nothing to hide.
            ("postgres://user@host/db", "postgres://user@host/db"),
            ("postgres://host/db", "postgres://host/db"),
            (
                "sqlite://data/countersign.db?mode=rwc",
                "sqlite://data/countersign.db?mode=rwc",
            ),
            ("sqlite:data/countersign.db", "sqlite:data/countersign.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("", ""),
        ] {
            assert_eq!(redacted_url(url), want, "{url}");
            assert!(!redacted_url(url).contains("hunter2"), "{url}");
        }
    }

    #[test]
    fn malformed_urls_hide_more_not_less() {
        // An `@` in the query makes the host and port look like user info: over-redacted.
        let out = redacted_url("postgres://host:5432/db?application_name=a@b&password=hunter2");
        assert!(!out.contains("hunter2"), "{out}");
        assert!(!out.contains("5432"), "{out}");
    }
}
