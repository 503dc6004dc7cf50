//! Passkeys (WebAuthn Level 2, through `webauthn-rs`): the relying party's configuration,
//! the record stored for each credential, what the security page shows of it, and the
//! errors of the ceremonies. The ceremonies themselves are methods of
//! [`Auth`](crate::auth::Auth) (`begin_passkey_registration` and the rest).
//!
//! # The relying party
//! A credential is bound to an RP ID (a domain: `auth.example.com`) when it is made, and
//! signs only for pages of that domain; the browser puts the page's origin in what it
//! signs. [`PasskeyConfig`] holds both: the RP ID and the origins allowed to use it,
//! normally the server's public URL. A credential made for another RP ID (its
//! authenticator data names another domain's hash) or presented from another origin is
//! refused. Browsers offer WebAuthn only in secure contexts and only for domain names, so
//! an `https://` origin is needed, or `http://localhost` for development.
//!
//! # Ceremony state
//! Each ceremony has two steps (the options for the browser, then its answer). What the
//! library must remember between them (the random challenge, the credentials allowed) is
//! sealed under the key ring (ChaCha20-Poly1305, [`Purpose::MfaChallenge`]) with its kind,
//! its user and an expiry five minutes ahead, and handed to the browser, which sends it
//! back with its answer. A random nonce inside is counted in the session store on first
//! use, so each state is used once, whichever instance sees it.
//!
//! # What is stored
//! A passkey is a [`Factor`](super::Factor) of kind `Passkey` whose id is the credential
//! id (base64url), so a passwordless login finds its user from the id the browser
//! presents. Its `data` is a [`PasskeyRecord`] in JSON: the library's credential (public
//! key, signature counter, backup flags), the user handle the authenticator keeps, and
//! when, if ever, the signature counter was seen going backwards. Its `counter` mirrors
//! the signature counter and moves only forwards, in one atomic step of the store, so two
//! assertions with one counter value are never both accepted.
//!
//! [`Purpose::MfaChallenge`]: crate::keys::Purpose::MfaChallenge

#[cfg(any(test, feature = "testing"))]
pub mod soft;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{Passkey, Url, Uuid, Webauthn, WebauthnBuilder};

use super::{Factor, FactorId, FactorKind};
use crate::clock::UnixTime;
use crate::store::StoreError;

/// How long a ceremony's state lasts (five minutes, as the browser's own timeout).
pub const PASSKEY_CEREMONY_TTL_SECS: i64 = 300;

/// The most passkeys one user may register (each is listed in every second-factor
/// ceremony's options).
pub const MAX_PASSKEYS_PER_USER: usize = 20;

/// The longest name a passkey may be given, in characters.
pub const MAX_PASSKEY_NAME_CHARS: usize = 64;

/// Why a relying-party configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyConfigError {
    /// The origin is not a URL.
    #[error("{0:?} is not a URL")]
    NotUrl(String),
    /// The host is an IP address: browsers do not offer WebAuthn to IP addresses.
    #[error(
        "{0:?}: passkeys need a domain name (browsers refuse WebAuthn on IP addresses); \
         use localhost for development"
    )]
    IpAddress(String),
    /// Plain HTTP on a host other than localhost: not a secure context.
    #[error(
        "{0:?}: passkeys need https:// (browsers offer WebAuthn only in secure contexts; \
         plain http:// only on localhost)"
    )]
    NotSecure(String),
    /// The origin's host is not the RP ID nor below it.
    #[error("the origin {origin:?} is not on the RP ID {rp_id:?} or one of its subdomains")]
    OutsideRpId {
        /// The RP ID.
        rp_id: String,
        /// The origin.
        origin: String,
    },
}

/// The relying party: the RP ID credentials are bound to and the origins that may use
/// them. Cheap to clone.
#[derive(Clone)]
pub struct PasskeyConfig {
    rp_id: String,
    origins: Vec<String>,
    webauthn: Arc<Webauthn>,
}

impl fmt::Debug for PasskeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasskeyConfig")
            .field("rp_id", &self.rp_id)
            .field("origins", &self.origins)
            .finish()
    }
}

/// `url`'s origin, checked as a place a browser offers WebAuthn.
fn secure_origin(url: &str) -> Result<Url, PasskeyConfigError> {
    let parsed = Url::parse(url).map_err(|_| PasskeyConfigError::NotUrl(url.to_owned()))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(PasskeyConfigError::NotUrl(url.to_owned()));
    }
    let Some(domain) = parsed.domain() else {
        return Err(PasskeyConfigError::IpAddress(url.to_owned()));
    };
    let local = domain == "localhost" || domain.ends_with(".localhost");
    match parsed.scheme() {
        "https" => {}
        "http" if local => {}
        _ => return Err(PasskeyConfigError::NotSecure(url.to_owned())),
    }
    let origin = parsed.origin().ascii_serialization();
    Url::parse(&origin).map_err(|_| PasskeyConfigError::NotUrl(url.to_owned()))
}

