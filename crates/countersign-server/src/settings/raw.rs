//! One setting's value as it was given, before it is read: a flag's text, an environment
//! variable's, or a value of the settings file; and the readers every setting's parser is
//! made of. Each reader takes all three forms, so a setting is read the same way whichever
//! layer it comes from, and says what it expected when the value will not do.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::Refusal;
use crate::cli::{parse_seconds, parse_timeout};

/// One setting's value, as given in one layer.
#[derive(Clone, Debug)]
pub enum Raw<'a> {
    /// A switch given on the command line (`--production`).
    Switch,
    /// A flag's values: one, or each of a repeated flag's.
    Flag(&'a [String]),
    /// An environment variable's text (never empty: an empty variable counts as unset).
    Env(String),
    /// A value of the settings file, and the file's directory (a relative path in the file
    /// is relative to it).
    File(&'a toml::Value, &'a Path),
}

impl Raw<'_> {
    /// Whether the value was given on the command line or in the environment, which a
    /// reload of the settings file does not replace.
    pub fn is_override(&self) -> bool {
        !matches!(self, Self::File(..))
    }

    /// The text of a flag or variable, or of a string in the file.
    fn as_text(&self, expected: &str) -> Result<&str, Refusal> {
        match self {
            Self::Switch => Ok("true"),
            Self::Flag(values) => Ok(values.last().map_or("", String::as_str)),
            Self::Env(text) => Ok(text),
            Self::File(toml::Value::String(text), _) => Ok(text),
            Self::File(other, _) => Err(mistyped(expected, other)),
        }
    }

    /// The value as text.
    ///
    /// # Errors
    /// A file value that is not a string.
    pub fn text(&self) -> Result<String, Refusal> {
        self.as_text("a string").map(str::to_owned)
    }

    /// A path; in the file, relative to the file's directory.
    ///
    /// # Errors
    /// A file value that is not a string.
    pub fn path(&self) -> Result<PathBuf, Refusal> {
        let path = PathBuf::from(self.as_text("a path")?);
        match self {
            Self::File(_, dir) if path.is_relative() => Ok(dir.join(path)),
            _ => Ok(path),
        }
    }

    /// On or off: a switch given, `true`/`false` in the file, or `1`, `true`, `yes`, `on`
    /// (`0`, `false`, `no`, `off`) in the environment.
    ///
    /// # Errors
    /// Anything else.
    pub fn bool(&self) -> Result<bool, Refusal> {
        if let Self::File(value, _) = self {
            return value
                .as_bool()
                .ok_or_else(|| mistyped("true or false", value));
        }
        let text = self.as_text("true or false")?;
        match text.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(format!("expected true or false, got {text:?}").into()),
        }
    }

    /// A duration in whole seconds: a number of seconds, or one number with a unit (`90s`,
    /// `15m`, `1h`, `7d`).
    ///
    /// # Errors
    /// Anything else, or a negative number.
    pub fn secs(&self) -> Result<i64, Refusal> {
        match self {
            Self::File(toml::Value::Integer(n), _) if *n >= 0 => Ok(*n),
            Self::File(toml::Value::Integer(n), _) => {
                Err(format!("a duration cannot be negative, got {n}").into())
            }
            _ => Ok(parse_seconds(self.as_text("a duration such as 15m or 900")?)?.0),
        }
    }

    /// A duration of more than zero seconds.
    ///
    /// # Errors
    /// As [`Self::secs`], or zero.
    pub fn positive_secs(&self) -> Result<i64, Refusal> {
        match self.secs()? {
            0 => Err("must be more than zero".into()),
            secs => Ok(secs),
        }
    }

    /// A short timeout: milliseconds (`250ms`) or seconds (`2s`, `2`).
    ///
    /// # Errors
    /// Anything else, zero, or more than [`crate::cli::MAX_TIMEOUT`].
    pub fn timeout(&self) -> Result<Duration, Refusal> {
        match self {
            Self::File(toml::Value::Integer(n), _) => Ok(parse_timeout(&n.to_string())?),
            _ => Ok(parse_timeout(
                self.as_text("a timeout such as 250ms or 1s")?,
            )?),
        }
    }

    /// A whole number from `min` to `max`.
    ///
    /// # Errors
    /// Anything else.
    pub fn number(&self, min: u64, max: u64) -> Result<u64, Refusal> {
        let n = match self {
            Self::File(toml::Value::Integer(n), _) => {
                u64::try_from(*n).map_err(|_| format!("expected {min} to {max}, got {n}"))?
            }
            _ => {
                let text = self.as_text("a whole number")?;
                text.parse::<u64>()
                    .map_err(|_| format!("expected a whole number, got {text:?}"))?
            }
        };
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(format!("expected {min} to {max}, got {n}").into())
        }
    }

    /// A list: a repeated flag's values, comma-separated text, or a list of strings in the
    /// file. Entries are trimmed; empty ones are dropped.
    ///
    /// # Errors
    /// A file value that is not a list of strings.
    pub fn list(&self) -> Result<Vec<String>, Refusal> {
        let split = |text: &str| -> Vec<String> {
            text.split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(str::to_owned)
                .collect()
        };
        match self {
            Self::Switch => Ok(Vec::new()),
            Self::Flag(values) => Ok(values.iter().flat_map(|v| split(v)).collect()),
            Self::Env(text) => Ok(split(text)),
            Self::File(toml::Value::Array(items), _) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(text) => Ok(text.trim().to_owned()),
                    other => Err(mistyped("a list of strings", other)),
                })
                .filter(|entry| entry.as_ref().map_or(true, |e| !e.is_empty()))
                .collect(),
            Self::File(other, _) => Err(mistyped("a list of strings", other)),
        }
    }

    /// One of `choices`, by name, in any case.
    ///
    /// # Errors
    /// Any other text.
    pub fn choice<T: Copy>(&self, choices: &[(&str, T)]) -> Result<T, Refusal> {
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        let expected = format!("one of {}", names.join(", "));
        let text = self.as_text(&expected)?;
        choices
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
            .map(|(_, value)| *value)
            .ok_or_else(|| format!("expected {expected}, got {text:?}").into())
    }
}

