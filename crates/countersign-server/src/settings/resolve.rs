//! The resolver: for each setting of [`SETTINGS`], in order, the first layer that has a
//! value (flag, then environment variable, then settings file) is read and checked by the
//! setting's own parser, and every error names that layer (`--addr`, `COUNTERSIGN_ADDR`,
//! `countersign.toml: addr`). What no layer sets keeps its default. The checks that
//! involve more than one setting run after the walk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::config::{ServeConfig, StorageConfig};
use super::error::{Origin, SettingsError};
use super::file::SettingsFile;
use super::forward::{self, ForwardSettings};
use super::raw::Raw;
use super::table::{SETTINGS, Scope, Setting, Value, setting};
use crate::access::AccessRules;
use crate::cli::{ServeArgs, SettingFlags, StorageArgs};
use crate::config::Env;

/// Where each setting is looked for.
struct Layers<'a> {
    flags: &'a [&'a SettingFlags],
    env: &'a dyn Env,
    file: &'a SettingsFile,
}

impl<'a> Layers<'a> {
    /// The value of `s` in the first layer that has one, and where it came from.
    fn find(&self, s: &Setting) -> Result<Option<(Raw<'a>, Origin)>, SettingsError> {
        if let Some(values) = self.flags.iter().find_map(|f| f.get(s.name)) {
            let raw = match s.value {
                Value::Switch => Raw::Switch,
                Value::One(_) | Value::List(_) => Raw::Flag(values),
            };
            return Ok(Some((raw, Origin::Flag(s.flag))));
        }
        if let Some(var) = s.env {
            match self.env.var_os(var) {
                Some(v) if !v.is_empty() => {
                    let text = v.into_string().map_err(|_| SettingsError::Invalid {
                        origin: Origin::Env(var),
                        message: "not valid UTF-8".to_owned(),
                    })?;
                    return Ok(Some((Raw::Env(text), Origin::Env(var))));
                }
                _ => {}
            }
        }
        Ok(s.keys.iter().find_map(|key| {
            let value = self.file.get(key)?;
            Some((Raw::File(value, self.file.dir()), self.file.origin(key)))
        }))
    }

    /// Walk the settings of `scopes` into `config`; record where each value came from.
    fn walk(&self, config: &mut ServeConfig, scopes: &[Scope]) -> Result<Origins, SettingsError> {
        let mut origins = Origins::default();
        for s in SETTINGS.iter().filter(|s| scopes.contains(&s.scope)) {
            if let Some((raw, origin)) = self.find(s)? {
                (s.apply)(config, &raw).map_err(|refusal| refusal.at(origin.clone()))?;
                origins.0.insert(s.name, origin);
            }
        }
        Ok(origins)
    }
}

