//! Typed configuration, resolved from flags and the environment.
//!
//! Keys (`docs/settings.md` "Keys", `docs/keys.md`): the current key is `SECRET_KEY` (its
//! UTF-8 bytes are the key) or the file named by `SECRET_KEY_FILE` (less one trailing
//! newline); setting both is a usage error, and `--secret-key-file` overrides both.
//! `SECRET_KEY_FALLBACKS` is a comma-separated list of older keys that only verify;
//! surrounding whitespace is trimmed and empty entries are ignored. A value that is not
//! UTF-8 is used as its raw bytes, as the contents of a key file are.
//! `SECRET_KEY_FALLBACKS_FILE` names a file holding the same list (commas or newlines
//! separate the keys); setting both is a usage error.
//!
//! The files are read again on every reload (SIGHUP), the variables only at start: a
//! rotation without restarts goes through the two files (docs/operations.md).
//!
//! Key material is read into [`Zeroizing`] buffers and leaves them only as a
//! [`SecretKey`]. Nothing here formats key bytes: errors and `Debug` name the key by its
//! role and where it came from, never by its value.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use countersign::keys::{KeyError, KeyRing, SecretKey};
use zeroize::Zeroizing;

/// The variable holding the current key.
pub const SECRET_KEY: &str = "SECRET_KEY";
/// The variable naming a file that holds the current key.
pub const SECRET_KEY_FILE: &str = "SECRET_KEY_FILE";
/// The variable holding older keys, comma-separated, accepted for verification only.
pub const SECRET_KEY_FALLBACKS: &str = "SECRET_KEY_FALLBACKS";
/// The variable naming a file that holds the older keys (commas or newlines between
/// them), read again on every reload.
pub const SECRET_KEY_FALLBACKS_FILE: &str = "SECRET_KEY_FALLBACKS_FILE";

/// Where environment variables are read from.
///
/// The binary uses [`ProcessEnv`]; tests use a map, so they never touch the process
/// environment (which is shared by every test thread).
pub trait Env {
    /// The value of `name`, if set.
    fn var_os(&self, name: &str) -> Option<OsString>;
}

/// The process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var_os(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name)
    }
}

impl<K, V> Env for BTreeMap<K, V>
where
    K: Borrow<str> + Ord,
    V: AsRef<OsStr>,
{
    fn var_os(&self, name: &str) -> Option<OsString> {
        self.get(name).map(|v| v.as_ref().to_owned())
    }
}

impl<K, V, S> Env for HashMap<K, V, S>
where
    K: Borrow<str> + Eq + std::hash::Hash,
    V: AsRef<OsStr>,
    S: BuildHasher,
{
    fn var_os(&self, name: &str) -> Option<OsString> {
        self.get(name).map(|v| v.as_ref().to_owned())
    }
}

/// A variable's bytes, zeroized on drop; `None` when unset or empty.
fn read_secret(env: &dyn Env, name: &str) -> Option<Zeroizing<Vec<u8>>> {
    let bytes = Zeroizing::new(env.var_os(name)?.into_encoded_bytes());
    (!bytes.is_empty()).then_some(bytes)
}

/// A key's place in the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRole {
    /// The key that signs.
    Current,
    /// The n-th fallback (from 1, in `SECRET_KEY_FALLBACKS` order); verifies only. Its
    /// number is the `key_index` a token verified with it reports.
    Fallback(usize),
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Current => f.write_str("current"),
            Self::Fallback(n) => write!(f, "fallback {n}"),
        }
    }
}

/// Where a key came from (never what it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    /// No variable was set.
    Unset,
    /// The `SECRET_KEY` variable.
    SecretKey,
    /// The file named by `SECRET_KEY_FILE`.
    SecretKeyFile(PathBuf),
    /// The file named by `--secret-key-file`.
    Flag(PathBuf),
    /// An entry of `SECRET_KEY_FALLBACKS`.
    Fallbacks,
    /// An entry of the file named by `SECRET_KEY_FALLBACKS_FILE`.
    FallbacksFile(PathBuf),
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unset => f.write_str("not set"),
            Self::SecretKey => f.write_str(SECRET_KEY),
            Self::SecretKeyFile(path) => write!(f, "{SECRET_KEY_FILE}={}", path.display()),
            Self::Flag(path) => write!(f, "--secret-key-file {}", path.display()),
            Self::Fallbacks => f.write_str(SECRET_KEY_FALLBACKS),
            Self::FallbacksFile(path) => {
                write!(f, "{SECRET_KEY_FALLBACKS_FILE}={}", path.display())
            }
        }
    }
}

