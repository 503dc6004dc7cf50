//! The Flask bridge's settings: `--flask-bridge` (or `COUNTERSIGN_FLASK_BRIDGE=true`)
//! turns it on with Flask's defaults; a `[flask]` table in `countersign.toml` turns it on
//! with its values:
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

use crate::cli::parse_seconds;
use crate::config::Env;
use crate::settings::{Origin, SettingsError};

/// `max_age` as written: seconds, or text such as `31d`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum MaxAge {
    Secs(i64),
    Text(String),
}

/// The `[flask]` table as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlaskTable {
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

/// The bridge's settings, or `None` when it is off.
///
/// `table_origin` names a key of the `[flask]` table for error messages.
///
/// # Errors
/// [`SettingsError::Invalid`] naming the bad value.
pub(crate) fn resolve(
    flag: bool,
    env: &dyn Env,
    table: Option<&FlaskTable>,
    table_origin: impl Fn(&'static str) -> Origin,
) -> Result<Option<FlaskBridge>, SettingsError> {
    let from_env = match env.var_os("COUNTERSIGN_FLASK_BRIDGE") {
        None => false,
        Some(v) if v.is_empty() => false,
        Some(v) => match v.to_string_lossy().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            other => {
                return Err(SettingsError::Invalid {
                    origin: Origin::Env("COUNTERSIGN_FLASK_BRIDGE"),
                    message: format!("expected true or false, got {other:?}"),
                });
            }
        },
    };
    if !(flag || from_env || table.is_some()) {
        return Ok(None);
    }
    let t = table.cloned().unwrap_or_default();
    let d = FlaskBridge::default();
    let invalid = |key: &'static str, message: String| SettingsError::Invalid {
        origin: table_origin(key),
        message,
    };
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
    Ok(Some(FlaskBridge {
        cookie_name,
        user_key,
        max_age_secs,
        salt,
        write: t.write.unwrap_or(d.write),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::ffi::OsString;
    use std::path::PathBuf;

    use super::*;

    struct Vars(HashMap<&'static str, &'static str>);
    impl Env for Vars {
        fn var_os(&self, name: &str) -> Option<OsString> {
            self.0.get(name).map(OsString::from)
        }
    }

    fn origin(key: &'static str) -> Origin {
        Origin::File(PathBuf::from("countersign.toml"), key)
    }

    fn table(toml_text: &str) -> FlaskTable {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn off_by_default_on_by_flag_env_or_table() {
        let none = Vars(HashMap::new());
        assert_eq!(resolve(false, &none, None, origin).unwrap(), None);
        assert_eq!(
            resolve(true, &none, None, origin).unwrap(),
            Some(FlaskBridge::default())
        );
        let on = Vars(HashMap::from([("COUNTERSIGN_FLASK_BRIDGE", "true")]));
        assert_eq!(
            resolve(false, &on, None, origin).unwrap(),
            Some(FlaskBridge::default())
        );
        let t = table(
            "cookie_name = \"sid\"\nuser_key = \"_user_id\"\nmax_age = \"7d\"\nsalt = \"s\"\nwrite = true",
        );
        assert_eq!(
            resolve(false, &none, Some(&t), origin).unwrap(),
            Some(FlaskBridge {
                cookie_name: "sid".into(),
                user_key: UserKey::FlaskLogin,
                max_age_secs: 7 * 86400,
                salt: "s".into(),
                write: true,
            })
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let none = Vars(HashMap::new());
        let err = |text: &str| {
            resolve(false, &none, Some(&table(text)), origin)
                .unwrap_err()
                .to_string()
        };
        assert!(err("cookie_name = \"a b\"").contains("flask.cookie_name"));
        assert!(err("user_key = \"email\"").contains("flask.user_key"));
        assert!(err("max_age = 0").contains("flask.max_age"));
        assert!(err("max_age = \"500d\"").contains("400 days"));
        assert!(err("salt = \"\"").contains("flask.salt"));
        assert!(toml::from_str::<FlaskTable>("nope = 1").is_err());
        let bad = Vars(HashMap::from([("COUNTERSIGN_FLASK_BRIDGE", "maybe")]));
        assert!(resolve(false, &bad, None, origin).is_err());
    }
}