impl PasskeyConfig {
    /// Credentials bound to `rp_id` (a domain), used from `origin` (`https://host[:port]`;
    /// a path is ignored).
    ///
    /// # Errors
    /// When `origin` is not a URL, is on an IP address, is plain HTTP on a host other than
    /// localhost, or is not on `rp_id` or a subdomain of it.
    pub fn new(rp_id: &str, origin: &str) -> Result<Self, PasskeyConfigError> {
        Self::build(rp_id, vec![secure_origin(origin)?])
    }

    /// The RP ID and origin of a public URL: its host, and its origin.
    ///
    /// # Errors
    /// As [`PasskeyConfig::new`].
    pub fn from_url(url: &str) -> Result<Self, PasskeyConfigError> {
        let origin = secure_origin(url)?;
        let rp_id = origin.host_str().unwrap_or_default().to_owned();
        Self::build(&rp_id, vec![origin])
    }

    /// Another origin allowed to use the RP ID (a second public URL on a subdomain).
    ///
    /// # Errors
    /// As [`PasskeyConfig::new`].
    pub fn with_origin(self, origin: &str) -> Result<Self, PasskeyConfigError> {
        let mut origins: Vec<Url> = self
            .origins
            .iter()
            .filter_map(|o| Url::parse(o).ok())
            .collect();
        origins.push(secure_origin(origin)?);
        Self::build(&self.rp_id, origins)
    }

    fn build(rp_id: &str, origins: Vec<Url>) -> Result<Self, PasskeyConfigError> {
        let rp_id = rp_id.trim().trim_end_matches('.').to_ascii_lowercase();
        let on_rp = |origin: &Url| {
            origin
                .host_str()
                .is_some_and(|h| h == rp_id || h.ends_with(&format!(".{rp_id}")))
        };
        if let Some(outside) = origins.iter().find(|o| rp_id.is_empty() || !on_rp(o)) {
            return Err(PasskeyConfigError::OutsideRpId {
                rp_id,
                origin: outside.origin().ascii_serialization(),
            });
        }
        let outside = |o: &Url| PasskeyConfigError::OutsideRpId {
            rp_id: rp_id.clone(),
            origin: o.origin().ascii_serialization(),
        };
        let first = &origins[0];
        let mut builder = WebauthnBuilder::new(&rp_id, first).map_err(|_| outside(first))?;
        for origin in &origins[1..] {
            builder = builder.append_allowed_origin(origin);
        }
        let webauthn = builder.build().map_err(|_| outside(first))?;
        Ok(Self {
            origins: origins
                .iter()
                .map(|o| o.origin().ascii_serialization())
                .collect(),
            rp_id,
            webauthn: Arc::new(webauthn),
        })
    }

    /// The RP ID.
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// The allowed origins (`scheme://host[:port]`).
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    pub(crate) fn webauthn(&self) -> &Webauthn {
        &self.webauthn
    }
}

/// What is stored in a passkey factor's `data` (JSON). No secret: the public key, the
/// counter, flags.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PasskeyRecord {
    /// The format's version.
    pub v: u8,
    /// The library's credential: public key, signature counter, flags.
    pub passkey: Passkey,
    /// The RP ID it was registered for: an assertion is accepted only while the server's
    /// RP ID is the same (after a change of public URL, its users register again).
    pub rp_id: String,
    /// The user handle given to the authenticator (the same for all of a user's passkeys,
    /// random, never the user id).
    pub user_handle: Uuid,
    /// Whether the credential may be synced off its device (backup eligible).
    pub backup_eligible: bool,
    /// Whether it is backed up (synced) now, as of its last use.
    pub backup_state: bool,
    /// When the signature counter was last seen going backwards (a cloned key?).
    #[serde(default)]
    pub counter_regressed_at: Option<i64>,
}

impl PasskeyRecord {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| unreachable!("the record serialises"))
    }

    pub(crate) fn from_factor(factor: &Factor) -> Option<Self> {
        if factor.kind != FactorKind::Passkey {
            return None;
        }
        let record: Self = serde_json::from_slice(&factor.data).ok()?;
        (record.v == 1).then_some(record)
    }
}

/// A passkey as the security page shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeySummary {
    /// The credential id (base64url), used to rename or remove it.
    pub id: FactorId,
    /// The name its user gave it.
    pub name: String,
    /// When it was registered.
    pub created_at: UnixTime,
    /// When it last signed in.
    pub last_used_at: Option<UnixTime>,
    /// Whether it may be synced between devices (a software key, `swk`), rather than
    /// bound to one device (`hwk`).
    pub synced: bool,
    /// When its signature counter was last seen going backwards: a sign that the key was
    /// copied. The attempt was refused; the user should remove a key they do not trust.
    pub counter_regressed_at: Option<UnixTime>,
}