/// One key as configured, before the strength rules: its role, its origin and its bytes
/// (or why they could not be read). `Debug` never shows the bytes.
pub struct ConfiguredKey {
    /// Its place in the ring.
    pub role: KeyRole,
    /// Where it came from.
    pub origin: KeyOrigin,
    material: Result<Zeroizing<Vec<u8>>, KeyError>,
}

impl ConfiguredKey {
    /// The key's length in bytes, when it could be read.
    pub fn len(&self) -> Option<usize> {
        self.material.as_ref().ok().map(|m| m.len())
    }

    /// Whether the key is empty (unset) or unreadable.
    pub fn is_empty(&self) -> bool {
        self.len().is_none_or(|n| n == 0)
    }

    /// The key, if it passes the strength rules.
    ///
    /// # Errors
    /// The [`KeyError`] refusing it: missing, unreadable file, placeholder, too short, too
    /// little variety.
    pub fn parse(&self) -> Result<SecretKey, KeyError> {
        match &self.material {
            Ok(bytes) => SecretKey::from_bytes(bytes),
            Err(e) => Err(e.clone()),
        }
    }
}

impl fmt::Debug for ConfiguredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfiguredKey")
            .field("role", &self.role)
            .field("origin", &self.origin)
            .field("material", &"[redacted]")
            .finish()
    }
}

/// Why the key configuration cannot be used. Messages name the fix and never contain key
/// material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Both `SECRET_KEY` and `SECRET_KEY_FILE` are set.
    #[error(
        "both {SECRET_KEY} and {SECRET_KEY_FILE} are set: set only one of them (or pass --secret-key-file)"
    )]
    BothKeySources,
    /// Both `SECRET_KEY_FALLBACKS` and `SECRET_KEY_FALLBACKS_FILE` are set.
    #[error(
        "both {SECRET_KEY_FALLBACKS} and {SECRET_KEY_FALLBACKS_FILE} are set: set only one of them"
    )]
    BothFallbackSources,
    /// One key was refused.
    #[error("{role} key ({origin}): {source}{hint}", hint = file_hint(source))]
    Key {
        /// Its place in the ring.
        role: KeyRole,
        /// Where it came from.
        origin: KeyOrigin,
        /// Why it was refused.
        #[source]
        source: KeyError,
    },
    /// The keys are each acceptable but not together (a duplicate, too many).
    #[error("key ring: {0}")]
    Ring(#[source] KeyError),
}

/// For an unreadable key file, how to make one.
fn file_hint(e: &KeyError) -> String {
    match e {
        KeyError::File { path, .. } => {
            format!("; to create it: (umask 077; countersign keygen > {path})")
        }
        _ => String::new(),
    }
}

/// The keys as configured: what `keys check` inspects and what the ring is built from.
#[derive(Debug)]
pub struct KeyConfig {
    /// The signing key (its material is empty when nothing was set).
    pub current: ConfiguredKey,
    /// The verification-only keys, in order.
    pub fallbacks: Vec<ConfiguredKey>,
}

