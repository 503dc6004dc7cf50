//! Recovery codes: ten single-use codes shown once, stored as SHA-256 hashes.
//!
//! Each code is 16 characters drawn uniformly from a 30-letter alphabet without
//! look-alikes (no `0`/`o`, `1`/`l`/`i`, `u`), about 78 random bits, in four groups:
//! `7kq2-mx9d-…`. At 78 bits a
//! plain SHA-256 is enough to store them: no guessing of a leaked hash is within reach,
//! and a lookup needs no key, so a key rotation does not touch them.

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::b64;

/// How many codes a set holds.
pub const COUNT: usize = 10;

/// The alphabet: lowercase letters and digits without `0 o 1 l i u`.
const ALPHABET: &[u8; ALPHABET_LEN] = b"23456789abcdefghjkmnpqrstvwxyz";
const ALPHABET_LEN: usize = 30;

/// Characters in a code, without dashes.
const LEN: usize = 16;

/// The stored form of a code: SHA-256 of its normalized text, base64url.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecoveryHash(String);

impl RecoveryHash {
    /// Wrap a stored hash.
    pub fn from_stored(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The hash as text, for storage.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hash of a code as the user typed it, or `None` when it cannot be a code
    /// (wrong length or characters), so nothing is looked up.
    pub fn of_typed(code: &str) -> Option<Self> {
        let normalized = normalize(code)?;
        Some(Self::of_normalized(&normalized))
    }

    fn of_normalized(normalized: &str) -> Self {
        Self(b64::encode(&Sha256::digest(normalized.as_bytes())))
    }
}

/// A new set of codes: the text to show once, and the hashes to store.
pub struct RecoveryCodes {
    /// The codes, formatted `xxxx-xxxx-xxxx-xxxx`.
    pub codes: Vec<Zeroizing<String>>,
    /// Their hashes, in the same order.
    pub hashes: Vec<RecoveryHash>,
}

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryCodes")
            .field("count", &self.codes.len())
            .finish_non_exhaustive()
    }
}

impl RecoveryCodes {
    /// [`COUNT`] fresh random codes.
    ///
    /// # Errors
    /// When the OS random source fails.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut codes = Vec::with_capacity(COUNT);
        let mut hashes = Vec::with_capacity(COUNT);
        for _ in 0..COUNT {
            let raw = Zeroizing::new(random_code()?);
            hashes.push(RecoveryHash::of_normalized(&raw));
            let mut shown = Zeroizing::new(String::with_capacity(LEN + 3));
            for (i, c) in raw.chars().enumerate() {
                if i > 0 && i % 4 == 0 {
                    shown.push('-');
                }
                shown.push(c);
            }
            codes.push(shown);
        }
        Ok(Self { codes, hashes })
    }
}

/// 16 characters drawn uniformly from the alphabet (rejection sampling: no bias).
fn random_code() -> Result<String, getrandom::Error> {
    let mut out = String::with_capacity(LEN);
    while out.len() < LEN {
        let mut buf = [0u8; 32];
        getrandom::fill(&mut buf)?;
        for b in buf {
            // 240 = 8 × 30: the largest multiple of 30 that fits a byte.
            if usize::from(b) < 240 && out.len() < LEN {
                out.push(char::from(ALPHABET[usize::from(b) % ALPHABET_LEN]));
            }
        }
    }
    Ok(out)
}

/// A typed code without dashes and spaces, lowercased; `None` unless it is 16 characters
/// of the alphabet.
fn normalize(code: &str) -> Option<String> {
    let s: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (s.len() == LEN && s.bytes().all(|b| ALPHABET.contains(&b))).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_distinct_codes_whose_typed_forms_hash_as_stored() {
        let set = RecoveryCodes::generate().unwrap();
        assert_eq!(set.codes.len(), COUNT);
        let mut unique: Vec<_> = set.hashes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), COUNT);
        for (code, hash) in set.codes.iter().zip(&set.hashes) {
            assert_eq!(code.len(), 19, "{}", &**code);
            assert_eq!(RecoveryHash::of_typed(code).as_ref(), Some(hash));
            let typed = code.replace('-', " ").to_uppercase();
            assert_eq!(RecoveryHash::of_typed(&typed).as_ref(), Some(hash));
        }
        for bad in ["", "abcd", "0000-0000-0000-0000", &"a".repeat(17)] {
            assert_eq!(RecoveryHash::of_typed(bad), None, "{bad}");
        }
        assert!(!format!("{set:?}").contains(&*set.codes[0]));
    }
}
