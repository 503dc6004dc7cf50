//! Why a setting cannot be used, and where it came from.

use std::fmt;
use std::path::PathBuf;

/// Why the settings cannot be used. Each names where the value came from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The settings file could not be read.
    #[error("cannot read the settings file {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The settings file is not valid TOML or has an unknown setting.
    #[error("the settings file {} is not valid: {source}", path.display())]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// The parser's message (it quotes the offending line), or the unknown key.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// One value is not acceptable.
    #[error("{origin}: {message}")]
    Invalid {
        /// Where it came from.
        origin: Origin,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A setting this version does not support yet.
    #[error("{origin}: {message}")]
    Unsupported {
        /// Where it came from.
        origin: Origin,
        /// What is not supported and what to do instead.
        message: String,
    },
}

/// Where a setting came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, without its dashes.
    Flag(&'static str),
    /// An environment variable.
    Env(&'static str),
    /// A key of the settings file.
    File(PathBuf, &'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(name) => write!(f, "--{name}"),
            Self::Env(name) => f.write_str(name),
            Self::File(path, key) => write!(f, "{}: {key}", path.display()),
        }
    }
}

/// What is wrong with one value, before the resolver names where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The value is not acceptable: what is wrong and what is expected.
    Invalid(String),
    /// The value asks for something this version does not support.
    Unsupported(String),
}

impl Refusal {
    /// The error for a value that came from `origin`.
    pub fn at(self, origin: Origin) -> SettingsError {
        match self {
            Self::Invalid(message) => SettingsError::Invalid { origin, message },
            Self::Unsupported(message) => SettingsError::Unsupported { origin, message },
        }
    }
}

impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Self::Invalid(message)
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Self {
        Self::Invalid(message.to_owned())
    }
}