impl KeyConfig {
    /// Read the keys from `--secret-key-file` (when given) and the environment. Keys are
    /// not judged yet: see [`KeyConfig::ring`] and [`ConfiguredKey::parse`].
    ///
    /// # Errors
    /// [`ConfigError::BothKeySources`] when both `SECRET_KEY` and `SECRET_KEY_FILE` are set
    /// (non-empty) and no flag decides; [`ConfigError::BothFallbackSources`] when both
    /// `SECRET_KEY_FALLBACKS` and `SECRET_KEY_FALLBACKS_FILE` are.
    pub fn load(env: &dyn Env, secret_key_file: Option<&Path>) -> Result<Self, ConfigError> {
        let current = if let Some(path) = secret_key_file {
            file_key(KeyOrigin::Flag(path.to_owned()), path)
        } else {
            let value = read_secret(env, SECRET_KEY);
            let file = env.var_os(SECRET_KEY_FILE).filter(|p| !p.is_empty());
            match (value, file) {
                (Some(_), Some(_)) => return Err(ConfigError::BothKeySources),
                (Some(bytes), None) => ConfiguredKey {
                    role: KeyRole::Current,
                    origin: KeyOrigin::SecretKey,
                    material: Ok(bytes),
                },
                (None, Some(path)) => {
                    let path = PathBuf::from(path);
                    file_key(KeyOrigin::SecretKeyFile(path.clone()), &path)
                }
                (None, None) => ConfiguredKey {
                    role: KeyRole::Current,
                    origin: KeyOrigin::Unset,
                    material: Ok(Zeroizing::new(Vec::new())),
                },
            }
        };
        let list = read_secret(env, SECRET_KEY_FALLBACKS);
        let file = env
            .var_os(SECRET_KEY_FALLBACKS_FILE)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from);
        let fallbacks = match (list, file) {
            (Some(_), Some(_)) => return Err(ConfigError::BothFallbackSources),
            (Some(list), None) => split_fallbacks(&list, b",", &KeyOrigin::Fallbacks),
            (None, Some(path)) => match std::fs::read(&path) {
                Ok(bytes) => {
                    let bytes = Zeroizing::new(bytes);
                    split_fallbacks(&bytes, b",\n", &KeyOrigin::FallbacksFile(path))
                }
                Err(source) => vec![ConfiguredKey {
                    role: KeyRole::Fallback(1),
                    material: Err(KeyError::File {
                        path: path.display().to_string(),
                        source: Arc::new(source),
                    }),
                    origin: KeyOrigin::FallbacksFile(path),
                }],
            },
            (None, None) => Vec::new(),
        };
        Ok(Self { current, fallbacks })
    }

    /// Every key, current first.
    pub fn keys(&self) -> impl Iterator<Item = &ConfiguredKey> {
        std::iter::once(&self.current).chain(&self.fallbacks)
    }

    /// The ring: the current key signs, the fallbacks verify.
    ///
    /// # Errors
    /// [`ConfigError::Key`] for the first key refused (missing, unreadable, weak);
    /// [`ConfigError::Ring`] for a duplicate key or too many keys.
    pub fn ring(&self) -> Result<KeyRing, ConfigError> {
        let parse = |k: &ConfiguredKey| {
            k.parse().map_err(|source| ConfigError::Key {
                role: k.role,
                origin: k.origin.clone(),
                source,
            })
        };
        let current = parse(&self.current)?;
        let fallbacks = self
            .fallbacks
            .iter()
            .map(parse)
            .collect::<Result<Vec<_>, _>>()?;
        KeyRing::new(current, fallbacks).map_err(ConfigError::Ring)
    }
}

/// The fallbacks in `list`, split at any of `separators`, each trimmed of ASCII whitespace,
/// empty entries skipped.
fn split_fallbacks(list: &[u8], separators: &[u8], origin: &KeyOrigin) -> Vec<ConfiguredKey> {
    list.split(|b| separators.contains(b))
        .map(<[u8]>::trim_ascii)
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(i, entry)| ConfiguredKey {
            role: KeyRole::Fallback(i + 1),
            origin: origin.clone(),
            material: Ok(Zeroizing::new(entry.to_vec())),
        })
        .collect()
}

