//! The settings file: `countersign.toml` in the working directory, or the file `--config` /
//! `COUNTERSIGN_CONFIG` names. Its keys are the settings' ([`super::SETTINGS`]) and its
//! tables the sections ([`super::table::SECTIONS`]); anything else is refused when the file
//! is read.

use std::path::{Path, PathBuf};

use super::config::CONFIG_FILE;
use super::error::{Origin, SettingsError};
use super::table::{SECTIONS, SETTINGS};
use crate::config::Env;

/// The settings file, if there is one.
#[derive(Debug, Default)]
pub struct SettingsFile {
    path: Option<PathBuf>,
    values: toml::Table,
}

impl SettingsFile {
    /// Read `flag` (`--config`), else `COUNTERSIGN_CONFIG`, else `countersign.toml` in the
    /// working directory when it exists. A file named explicitly must exist.
    ///
    /// # Errors
    /// [`SettingsError::ReadFile`], [`SettingsError::ParseFile`].
    pub fn load(flag: Option<&Path>, env: &dyn Env) -> Result<Self, SettingsError> {
        let named = flag
            .map(Path::to_path_buf)
            .or_else(|| env.var_os("COUNTERSIGN_CONFIG").map(PathBuf::from))
            .filter(|p| !p.as_os_str().is_empty());
        let path = match named {
            Some(path) => path,
            None => {
                let default = PathBuf::from(CONFIG_FILE);
                if !default.exists() {
                    return Ok(Self::default());
                }
                default
            }
        };
        Self::read(&path)
    }

    /// Read the file at `path`.
    ///
    /// # Errors
    /// [`SettingsError::ReadFile`], [`SettingsError::ParseFile`].
    pub fn read(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parse `text` as if read from `path`.
    ///
    /// # Errors
    /// [`SettingsError::ParseFile`]: not TOML, or a key that is no setting's.
    pub fn parse(path: &Path, text: &str) -> Result<Self, SettingsError> {
        let refuse = |source: toml::de::Error| SettingsError::ParseFile {
            path: path.to_owned(),
            source: Box::new(source),
        };
        let values: toml::Table = toml::from_str(text).map_err(refuse)?;
        if let Some(unknown) = values.keys().find(|k| !known(k)) {
            let expected: Vec<String> = keys().map(|k| format!("`{k}`")).collect();
            return Err(refuse(serde::de::Error::custom(format!(
                "unknown setting `{unknown}`, expected one of {}",
                expected.join(", ")
            ))));
        }
        Ok(Self {
            path: Some(path.to_owned()),
            values,
        })
    }

    /// Where the file is, if there is one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The value of `key`, if the file sets it.
    pub fn get(&self, key: &str) -> Option<&toml::Value> {
        self.values.get(key)
    }

    /// The directory a relative path in the file is relative to.
    pub fn dir(&self) -> &Path {
        self.path
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new(""))
    }

    /// Where `key` of this file is, for messages.
    pub fn origin(&self, key: &'static str) -> Origin {
        Origin::File(self.path.clone().unwrap_or_default(), key)
    }
}

/// Every key the file accepts: the settings' keys, then the sections.
pub fn keys() -> impl Iterator<Item = &'static str> {
    SETTINGS
        .iter()
        .flat_map(|s| s.keys.iter().copied())
        .chain(SECTIONS.iter().map(|(name, _)| *name))
}

fn known(key: &str) -> bool {
    keys().any(|k| k == key)
}
