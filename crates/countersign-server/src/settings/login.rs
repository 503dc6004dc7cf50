//! The login throttle's settings: `--login-limit`, `--login-address-limit`,
//! `--login-window`, `--login-max-window` (`docs/decisions.md`, "Login attempts are
//! reserved in the store before any hashing").

use countersign::auth::ThrottlePolicy;

use super::{FileDuration, Layers, Origin, SettingsError, file_duration, positive};
use crate::cli::{Seconds, ServeArgs, parse_seconds};

/// The largest `--login-limit` and `--login-address-limit`.
pub const MAX_LOGIN_LIMIT: u64 = 1_000_000;

fn limit(n: u64) -> Result<u64, String> {
    if (1..=MAX_LOGIN_LIMIT).contains(&n) {
        Ok(n)
    } else {
        Err(format!("expected 1 to {MAX_LOGIN_LIMIT}, got {n}"))
    }
}

/// `base` with the login settings of the flags, environment and file applied.
pub(super) fn resolve(
    args: &ServeArgs,
    l: &Layers<'_>,
    base: ThrottlePolicy,
) -> Result<ThrottlePolicy, SettingsError> {
    let v = &l.file.values;
    let count = |flag: Option<u64>, name, var, key, file: Option<&u64>| {
        if let Some(n) = flag {
            return limit(n)
                .map(Some)
                .map_err(|message| SettingsError::Invalid {
                    origin: Origin::Flag(name),
                    message,
                });
        }
        l.pick(
            (None, name),
            var,
            |s| {
                s.parse::<u64>()
                    .map_err(|_| format!("expected a whole number, got {s:?}"))
                    .and_then(limit)
            },
            (file, key),
            |n| limit(*n),
        )
    };
    let window = |flag: Option<Seconds>, name, var, key, file: Option<&FileDuration>| {
        l.pick(
            (flag, name),
            var,
            |s| parse_seconds(s).and_then(positive),
            (file, key),
            |f| file_duration(f).and_then(positive),
        )
    };
    let per_account = count(
        args.login_limit,
        "login-limit",
        "COUNTERSIGN_LOGIN_LIMIT",
        "login_limit",
        v.login_limit.as_ref(),
    )?
    .unwrap_or(base.per_account);
    let per_address = count(
        args.login_address_limit,
        "login-address-limit",
        "COUNTERSIGN_LOGIN_ADDRESS_LIMIT",
        "login_address_limit",
        v.login_address_limit.as_ref(),
    )?
    .unwrap_or(base.per_address);
    let window_secs = window(
        args.login_window,
        "login-window",
        "COUNTERSIGN_LOGIN_WINDOW",
        "login_window",
        v.login_window.as_ref(),
    )?
    .map_or(base.window_secs, |s| s.0);
    let max = window(
        args.login_max_window,
        "login-max-window",
        "COUNTERSIGN_LOGIN_MAX_WINDOW",
        "login_max_window",
        v.login_max_window.as_ref(),
    )?;
    let max_window_secs = match max {
        Some(s) if s.0 < window_secs => {
            return Err(SettingsError::Invalid {
                origin: l.origin_of(
                    args.login_max_window.is_some(),
                    "login-max-window",
                    "COUNTERSIGN_LOGIN_MAX_WINDOW",
                    "login_max_window",
                ),
                message: format!(
                    "must be at least the login window ({window_secs}s), got {}s",
                    s.0
                ),
            });
        }
        Some(s) => s.0,
        None => base.max_window_secs.max(window_secs),
    };
    Ok(ThrottlePolicy {
        per_account,
        per_address,
        window_secs,
        max_window_secs,
        ..base
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;
    use std::path::Path;

    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};
    use crate::settings::{ServeConfig, SettingsFile};

    fn resolve(
        args: &[&str],
        vars: &[(&'static str, &str)],
        toml: &str,
    ) -> Result<ServeConfig, SettingsError> {
        let argv = ["countersign", "serve"].iter().chain(args);
        let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!()
        };
        let env: BTreeMap<&'static str, String> =
            vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let file = SettingsFile::parse(Path::new("/etc/cs/countersign.toml"), toml)?;
        ServeConfig::resolve_with_file(&args, &env, &file)
    }

    #[test]
    fn login_limits_through_the_layers() {
        let c = resolve(&[], &[], "").unwrap();
        assert_eq!(c.throttle, ThrottlePolicy::default());
        assert_eq!((c.throttle.per_account, c.throttle.per_address), (5, 50));
        assert_eq!(
            (c.throttle.window_secs, c.throttle.max_window_secs),
            (900, 86_400)
        );
        let file = "login_limit = 3\nlogin_address_limit = 30\nlogin_window = \"5m\"\n\
                    login_max_window = \"1h\"";
        let c = resolve(&[], &[], file).unwrap();
        assert_eq!(
            (
                c.throttle.per_account,
                c.throttle.per_address,
                c.throttle.window_secs,
                c.throttle.max_window_secs
            ),
            (3, 30, 300, 3600)
        );
        let c = resolve(
            &["--login-limit", "7", "--login-window", "1m"],
            &[("COUNTERSIGN_LOGIN_ADDRESS_LIMIT", "70")],
            file,
        )
        .unwrap();
        assert_eq!(
            (
                c.throttle.per_account,
                c.throttle.per_address,
                c.throttle.window_secs
            ),
            (7, 70, 60)
        );
        assert_eq!(c.auth_config().throttle, c.throttle);
        // The registration limit is its own setting.
        assert_eq!(c.throttle.registrations_per_address, 10);
    }

    #[test]
    fn bad_login_limits_name_their_origin() {
        let e = resolve(&["--login-limit", "0"], &[], "").unwrap_err();
        assert!(e.to_string().starts_with("--login-limit"), "{e}");
        let e = resolve(&[], &[("COUNTERSIGN_LOGIN_LIMIT", "many")], "").unwrap_err();
        assert!(e.to_string().starts_with("COUNTERSIGN_LOGIN_LIMIT"), "{e}");
        let e = resolve(&[], &[], "login_window = \"1h\"\nlogin_max_window = \"5m\"").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/etc/cs/countersign.toml: login_max_window"),
            "{e}"
        );
    }
}