/// Where each setting that is not at its default came from.
#[derive(Debug, Default)]
struct Origins(BTreeMap<&'static str, Origin>);

impl Origins {
    fn get(&self, name: &str) -> Option<&Origin> {
        self.0.get(name)
    }

    /// The error for the value of `name`.
    fn invalid(&self, name: &'static str, message: String) -> SettingsError {
        let origin = self.0.get(name).cloned().unwrap_or_else(|| {
            // Only settings a layer set are checked after the walk.
            Origin::Flag(setting(name).map_or(name, |s| s.flag))
        });
        SettingsError::Invalid { origin, message }
    }
}

/// `--config`, if given.
fn config_flag(flags: &SettingFlags) -> Option<PathBuf> {
    flags.get("config")?.last().map(PathBuf::from)
}

impl StorageConfig {
    /// Resolve the storage settings (`--data-dir`, `--database-url`, `--session-store`
    /// and the pool's and Redis's options) through the layers.
    ///
    /// # Errors
    /// A settings file that cannot be read or parsed, or a bad value.
    pub fn resolve(args: &StorageArgs, env: &dyn Env) -> Result<Self, SettingsError> {
        let file = SettingsFile::load(config_flag(&args.flags).as_deref(), env)?;
        let layers = Layers {
            flags: &[&args.flags],
            env,
            file: &file,
        };
        let mut config = ServeConfig::default();
        layers.walk(&mut config, &[Scope::Storage])?;
        Ok(config.storage)
    }
}

impl ServeConfig {
    /// Resolve `serve`'s settings through the layers and check them.
    ///
    /// # Errors
    /// A settings file that cannot be read or parsed, or a bad value.
    pub fn resolve(args: &ServeArgs, env: &dyn Env) -> Result<Self, SettingsError> {
        let file = SettingsFile::load(config_flag(&args.storage.flags).as_deref(), env)?;
        Self::resolve_with_file(args, env, &file)
    }

    /// As [`Self::resolve`], with the settings file already read.
    ///
    /// # Errors
    /// As [`Self::resolve`].
    pub fn resolve_with_file(
        args: &ServeArgs,
        env: &dyn Env,
        file: &SettingsFile,
    ) -> Result<Self, SettingsError> {
        let layers = Layers {
            flags: &[&args.storage.flags, &args.settings.flags],
            env,
            file,
        };
        let mut config = Self {
            secret_key_file: args.keys.secret_key_file.clone(),
            signing: args.keys.signing.clone(),
            ..Self::default()
        };
        let origins = layers.walk(&mut config, &[Scope::Storage, Scope::Serve])?;
        config.check(&origins, file)?;
        Ok(config)
    }

    /// The checks that involve more than one setting, and the settings-file tables.
    fn check(&mut self, origins: &Origins, file: &SettingsFile) -> Result<(), SettingsError> {
        if self.production && self.insecure_cookies {
            return Err(origins.invalid(
                "insecure_cookies",
                "insecure cookies are for plain-HTTP development and are refused in \
                 production (serve over HTTPS, or behind a proxy that does)"
                    .to_owned(),
            ));
        }

        let throttle = &mut self.auth.throttle;
        if origins.get("login_max_window").is_some() {
            if throttle.max_window_secs < throttle.window_secs {
                return Err(origins.invalid(
                    "login_max_window",
                    format!(
                        "must be at least the login window ({}s), got {}s",
                        throttle.window_secs, throttle.max_window_secs
                    ),
                ));
            }
        } else {
            throttle.max_window_secs = throttle.max_window_secs.max(throttle.window_secs);
        }

        if let Some(domain) = &self.forward.cookie_domain {
            let checked = forward::check_cookie_domain(domain, &self.public_urls)
                .map_err(|message| origins.invalid("cookie_domain", message))?;
            self.forward.cookie_domain = Some(checked);
        }
        let default = origins.get("default_policy").map(|origin| {
            (
                self.forward.access.default_policy().to_string(),
                origin.clone(),
            )
        });
        self.forward.access = forward::rules(
            file.get("access").map(|v| (v, file.origin("access"))),
            default
                .as_ref()
                .map(|(text, origin)| (text.as_str(), origin.clone())),
        )?;
        self.forward.file = file.path().map(Path::to_owned);

        if let Some(table) = file.get("flask") {
            self.flask = Some(super::flask::bridge(table, |key| file.origin(key))?);
        }
        Ok(())
    }
}

impl ForwardSettings {
    /// The rules of the settings file, read again (SIGHUP). The default policy given by
    /// flag or environment at start still wins over the file's.
    ///
    /// # Errors
    /// The file cannot be read or parsed, or a rule is bad: the caller keeps the rules it
    /// has.
    pub fn reload_rules(&self) -> Result<AccessRules, SettingsError> {
        let Some(path) = &self.file else {
            return Ok(self.access.clone());
        };
        access_rules(
            &SettingsFile::read(path)?,
            self.default_policy_override.as_deref(),
        )
    }
}

/// The `[[access]]` rules of `file` with `default` (from a flag or the environment) over
/// the file's `default_policy`.
///
/// # Errors
/// A bad rule or default policy, named.
pub fn access_rules(
    file: &SettingsFile,
    default: Option<&str>,
) -> Result<AccessRules, SettingsError> {
    let default = match default {
        Some(text) => Some((text.to_owned(), Origin::Flag("default-policy"))),
        None => match file.get("default_policy") {
            Some(toml::Value::String(text)) => Some((text.clone(), file.origin("default_policy"))),
            Some(other) => {
                return Err(SettingsError::Invalid {
                    origin: file.origin("default_policy"),
                    message: format!("expected a string, got a TOML {}", other.type_str()),
                });
            }
            None => None,
        },
    };
    forward::rules(
        file.get("access").map(|v| (v, file.origin("access"))),
        default
            .as_ref()
            .map(|(text, origin)| (text.as_str(), origin.clone())),
    )
}

/// The rules of the settings file `path`, read now.
///
/// # Errors
/// As [`ForwardSettings::reload_rules`].
pub fn rules_in(path: &Path, default: Option<&str>) -> Result<AccessRules, SettingsError> {
    access_rules(&SettingsFile::read(path)?, default)
}

/// The access rules `countersign access check` tests: those of the settings file `args`
/// name, with the default policy of `--default-policy` (`flag`), else
/// `COUNTERSIGN_DEFAULT_POLICY`, else the file's.
///
/// # Errors
/// A settings file that cannot be read or parsed, or a bad rule or default policy.
pub fn access_check_rules(
    args: &StorageArgs,
    flag: Option<&str>,
    env: &dyn Env,
) -> Result<AccessRules, SettingsError> {
    let file = SettingsFile::load(config_flag(&args.flags).as_deref(), env)?;
    let mut flags = SettingFlags::default();
    if let Some(policy) = flag {
        flags.set("default_policy", vec![policy.to_owned()]);
    }
    let layers = Layers {
        flags: &[&flags],
        env,
        file: &file,
    };
    let default = match setting("default_policy") {
        Some(s) => layers.find(s)?,
        None => None,
    };
    let default = match &default {
        Some((raw, origin)) => Some((
            raw.text().map_err(|r| r.at(origin.clone()))?,
            origin.clone(),
        )),
        None => None,
    };
    forward::rules(
        file.get("access").map(|v| (v, file.origin("access"))),
        default
            .as_ref()
            .map(|(text, origin)| (text.as_str(), origin.clone())),
    )
}
