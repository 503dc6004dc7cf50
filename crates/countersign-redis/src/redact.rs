//! Redis URLs without their secrets.

/// `url` with its password, and any query parameter that may hold a secret (`pass`, …),
/// replaced by `[redacted]`, safe to log or show in an error: the engine's
/// [`redacted_url`](countersign::redact::redacted_url), which every store crate shares.
///
/// A Redis URL always has a scheme; a value without `://` is not one, and where its
/// secret starts cannot be known, so it is redacted whole.
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
    if url.contains("://") {
        countersign::redact::redacted_url(url)
    } else {
        "[redacted]".to_owned()
    }
}
