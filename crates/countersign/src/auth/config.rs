//! The service's configuration: throttling and cache settings.

use std::time::Duration;

use crate::jwt::{Issuance, Validation};
use crate::refresh::RefreshPolicy;
use crate::session::SessionPolicy;

/// Throttling, in windows that start with the first attempt: failed logins per account
/// name and per client address, and registration attempts per client address.
///
/// Logins are reserved in the store before any hashing ([`crate::attempts`]): at most
/// `per_account` guesses per window are ever evaluated for one name, whatever the
/// concurrency and however many instances share the store. A window that reached its
/// limit makes the next one twice as long, up to `max_window_secs`; a successful login
/// clears the account's counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures per account name per window before 429 (default 5).
    pub per_account: u64,
    /// Failures per client address per window before 429 (default 50).
    pub per_address: u64,
    /// Registration attempts per client address per window, successful or not, before
    /// 429 (default 10). See [`Auth::register`](super::Auth::register).
    pub registrations_per_address: u64,
    /// Window length, seconds (default 15 min): the first window of failed logins, and
    /// every window of registrations.
    pub window_secs: i64,
    /// The longest window of failed logins the back-off reaches, seconds (default 24 h).
    /// No lockout outlasts it. Set it to `window_secs` for fixed windows.
    pub max_window_secs: i64,
}

/// How long a login attempt in flight holds its place if its instance never settles it
/// (it died mid-login), seconds: far longer than any login takes.
pub const ATTEMPT_LEASE_SECS: i64 = 30;

impl ThrottlePolicy {
    /// The login windows, as the store takes them.
    pub fn attempt_window(&self) -> crate::attempts::AttemptWindow {
        crate::attempts::AttemptWindow {
            secs: self.window_secs,
            max_secs: self.max_window_secs.max(self.window_secs),
            lease_secs: ATTEMPT_LEASE_SECS,
        }
    }
}

/// The default of [`ThrottlePolicy::registrations_per_address`].
pub const DEFAULT_REGISTRATIONS_PER_ADDRESS: u64 = 10;

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            per_account: 5,
            per_address: 50,
            registrations_per_address: DEFAULT_REGISTRATIONS_PER_ADDRESS,
            window_secs: 15 * 60,
            max_window_secs: 24 * 60 * 60,
        }
    }
}

/// Everything the service is configured with.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// JWT verification rules.
    pub validation: Validation,
    /// JWT issuing rules.
    pub issuance: Issuance,
    /// Session lifetimes.
    pub sessions: SessionPolicy,
    /// Refresh-family lifetimes.
    pub refresh: RefreshPolicy,
    /// Login and registration throttling.
    pub throttle: ThrottlePolicy,
    /// How long hot-path cache entries live (see the module docs). Zero disables it.
    pub cache_ttl: Duration,
    /// The passkey relying party (RP ID and origins); `None` (the default) turns passkeys
    /// off.
    #[cfg(feature = "passkeys")]
    pub passkeys: Option<crate::mfa::passkey::PasskeyConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            validation: Validation::default(),
            issuance: Issuance::default(),
            sessions: SessionPolicy::default(),
            refresh: RefreshPolicy::default(),
            throttle: ThrottlePolicy::default(),
            cache_ttl: Duration::from_secs(1),
            #[cfg(feature = "passkeys")]
            passkeys: None,
        }
    }
}