/// A file value of the wrong type.
fn mistyped(expected: &str, value: &toml::Value) -> Refusal {
    Refusal::Invalid(format!(
        "expected {expected}, got a TOML {}",
        value.type_str()
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(text: &str) -> toml::Value {
        let table: toml::Table = toml::from_str(&format!("v = {text}")).unwrap();
        table["v"].clone()
    }

    #[test]
    fn every_form_reads_the_same() {
        let dir = Path::new("/etc/cs");
        let values = ["15m".to_owned()];
        for raw in [
            Raw::Flag(&values),
            Raw::Env("15m".to_owned()),
            Raw::File(&file("\"15m\""), dir),
            Raw::File(&file("900"), dir),
        ] {
            assert_eq!(raw.secs(), Ok(900), "{raw:?}");
        }
        assert_eq!(
            Raw::File(&file("\"state\""), dir).path(),
            Ok(PathBuf::from("/etc/cs/state"))
        );
        assert_eq!(
            Raw::Env("state".to_owned()).path(),
            Ok(PathBuf::from("state"))
        );
        assert_eq!(
            Raw::File(&file("[\"a\", \" b \", \"\"]"), dir).list(),
            Ok(vec!["a".to_owned(), "b".to_owned()])
        );
        let repeated = ["a,b".to_owned(), "c".to_owned()];
        assert_eq!(Raw::Flag(&repeated).list().unwrap(), ["a", "b", "c"]);
    }

    #[test]
    fn refusals_say_what_was_expected() {
        let dir = Path::new("/");
        let refused = |r: Result<u64, Refusal>| match r {
            Err(Refusal::Invalid(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused(Raw::Env("x".to_owned()).number(1, 9)),
            "expected a whole number, got \"x\""
        );
        assert_eq!(
            refused(Raw::Env("0".to_owned()).number(1, 9)),
            "expected 1 to 9, got 0"
        );
        assert_eq!(
            refused(Raw::File(&file("-3"), dir).number(1, 9)),
            "expected 1 to 9, got -3"
        );
        assert_eq!(
            refused(Raw::File(&file("true"), dir).number(1, 9)),
            "expected a whole number, got a TOML boolean"
        );
        assert_eq!(
            Raw::Env("maybe".to_owned()).bool(),
            Err(Refusal::Invalid(
                "expected true or false, got \"maybe\"".to_owned()
            ))
        );
        assert_eq!(
            Raw::Env("0".to_owned()).positive_secs(),
            Err(Refusal::Invalid("must be more than zero".to_owned()))
        );
        assert_eq!(
            Raw::Env("Open".to_owned()).choice(&[("open", 1), ("closed", 2)]),
            Ok(1)
        );
        assert_eq!(
            Raw::Env("ajar".to_owned()).choice(&[("open", 1), ("closed", 2)]),
            Err(Refusal::Invalid(
                "expected one of open, closed, got \"ajar\"".to_owned()
            ))
        );
    }
}