impl PasskeySummary {
    pub(crate) fn of(factor: &Factor) -> Option<Self> {
        let record = PasskeyRecord::from_factor(factor)?;
        Some(Self {
            id: factor.id.clone(),
            name: factor.name.clone(),
            created_at: factor.created_at,
            last_used_at: factor.last_used_at,
            synced: record.backup_eligible,
            counter_regressed_at: record.counter_regressed_at.map(UnixTime),
        })
    }
}

/// One step of a ceremony handed to the browser: the options for
/// `navigator.credentials.create()` or `.get()` (JSON, with binary fields in base64url),
/// and the sealed state to send back with the browser's answer.
#[derive(Clone)]
pub struct PasskeyCeremony {
    /// `{"publicKey": {…}}`, as WebAuthn's JSON serialisation of the options.
    pub options: serde_json::Value,
    /// The sealed state (base64url), valid [`PASSKEY_CEREMONY_TTL_SECS`] and once.
    pub state: String,
    /// Seconds until the state expires.
    pub expires_in: i64,
}

impl fmt::Debug for PasskeyCeremony {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasskeyCeremony")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Why a passkey operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasskeyError {
    /// Passkeys are off: no relying party is configured (the server has no public URL).
    #[error("passkeys are not enabled on this server")]
    Disabled,
    /// The ceremony state, or the second-factor challenge, is malformed, expired or used;
    /// or its user is gone or disabled. Start again.
    #[error("this passkey request has expired; start again")]
    Expired,
    /// The browser's answer is not a WebAuthn credential in JSON.
    #[error("the credential is not a WebAuthn credential: {0}")]
    Malformed(String),
    /// The passkey did not verify: an unknown credential, a bad signature, another RP ID
    /// or origin, no user verification, a signature counter that went backwards.
    #[error("the passkey could not be verified")]
    Invalid,
    /// This credential is registered already (to this user or another).
    #[error("this passkey is registered already")]
    AlreadyRegistered,
    /// The user has [`MAX_PASSKEYS_PER_USER`] passkeys.
    #[error("at most {MAX_PASSKEYS_PER_USER} passkeys per account")]
    TooMany,
    /// The name is empty, too long, or holds control characters.
    #[error("a passkey name must be 1 to {MAX_PASSKEY_NAME_CHARS} printable characters")]
    BadName,
    /// Too many failures for this account or address (the login throttle).
    #[error("too many failed attempts; retry in {retry_after}s")]
    Throttled {
        /// Seconds until the window ends.
        retry_after: i64,
    },
    /// A store failed (or the OS random source: retry later).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A passkey's name as given: trimmed, 1 to [`MAX_PASSKEY_NAME_CHARS`] characters, no
/// control characters.
///
/// # Errors
/// [`PasskeyError::BadName`].
pub fn checked_name(name: &str) -> Result<String, PasskeyError> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > MAX_PASSKEY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(PasskeyError::BadName);
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_be_secure_domains_on_the_rp_id() {
        let c = PasskeyConfig::from_url("https://Auth.Example.com/base/").unwrap();
        assert_eq!(c.rp_id(), "auth.example.com");
        assert_eq!(c.origins(), ["https://auth.example.com"]);
        let c = PasskeyConfig::from_url("http://localhost:8080").unwrap();
        assert_eq!(
            (c.rp_id(), c.origins()[0].as_str()),
            ("localhost", "http://localhost:8080")
        );
        assert!(PasskeyConfig::from_url("http://app.localhost:1").is_ok());
        for bad in [
            "http://auth.example.com",
            "https://127.0.0.1:8443",
            "http://[::1]:80",
            "auth.example.com",
            "ftp://auth.example.com",
        ] {
            assert!(PasskeyConfig::from_url(bad).is_err(), "{bad}");
        }
        let c = PasskeyConfig::new("example.com", "https://auth.example.com").unwrap();
        let c = c.with_origin("https://login.example.com:8443").unwrap();
        assert_eq!(c.origins().len(), 2);
        assert!(matches!(
            PasskeyConfig::new("example.com", "https://badexample.com"),
            Err(PasskeyConfigError::OutsideRpId { .. })
        ));
        assert!(PasskeyConfig::new("", "https://example.com").is_err());
        assert!(format!("{c:?}").contains("example.com"));
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(checked_name("  YubiKey 5 ").unwrap(), "YubiKey 5");
        assert!(checked_name("").is_err());
        assert!(checked_name("   ").is_err());
        assert!(checked_name("a\nb").is_err());
        assert!(checked_name(&"é".repeat(64)).is_ok());
        assert!(checked_name(&"é".repeat(65)).is_err());
    }
}
