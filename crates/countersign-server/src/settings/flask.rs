//! The Flask bridge's `[flask]` table: it turns the bridge on with its values
//! (`--flask-bridge` or `COUNTERSIGN_FLASK_BRIDGE=true` turn it on with Flask's defaults):
//!
//! ```toml
//! [flask]
//! cookie_name = "session"     # SESSION_COOKIE_NAME
//! user_key = "username"       # or "user_id", or "_user_id" (Flask-Login)
//! max_age = "31d"             # PERMANENT_SESSION_LIFETIME: seconds, or 90s, 15m, 12h, 31d
//! salt = "cookie-session"     # SecureCookieSessionInterface.salt
//! write = false               # a login also sets the Flask cookie; logout clears it
//! ```
//!
//! The keys are the same `SECRET_KEY` and `SECRET_KEY_FALLBACKS` as everything else.

use countersign::flask::bridge::{FlaskBridge, MAX_MAX_AGE_SECS, UserKey};
use serde::Deserialize;

use super::error::{Origin, SettingsError};
use crate::cli::parse_seconds;

/// `max_age` as written: seconds, or text such as `31d`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum MaxAge {
    Secs(i64),
    Text(String),
}

/// The `[flask]` table as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlaskTable {
    cookie_name: Option<String>,
    user_key: Option<String>,
    max_age: Option<MaxAge>,
    salt: Option<String>,
    write: Option<bool>,
}

/// Whether `name` can be a cookie name: an RFC 6265 token, 1 to 64 characters.
fn is_cookie_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The bridge's settings from the `[flask]` table `value`; `origin` names one of its keys
/// (`flask.max_age`) for error messages.
///
/// # Errors
/// [`SettingsError::Invalid`] naming the bad value.
pub(super) fn bridge(
    value: &toml::Value,
    origin: impl Fn(&'static str) -> Origin,
) -> Result<FlaskBridge, SettingsError> {
    let invalid = |key: &'static str, message: String| SettingsError::Invalid {
        origin: origin(key),
        message,
    };
    let t: FlaskTable = value
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| invalid("flask", e.message().trim().to_owned()))?;
    let d = FlaskBridge::default();
    let cookie_name = match t.cookie_name {
        Some(name) if !is_cookie_name(&name) => {
            return Err(invalid(
                "flask.cookie_name",
                format!("expected a cookie name (letters, digits, - _ .), got {name:?}"),
            ));
        }
        Some(name) => name,
        None => d.cookie_name,
    };
    let user_key = match t.user_key {
        Some(key) => UserKey::parse(&key).ok_or_else(|| {
            invalid(
                "flask.user_key",
                format!("expected username, user_id or _user_id, got {key:?}"),
            )
        })?,
        None => d.user_key,
    };
    let max_age_secs = match t.max_age {
        None => d.max_age_secs,
        Some(MaxAge::Secs(n)) => n,
        Some(MaxAge::Text(s)) => parse_seconds(&s)
            .map(|s| s.0)
            .map_err(|message| invalid("flask.max_age", message))?,
    };
    if !(1..=MAX_MAX_AGE_SECS).contains(&max_age_secs) {
        return Err(invalid(
            "flask.max_age",
            format!(
                "expected 1 second to 400 days (the longest a browser keeps a cookie), got \
                 {max_age_secs} s"
            ),
        ));
    }
    let salt = match t.salt {
        Some(salt) if salt.is_empty() || salt.len() > 256 => {
            return Err(invalid(
                "flask.salt",
                "expected 1 to 256 bytes (Flask's is cookie-session)".to_owned(),
            ));
        }
        Some(salt) => salt,
        None => d.salt,
    };
    Ok(FlaskBridge {
        cookie_name,
        user_key,
        max_age_secs,
        salt,
        write: t.write.unwrap_or(d.write),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::PathBuf;

    use super::*;

    fn origin(key: &'static str) -> Origin {
        Origin::File(PathBuf::from("countersign.toml"), key)
    }

    fn table(toml_text: &str) -> toml::Value {
        toml::Value::Table(toml::from_str(toml_text).unwrap())
    }

    #[test]
    fn the_table_sets_every_option() {
        assert_eq!(bridge(&table(""), origin).unwrap(), FlaskBridge::default());
        let t = table(
            "cookie_name = \"sid\"\nuser_key = \"_user_id\"\nmax_age = \"7d\"\nsalt = \"s\"\nwrite = true",
        );
        assert_eq!(
            bridge(&t, origin).unwrap(),
            FlaskBridge {
                cookie_name: "sid".into(),
                user_key: UserKey::FlaskLogin,
                max_age_secs: 7 * 86400,
                salt: "s".into(),
                write: true,
            }
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = |text: &str| bridge(&table(text), origin).unwrap_err().to_string();
        assert!(err("cookie_name = \"a b\"").contains("flask.cookie_name"));
        assert!(err("user_key = \"email\"").contains("flask.user_key"));
        assert!(err("max_age = 0").contains("flask.max_age"));
        assert!(err("max_age = \"500d\"").contains("400 days"));
        assert!(err("salt = \"\"").contains("flask.salt"));
        let unknown = err("nope = 1");
        assert!(
            unknown.contains("flask") && unknown.contains("nope"),
            "{unknown}"
        );
    }
}