/// The current key read from `path`, as `SecretKey::from_file` reads it: the contents less
/// one trailing `\n` or `\r\n`. Read here rather than by `from_file` so that `keys check`
/// can report the length of a key it refuses.
fn file_key(origin: KeyOrigin, path: &Path) -> ConfiguredKey {
    let material = std::fs::read(path)
        .map(|bytes| {
            let mut bytes = Zeroizing::new(bytes);
            if bytes.ends_with(b"\n") {
                bytes.pop();
                if bytes.ends_with(b"\r") {
                    bytes.pop();
                }
            }
            bytes
        })
        .map_err(|source| KeyError::File {
            path: path.display().to_string(),
            source: Arc::new(source),
        });
    ConfiguredKey {
        role: KeyRole::Current,
        origin,
        material,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key() -> Zeroizing<String> {
        SecretKey::generate(32).unwrap().1
    }

    fn env(vars: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
        vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }

    fn tmp_file(name: &str, contents: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cs-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn current_from_secret_key() {
        let k = key();
        let config = KeyConfig::load(&env(&[(SECRET_KEY, &k)]), None).unwrap();
        assert_eq!(config.current.origin, KeyOrigin::SecretKey);
        let ring = config.ring().unwrap();
        assert_eq!(ring.current(), &SecretKey::parse(&k).unwrap());
        assert_eq!(ring.len(), 1);
    }

    #[test]
    fn unset_and_empty_are_missing() {
        for vars in [vec![], vec![(SECRET_KEY, ""), (SECRET_KEY_FILE, "")]] {
            let config = KeyConfig::load(&env(&vars), None).unwrap();
            assert_eq!(config.current.origin, KeyOrigin::Unset);
            assert!(config.current.is_empty());
            assert!(matches!(
                config.ring(),
                Err(ConfigError::Key {
                    role: KeyRole::Current,
                    source: KeyError::Missing,
                    ..
                })
            ));
        }
    }

    #[test]
    fn both_sources_is_a_usage_error() {
        let k = key();
        let vars = env(&[(SECRET_KEY, &k), (SECRET_KEY_FILE, "/nonexistent")]);
        assert!(matches!(
            KeyConfig::load(&vars, None),
            Err(ConfigError::BothKeySources)
        ));
        // The flag decides.
        let path = tmp_file("both", &format!("{}\n", *k));
        let config = KeyConfig::load(&vars, Some(&path)).unwrap();
        assert_eq!(config.current.origin, KeyOrigin::Flag(path.clone()));
        assert!(config.ring().is_ok());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn key_file_strips_one_newline() {
        let k = key();
        let path = tmp_file("crlf", &format!("{}\r\n", *k));
        let vars = env(&[(SECRET_KEY_FILE, path.to_str().unwrap())]);
        let config = KeyConfig::load(&vars, None).unwrap();
        assert_eq!(config.current.len(), Some(43));
        assert_eq!(
            config.ring().unwrap().current(),
            &SecretKey::parse(&k).unwrap()
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn unreadable_file_names_keygen() {
        let vars = env(&[(SECRET_KEY_FILE, "/nonexistent/countersign/key")]);
        let config = KeyConfig::load(&vars, None).unwrap();
        assert_eq!(config.current.len(), None);
        let err = config.ring().unwrap_err();
        assert!(matches!(
            &err,
            ConfigError::Key {
                source: KeyError::File { .. },
                ..
            }
        ));
        assert!(err.to_string().contains("countersign keygen"), "{err}");
    }

    #[test]
    fn fallbacks_split_trim_and_skip_empty() {
        let (a, b, c) = (key(), key(), key());
        let list = format!(",{}, {} ,,{},", *a, *b, *c);
        let vars = env(&[(SECRET_KEY, &a), (SECRET_KEY_FALLBACKS, &list)]);
        let config = KeyConfig::load(&vars, None).unwrap();
        let roles: Vec<_> = config.keys().map(|k| k.role).collect();
        assert_eq!(
            roles,
            [
                KeyRole::Current,
                KeyRole::Fallback(1),
                KeyRole::Fallback(2),
                KeyRole::Fallback(3)
            ]
        );
        assert!(config.fallbacks.iter().all(|k| k.len() == Some(43)));
        // `a` is both current and fallback 1.
        assert!(matches!(
            config.ring(),
            Err(ConfigError::Ring(KeyError::Duplicate { .. }))
        ));
    }

    #[test]
    fn fallbacks_from_a_file() {
        let (a, b, c) = (key(), key(), key());
        let path = tmp_file("fallbacks", &format!("{}\n\n {} ,{}\r\n", *b, *c, *a));
        let vars = env(&[
            (SECRET_KEY, &key()),
            (SECRET_KEY_FALLBACKS_FILE, path.to_str().unwrap()),
        ]);
        let config = KeyConfig::load(&vars, None).unwrap();
        assert_eq!(config.fallbacks.len(), 3);
        assert!(config.fallbacks.iter().all(|k| k.len() == Some(43)));
        assert_eq!(
            config.fallbacks[0].origin,
            KeyOrigin::FallbacksFile(path.clone())
        );
        assert_eq!(config.ring().unwrap().len(), 4);
        // An empty file: no fallbacks.
        std::fs::write(&path, "\n").unwrap();
        assert!(KeyConfig::load(&vars, None).unwrap().fallbacks.is_empty());
        // A missing file: refused, naming the variable and the file.
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        let err = KeyConfig::load(&vars, None).unwrap().ring().unwrap_err();
        assert!(
            matches!(
                &err,
                ConfigError::Key {
                    role: KeyRole::Fallback(1),
                    source: KeyError::File { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains(SECRET_KEY_FALLBACKS_FILE), "{err}");
        // Not both.
        let vars = env(&[
            (SECRET_KEY_FALLBACKS, &b),
            (SECRET_KEY_FALLBACKS_FILE, "/nonexistent"),
        ]);
        assert!(matches!(
            KeyConfig::load(&vars, None),
            Err(ConfigError::BothFallbackSources)
        ));
    }

    #[test]
    fn weak_fallback_is_refused_with_its_role() {
        let k = key();
        let vars = env(&[(SECRET_KEY, &k), (SECRET_KEY_FALLBACKS, "changeme")]);
        let err = KeyConfig::load(&vars, None).unwrap().ring().unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Key {
                role: KeyRole::Fallback(1),
                source: KeyError::Placeholder,
                ..
            }
        ));
        assert!(
            err.to_string()
                .starts_with("fallback 1 key (SECRET_KEY_FALLBACKS)")
        );
    }

    #[test]
    fn debug_never_shows_material() {
        let k = key();
        let vars = env(&[(SECRET_KEY, &k), (SECRET_KEY_FALLBACKS, &key())]);
        let config = KeyConfig::load(&vars, None).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains(&k[..8]), "{shown}");
        assert!(shown.contains("[redacted]"));
    }
}
