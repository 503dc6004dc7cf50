//! The settings of forward authentication and single sign-on: the `[[access]]` rules and
//! `default_policy`, `--forward-auth-domains`, `--cookie-domain` (`docs/forward-auth.md`).

use std::path::{Path, PathBuf};

use super::{Layers, Origin, SettingsError, SettingsFile, split_list};
use crate::access::AccessRules;
use crate::cli::ServeArgs;
use crate::redirect::DomainPattern;

/// Forward authentication's settings, checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardSettings {
    /// The rules and the default policy.
    pub access: AccessRules,
    /// `--default-policy` or `COUNTERSIGN_DEFAULT_POLICY`, which a reload keeps over the
    /// file's `default_policy`.
    pub default_policy_override: Option<String>,
    /// The settings file the rules came from, read again on SIGHUP.
    pub file: Option<PathBuf>,
    /// Hosts (besides the public URLs') a browser may be sent back to after login.
    pub domains: Vec<DomainPattern>,
    /// `Domain=` of the session cookie, for single sign-on across subdomains.
    pub cookie_domain: Option<String>,
}

impl ForwardSettings {
    pub(super) fn resolve(
        args: &ServeArgs,
        l: &Layers<'_>,
        public_urls: &[String],
    ) -> Result<Self, SettingsError> {
        let v = &l.file.values;
        let default_policy_override = l.pick(
            (args.default_policy.clone(), "default-policy"),
            "COUNTERSIGN_DEFAULT_POLICY",
            |s| Ok(s.to_owned()),
            (None::<&String>, "default_policy"),
            |s| Ok(s.clone()),
        )?;
        let access = rules(
            l.file,
            default_policy_override.as_deref(),
            l.origin_of(
                args.default_policy.is_some(),
                "default-policy",
                "COUNTERSIGN_DEFAULT_POLICY",
                "default_policy",
            ),
        )?;

        let domains_flag =
            (!args.forward_auth_domains.is_empty()).then(|| args.forward_auth_domains.clone());
        let domains: Vec<String> = l
            .pick(
                (domains_flag, "forward-auth-domains"),
                "COUNTERSIGN_FORWARD_AUTH_DOMAINS",
                |s| Ok(split_list(s)),
                (v.forward_auth_domains.as_ref(), "forward_auth_domains"),
                |d| Ok(d.clone()),
            )?
            .unwrap_or_default();
        let domains_origin = || {
            l.origin_of(
                !args.forward_auth_domains.is_empty(),
                "forward-auth-domains",
                "COUNTERSIGN_FORWARD_AUTH_DOMAINS",
                "forward_auth_domains",
            )
        };
        let domains = domains
            .iter()
            .map(|d| DomainPattern::parse(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| SettingsError::Invalid {
                origin: domains_origin(),
                message,
            })?;

        let cookie_domain = l.pick(
            (args.cookie_domain.clone(), "cookie-domain"),
            "COUNTERSIGN_COOKIE_DOMAIN",
            |s| Ok(s.to_owned()),
            (v.cookie_domain.as_ref(), "cookie_domain"),
            |s| Ok(s.clone()),
        )?;
        let cookie_domain = cookie_domain
            .filter(|d| !d.trim().is_empty())
            .map(|d| {
                check_cookie_domain(&d, public_urls).map_err(|message| SettingsError::Invalid {
                    origin: l.origin_of(
                        args.cookie_domain.is_some(),
                        "cookie-domain",
                        "COUNTERSIGN_COOKIE_DOMAIN",
                        "cookie_domain",
                    ),
                    message,
                })
            })
            .transpose()?;

        Ok(Self {
            access,
            default_policy_override,
            file: l.file.path.clone(),
            domains,
            cookie_domain,
        })
    }

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
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::ReadFile {
            path: path.clone(),
            source,
        })?;
        let file = SettingsFile::parse(path, &text)?;
        let origin = if self.default_policy_override.is_some() {
            Origin::Flag("default-policy")
        } else {
            file.origin("default_policy")
        };
        rules(&file, self.default_policy_override.as_deref(), origin)
    }
}

/// The file's `[[access]]` rules with `default` (else the file's `default_policy`).
fn rules(
    file: &SettingsFile,
    default: Option<&str>,
    default_origin: Origin,
) -> Result<AccessRules, SettingsError> {
    let v = &file.values;
    let default = default.or(v.default_policy.as_deref());
    let raw = v.access.as_deref().unwrap_or_default();
    AccessRules::new(raw, default).map_err(|e| SettingsError::Invalid {
        origin: if e.label == "default_policy" {
            default_origin
        } else {
            file.origin("access")
        },
        message: e.to_string(),
    })
}

/// A cookie domain: a host name (no wildcard, port or IP address) that every public URL's
/// host is or is below, since a browser refuses a `Domain` that does not cover the host
/// setting the cookie.
fn check_cookie_domain(text: &str, public_urls: &[String]) -> Result<String, String> {
    let domain = text.trim().trim_start_matches('.').to_ascii_lowercase();
    let pattern = DomainPattern::parse(&domain)
        .ok()
        .filter(|_| !domain.starts_with("*."))
        .ok_or_else(|| {
            format!(
                "expected a domain such as example.test (no scheme, port or wildcard), got {text:?}"
            )
        })?;
    if domain.parse::<std::net::IpAddr>().is_ok()
        || domain.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return Err(format!(
            "{text:?} is an IP address: a cookie for one address needs no domain (leave \
             --cookie-domain out)"
        ));
    }
    let suffix = format!(".{pattern}");
    for url in public_urls {
        let host = url
            .split_once("://")
            .map_or(url.as_str(), |(_, rest)| rest)
            .split(':')
            .next()
            .unwrap_or_default();
        if host != domain && !host.ends_with(&suffix) {
            return Err(format!(
                "the public URL {url} is not within the cookie domain {domain}: browsers \
                 would refuse the session cookie there"
            ));
        }
    }
    Ok(domain)
}

