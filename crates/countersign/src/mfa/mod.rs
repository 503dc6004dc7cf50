//! Second factors: TOTP codes (RFC 6238), passkeys (WebAuthn), recovery codes; and how a
//! login was made, as RFC 8176 `amr` values.
//!
//! A user's factors are stored with the user ([`FactorStore`](crate::store::FactorStore)):
//! a TOTP secret sealed under a key derived from the key ring ([`Purpose::MfaSecret`]),
//! a passkey as the WebAuthn library's credential record, recovery codes as SHA-256
//! hashes of 78 random bits each. The login flow is in [`Auth`](crate::auth::Auth):
//! a password that matches for a user with a confirmed factor gives a short-lived,
//! single-use *challenge* ([`Auth::mfa_challenge`](crate::auth::Auth::mfa_challenge)),
//! never a session; the challenge and a valid second factor give the session or tokens,
//! whose `amr` then says `mfa`.
//!
//! [`Purpose::MfaSecret`]: crate::keys::Purpose::MfaSecret

mod amr;
#[cfg(feature = "passkeys")]
pub mod passkey;
pub mod recovery;
pub(crate) mod seal;
pub mod totp;

use std::fmt;

pub use amr::Amr;

use crate::clock::UnixTime;
use crate::user::UserId;

/// A factor's id: random for a TOTP secret, the credential id (base64url) for a passkey,
/// so that a passwordless login finds the passkey's user by the id the browser presents.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FactorId(pub String);

impl FactorId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(crate::random::token_id())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What kind of second factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FactorKind {
    /// An RFC 6238 authenticator app.
    Totp,
    /// A WebAuthn credential (security key, platform authenticator, synced passkey).
    Passkey,
}

impl FactorKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Passkey => "passkey",
        }
    }

    /// The kind a stored name names.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "totp" => Some(Self::Totp),
            "passkey" => Some(Self::Passkey),
            _ => None,
        }
    }
}

/// A stored second factor. `Debug` leaves out `data`.
#[derive(Clone, PartialEq, Eq)]
pub struct Factor {
    /// Id ([`FactorId`]).
    pub id: FactorId,
    /// Whose.
    pub user_id: UserId,
    /// What kind.
    pub kind: FactorKind,
    /// The name the user gave it ("Phone", "YubiKey"), shown on the security page.
    pub name: String,
    /// TOTP: the sealed secret. Passkey: the WebAuthn credential record (public key,
    /// counter), serialised by the WebAuthn library.
    pub data: Vec<u8>,
    /// TOTP: the last time step accepted (a code is accepted once). Passkey: unused (the
    /// signature counter lives in `data`).
    pub counter: i64,
    /// Whether enrolment finished: a TOTP secret counts only once a first code proved the
    /// app has it.
    pub confirmed: bool,
    /// When it was added.
    pub created_at: UnixTime,
    /// When it last let someone in.
    pub last_used_at: Option<UnixTime>,
}

impl fmt::Debug for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Factor")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("data", &"[redacted]")
            .field("counter", &self.counter)
            .field("confirmed", &self.confirmed)
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .finish()
    }
}

/// A stored recovery code: its hash and whether (when) it was used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryCodeRecord {
    /// [`recovery::RecoveryHash`] of the code.
    pub hash: recovery::RecoveryHash,
    /// When the set was made.
    pub created_at: UnixTime,
    /// When it was used, if it was.
    pub used_at: Option<UnixTime>,
}
