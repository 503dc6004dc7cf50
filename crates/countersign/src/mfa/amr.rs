//! RFC 8176 authentication method references.

use std::fmt;

/// How a user authenticated: a set of RFC 8176 `amr` values. `mfa` is never set by hand:
/// it follows from two kinds of factor (a password and a code or key), or from a passkey
/// verified with the user's PIN or biometric (possession and knowledge or inherence in one
/// ceremony).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Amr(u8);

const NAMES: [(&str, u8); 5] = [
    ("pwd", Amr::PWD.0),
    ("otp", Amr::OTP.0),
    ("hwk", Amr::HWK.0),
    ("swk", Amr::SWK.0),
    ("mfa", Amr::MFA_BIT),
];

impl Amr {
    /// A password.
    pub const PWD: Self = Self(1);
    /// A one-time code: TOTP, or a recovery code.
    pub const OTP: Self = Self(2);
    /// A hardware-bound key (a passkey that cannot be synced off its device).
    pub const HWK: Self = Self(4);
    /// A software key (a passkey that may be synced between devices).
    pub const SWK: Self = Self(8);
    const MFA_BIT: u8 = 16;
    const KEYS: u8 = Self::HWK.0 | Self::SWK.0;

    /// No method (a token made elsewhere, without `amr`).
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Whether every method of `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether nothing is recorded.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets, with `mfa` when the union holds a password and a code or key.
    #[must_use]
    pub const fn with(self, other: Self) -> Self {
        let bits = self.0 | other.0;
        let two_kinds = bits & Self::PWD.0 != 0 && bits & (Self::OTP.0 | Self::KEYS) != 0;
        Self(if two_kinds {
            bits | Self::MFA_BIT
        } else {
            bits
        })
    }

    /// A passkey verified with the user's PIN or biometric: multi-factor by itself.
    #[must_use]
    pub const fn verified_key(backup_eligible: bool) -> Self {
        let key = if backup_eligible {
            Self::SWK
        } else {
            Self::HWK
        };
        Self(key.0 | Self::MFA_BIT)
    }

    /// The bits, for a compact encoding (the sealed challenge).
    pub(crate) const fn bits(self) -> u8 {
        self.0
    }

    /// A set from [`bits`](Self::bits); unknown bits dropped.
    pub(crate) const fn from_bits(bits: u8) -> Self {
        Self(bits & 31)
    }

    /// Whether the login used more than one factor.
    pub const fn is_mfa(self) -> bool {
        self.0 & Self::MFA_BIT != 0
    }

    /// The RFC 8176 names, in a fixed order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        NAMES
            .into_iter()
            .filter(move |(_, bit)| self.0 & bit != 0)
            .map(|(name, _)| name)
    }

    /// The names joined by spaces, as stored.
    pub fn to_text(self) -> String {
        self.names().collect::<Vec<_>>().join(" ")
    }

    /// A set from names (stored text, or a token's `amr` claim). Names this crate does
    /// not know are left out; `mfa` is taken as given, since the issuer decided it.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut bits = 0;
        for name in names {
            if let Some((_, bit)) = NAMES.iter().find(|(n, _)| *n == name) {
                bits |= bit;
            }
        }
        Self(bits)
    }

    /// [`from_names`](Self::from_names) of space-separated text.
    pub fn parse(text: &str) -> Self {
        Self::from_names(text.split_ascii_whitespace())
    }
}

impl fmt::Debug for Amr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mfa_follows_from_two_kinds() {
        assert!(!Amr::PWD.is_mfa());
        assert!(!Amr::OTP.is_mfa());
        assert!(!Amr::OTP.with(Amr::HWK).is_mfa(), "two possession factors");
        let both = Amr::PWD.with(Amr::OTP);
        assert!(both.is_mfa());
        assert_eq!(both.to_text(), "pwd otp mfa");
        assert_eq!(Amr::verified_key(true).to_text(), "swk mfa");
        assert_eq!(Amr::verified_key(false).to_text(), "hwk mfa");
        assert_eq!(Amr::PWD.with(Amr::HWK).to_text(), "pwd hwk mfa");
    }

    #[test]
    fn text_round_trips_and_ignores_unknown_names() {
        for amr in [
            Amr::empty(),
            Amr::PWD,
            Amr::PWD.with(Amr::OTP),
            Amr::verified_key(false),
        ] {
            assert_eq!(Amr::parse(&amr.to_text()), amr);
        }
        assert_eq!(Amr::parse("pwd  kba face"), Amr::PWD);
        assert!(Amr::from_names(["otp", "mfa"]).is_mfa());
    }
}
