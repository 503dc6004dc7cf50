//! Refresh tokens: opaque, rotated on every use, grouped in families, with reuse
//! detection.
//!
//! A refresh token is 256 random bits shown once to the client. The store keeps only a
//! keyed hash (HMAC with the [`Purpose::RefreshToken`] subkey), so a database leak yields
//! nothing usable. Each login starts a family; each use retires the token and issues the
//! next one of the same family. A retired token presented again means two parties hold the
//! family's tokens, so the whole family is revoked (OAuth 2.0 Security BCP §4.14).

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::b64;
use crate::clock::UnixTime;
use crate::keys::{KeyRing, Purpose, Subkey};
use crate::mfa::Amr;
use crate::user::UserId;

/// A refresh token as the client holds it. Redacted, zeroized.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct RefreshToken([u8; 32]);

impl RefreshToken {
    /// A fresh random token.
    pub fn generate() -> Self {
        Self(crate::random::bytes())
    }

    /// Parse the client's text form (43 base64url characters).
    pub fn parse(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        (s.len() == 43 && matches!(b64::decode_into(s.as_bytes(), &mut out), Ok(32)))
            .then_some(Self(out))
    }

    /// The text form handed to the client.
    pub fn to_text(&self) -> String {
        b64::encode(&self.0)
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken([redacted])")
    }
}

/// The stored form of a refresh token: HMAC under the refresh subkey, base64url.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefreshHash(String);

impl RefreshHash {
    /// Wrap a stored hash.
    pub fn from_stored(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The hash as text, for storage.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Hashes refresh tokens under each key of a ring: the current key's hash is stored for
/// new tokens; lookups try every key, so a rotation does not end refresh families.
pub struct RefreshHasher {
    subkeys: Vec<Subkey>,
}

impl fmt::Debug for RefreshHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshHasher([redacted])")
    }
}

impl RefreshHasher {
    /// A hasher for `ring`.
    pub fn new(ring: &KeyRing) -> Self {
        Self {
            subkeys: ring.subkeys(Purpose::RefreshToken),
        }
    }

    /// The hash to store for a new token.
    pub fn hash(&self, token: &RefreshToken) -> RefreshHash {
        RefreshHash(b64::encode(&self.subkeys[0].mac(&[&token.0])))
    }

    /// The hashes to look a presented token up by, current key first.
    pub fn candidates(&self, token: &RefreshToken) -> Vec<RefreshHash> {
        self.subkeys
            .iter()
            .map(|k| RefreshHash(b64::encode(&k.mac(&[&token.0]))))
            .collect()
    }
}

/// A family's id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FamilyId(pub String);

impl FamilyId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(crate::random::token_id())
    }
}

/// Refresh lifetimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// A family unused this long ends (default 14 days).
    pub idle_secs: i64,
    /// A family ends this long after login whatever happens (default 30 days).
    pub absolute_secs: i64,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            idle_secs: 14 * 24 * 3600,
            absolute_secs: 30 * 24 * 3600,
        }
    }
}

/// A token family: one login's chain of refresh tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshFamily {
    /// Id.
    pub id: FamilyId,
    /// Whose.
    pub user_id: UserId,
    /// Login time.
    pub created_at: UnixTime,
    /// Ends here unless used again.
    pub idle_deadline: UnixTime,
    /// Ends here whatever happens.
    pub absolute_deadline: UnixTime,
    /// How the user authenticated at login (RFC 8176 `amr`), carried into every access
    /// token of the family.
    pub amr: Amr,
    /// When the user authenticated (`auth_time`): the login, not the latest refresh.
    pub auth_time: UnixTime,
}

impl RefreshFamily {
    /// A new family starting at `now`.
    pub fn new(user_id: UserId, policy: &RefreshPolicy, now: UnixTime) -> Self {
        let absolute_deadline = now.add_secs(policy.absolute_secs);
        Self {
            id: FamilyId::generate(),
            user_id,
            created_at: now,
            idle_deadline: now.add_secs(policy.idle_secs).min(absolute_deadline),
            absolute_deadline,
            amr: Amr::PWD,
            auth_time: now,
        }
    }

    /// Whether the family is still usable at `now`.
    pub fn is_live(&self, now: UnixTime) -> bool {
        now < self.idle_deadline.min(self.absolute_deadline)
    }
}

/// What presenting a refresh token did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The token was live: it is retired and the new one stored in the same family.
    Rotated {
        /// The family (with its idle deadline moved).
        family: RefreshFamily,
    },
    /// The token was already retired: the whole family is now revoked.
    Reused {
        /// The revoked family's user, so the caller can log the event.
        user_id: UserId,
    },
    /// No such token, or its family ended or was revoked.
    Invalid,
}
