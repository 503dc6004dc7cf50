//! Redis URLs without their secrets.

/// `url` with its password (and the `pass`/`password` query parameters of `unix://` URLs)
/// replaced by `[redacted]`, safe to log or show in an error.
///
/// A value that does not parse as a URL is redacted whole past the scheme, since where its
/// secret starts cannot be known.
///
/// # Examples
/// ```
/// use countersign_redis::redact_url;
/// assert_eq!(
///     redact_url("redis://app:hunter2@cache.internal:6379/0"),
///     "redis://app:[redacted]@cache.internal:6379/0",
/// );
/// assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
/// assert!(!redact_url("unix:///run/redis.sock?pass=hunter2").contains("hunter2"));
/// ```
pub fn redact_url(url: &str) -> String {
    const REDACTED: &str = "[redacted]";
    let Ok(mut parsed) = url::Url::parse(url) else {
        return match url.split_once("://") {
            Some((scheme, _))
                if scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                format!("{scheme}://{REDACTED}")
            }
            _ => REDACTED.to_owned(),
        };
    };
    if parsed.password().is_some() && parsed.set_password(Some(REDACTED)).is_err() {
        return REDACTED.to_owned();
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let secret = matches!(k.as_ref(), "pass" | "password");
                (
                    k.into_owned(),
                    if secret {
                        REDACTED.to_owned()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // `set_password` percent-encodes the brackets; keep the marker readable.
    parsed.as_str().replace("%5Bredacted%5D", REDACTED)
}