impl SettingsFile {
    /// The file's `[[access]]` rules, with `default` (from a flag or the environment) over
    /// the file's `default_policy`.
    ///
    /// # Errors
    /// A bad rule or default policy, named.
    pub fn access_rules(&self, default: Option<&str>) -> Result<AccessRules, SettingsError> {
        let origin = if default.is_some() {
            Origin::Flag("default-policy")
        } else {
            self.origin("default_policy")
        };
        rules(self, default, origin)
    }
}

/// The rules of the settings file `path`, read now.
///
/// # Errors
/// As [`ForwardSettings::reload_rules`].
pub fn rules_in(path: &Path, default: Option<&str>) -> Result<AccessRules, SettingsError> {
    ForwardSettings {
        file: Some(path.to_owned()),
        default_policy_override: default.map(str::to_owned),
        ..ForwardSettings::default()
    }
    .reload_rules()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeMap;

    use clap::Parser as _;

    use crate::access::Policy;
    use crate::cli::{Cli, Command};
    use crate::settings::ServeConfig;

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
    fn rules_and_default_policy_through_the_layers() {
        let file = "default_policy = \"deny\"\n[[access]]\nhost = \"a.test\"\npolicy = \"public\"";
        let c = resolve(&[], &[], file).unwrap();
        assert_eq!(c.forward.access.rules().len(), 1);
        assert_eq!(c.forward.access.default_policy(), &Policy::Deny);
        let c = resolve(&[], &[("COUNTERSIGN_DEFAULT_POLICY", "public")], file).unwrap();
        assert_eq!(c.forward.access.default_policy(), &Policy::Public);
        let c = resolve(&["--default-policy", "role:ops"], &[], file).unwrap();
        assert_eq!(
            c.forward.access.default_policy(),
            &Policy::Role("ops".to_owned())
        );
        let c = resolve(&[], &[], "").unwrap();
        assert_eq!(c.forward.access, AccessRules::default());
    }

    #[test]
    fn a_bad_rule_is_a_startup_error_naming_it() {
        let file = "[[access]]\npolicy = \"public\"\n[[access]]\nname = \"ops\"\npath = \"/ops\"\npolicy = \"role:\"";
        let e = resolve(&[], &[], file).unwrap_err().to_string();
        assert!(
            e.starts_with("/etc/cs/countersign.toml: access: access rule 2 (\"ops\"): "),
            "{e}"
        );
        let e = resolve(&["--default-policy", "allow"], &[], "")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--default-policy: "), "{e}");
        let e = resolve(&[], &[], "[[access]]\npolicy = \"deny\"\nhots = \"x\"").unwrap_err();
        assert!(e.to_string().contains("hots"), "{e}");
    }

    #[test]
    fn forward_auth_domains() {
        let c = resolve(
            &["--forward-auth-domains", "example.test,*.example.test"],
            &[],
            "",
        )
        .unwrap();
        assert_eq!(c.forward.domains.len(), 2);
        let c = resolve(&[], &[("COUNTERSIGN_FORWARD_AUTH_DOMAINS", "a.test")], "").unwrap();
        assert_eq!(c.forward.domains[0].to_string(), "a.test");
        let c = resolve(&[], &[], "forward_auth_domains = [\"*.b.test\"]").unwrap();
        assert_eq!(c.forward.domains[0].to_string(), "*.b.test");
        let e = resolve(&["--forward-auth-domains", "https://a.test"], &[], "").unwrap_err();
        assert!(e.to_string().starts_with("--forward-auth-domains: "), "{e}");
    }

    #[test]
    fn cookie_domain() {
        let c = resolve(
            &[
                "--cookie-domain",
                "Example.Test",
                "--public-url",
                "https://auth.example.test",
            ],
            &[],
            "",
        )
        .unwrap();
        assert_eq!(c.forward.cookie_domain.as_deref(), Some("example.test"));
        let c = resolve(&[], &[], "cookie_domain = \".example.test\"").unwrap();
        assert_eq!(c.forward.cookie_domain.as_deref(), Some("example.test"));
        for bad in [
            "*.example.test",
            "example.test:443",
            "https://example.test",
            "127.0.0.1",
        ] {
            let e = resolve(&["--cookie-domain", bad], &[], "").unwrap_err();
            assert!(e.to_string().starts_with("--cookie-domain: "), "{bad}: {e}");
        }
        let e = resolve(
            &[
                "--cookie-domain",
                "example.test",
                "--public-url",
                "https://auth.other.test",
            ],
            &[],
            "",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("not within the cookie domain"),
            "{e}"
        );
    }

    #[test]
    fn reload_reads_the_file_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("countersign.toml");
        std::fs::write(&path, "[[access]]\npolicy = \"deny\"").unwrap();
        let rules = rules_in(&path, None).unwrap();
        assert_eq!(rules.rules().len(), 1);
        std::fs::write(&path, "[[access]]\npolicy = \"nope\"").unwrap();
        let e = rules_in(&path, None).unwrap_err();
        assert!(e.to_string().contains("access rule 1"), "{e}");
        std::fs::write(&path, "default_policy = \"public\"").unwrap();
        assert_eq!(
            rules_in(&path, Some("deny")).unwrap().default_policy(),
            &Policy::Deny
        );
        assert_eq!(
            rules_in(&path, None).unwrap().default_policy(),
            &Policy::Public
        );
    }
}
