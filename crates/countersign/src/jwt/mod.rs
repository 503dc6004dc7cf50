//! JSON Web Tokens (RFC 7519 over RFC 7515 compact serialization), strictly: HS256 with the
//! shared key ring, and EdDSA / ES256 with asymmetric keys ([`asymmetric`]'s
//! [`TokenKeys`], [`verify_any`]).
//!
//! Verification runs in this order, and nothing from the token is trusted before the MAC
//! matches: size → three segments → header (strict base64url, strict JSON) → algorithm,
//! pinned by the verifier to `HS256` → `kid` lookup in the ring (a map key, nothing more) →
//! MAC in constant time → claims (types, then `exp`/`nbf`/`iat`/`iss`/`aud` with leeway).
//! The asymmetric path differs only in the key lookup (the `kid`'s key dictates the
//! algorithm) and the signature check.
//!
//! Why we do not use a general JWT crate, and what we refuse that others accept:
//! `docs/jwt.md`.

pub mod asymmetric;
mod claims;
mod compact;
pub mod dangerous;
mod error;
mod fast;
mod hs256;
mod strict;

pub use self::asymmetric::{
    DEFAULT_JWKS_MAX_AGE_SECS, IssueError, Jwks, PublicKeys, Signer, TokenKeys, TokenKeysError,
    encode_signed, issue_signed, verify_any,
};
pub use self::claims::{Claims, MAX_NUMERIC_DATE, REGISTERED};
pub use self::compact::{
    DEFAULT_LEEWAY_SECS, DEFAULT_MAX_TOKEN_BYTES, Issuance, Issued, ReservedClaim, Subject,
    Validation, Verified,
};
pub use self::error::{JwtError, Part};
pub use self::hs256::{encode, issue, verify};
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub use self::hs256::{fuzz_ring, fuzz_verify, fuzz_verify_signed};
pub(crate) use self::strict::parse_strict_object;
pub use crate::signing::Algorithm;
