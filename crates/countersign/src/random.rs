//! Random values: token ids, opaque tokens.
//!
//! Keys come straight from the OS ([`getrandom`]); the many small values made per request
//! come from the thread-local CSPRNG of `rand` (ChaCha12, seeded and periodically reseeded
//! from the OS), which is two orders of magnitude cheaper than a system call each.

use rand::RngCore as _;

/// `N` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::rng().fill_bytes(&mut out);
    out
}

/// A 128-bit random id as 22 base64url characters (for `jti`).
pub fn token_id() -> String {
    crate::b64::encode(&bytes::<16>())
}

/// A 256-bit random opaque token as 43 base64url characters (refresh tokens, session ids).
pub fn opaque_token() -> String {
    crate::b64::encode(&bytes::<32>())
}
