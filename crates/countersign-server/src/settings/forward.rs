//! The settings of forward authentication and single sign-on: the `[[access]]` rules and
//! `default_policy`, `--forward-auth-domains`, `--cookie-domain` (`docs/forward-auth.md`).
//! The rules are read again on SIGHUP ([`ForwardSettings::reload_rules`]).

use std::path::PathBuf;

use super::error::{Origin, SettingsError};
use crate::access::{AccessRules, RawRule};
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

/// The `[[access]]` rules (`access`: the file's value and where it is) with the default
/// policy (`default`: the text and where it came from).
pub(super) fn rules(
    access: Option<(&toml::Value, Origin)>,
    default: Option<(&str, Origin)>,
) -> Result<AccessRules, SettingsError> {
    let raw: Vec<RawRule> = match &access {
        None => Vec::new(),
        Some((value, origin)) => {
            (*value)
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| SettingsError::Invalid {
                    origin: origin.clone(),
                    message: e.message().trim().to_owned(),
                })?
        }
    };
    AccessRules::new(&raw, default.as_ref().map(|(text, _)| *text)).map_err(|e| {
        let origin = match (&default, &access) {
            (Some((_, origin)), _) if e.label == "default_policy" => origin.clone(),
            (_, Some((_, origin))) => origin.clone(),
            (Some((_, origin)), None) => origin.clone(),
            (None, None) => Origin::Flag("default-policy"),
        };
        SettingsError::Invalid {
            origin,
            message: e.to_string(),
        }
    })
}

/// A cookie domain: a host name (no wildcard, port or IP address) that every public URL's
/// host is or is below, since a browser refuses a `Domain` that does not cover the host
/// setting the cookie.
pub(super) fn check_cookie_domain(text: &str, public_urls: &[String]) -> Result<String, String> {
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
