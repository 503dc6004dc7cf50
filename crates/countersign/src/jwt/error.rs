//! Why a token was refused: one error kind per rule, and the part of the token it is about.

use std::fmt;

use super::strict::StrictError;
use crate::b64::B64Error;

/// Which part of the token an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The JOSE header.
    Header,
    /// The claims.
    Payload,
    /// The MAC.
    Signature,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "header",
            Self::Payload => "payload",
            Self::Signature => "signature",
        })
    }
}

/// Why a token was refused: one kind per rule.
///
/// `Display` gives a reason a developer can act on (for the CLI and logs). Values copied
/// from the token are truncated and escaped. Never show these to an HTTP client: RFC 6750
/// responses say only `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// The token is longer than the configured limit.
    #[error("token is {len} bytes, over the {max}-byte limit")]
    TooLarge {
        /// The token's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not three dot-separated segments.
    #[error("not a compact JWS: expected three dot-separated segments")]
    SegmentCount,
    /// A segment is not strict unpadded base64url.
    #[error("the {part} is not unpadded base64url ({detail})")]
    Base64 {
        /// Which segment.
        part: Part,
        /// What was wrong.
        detail: &'static str,
    },
    /// A segment is not valid JSON (or not UTF-8, or nested too deeply).
    #[error("the {part} is not valid JSON: {detail}")]
    Json {
        /// Which segment.
        part: Part,
        /// The parser's message.
        detail: String,
    },
    /// A segment is JSON but not an object.
    #[error("the {part} is not a JSON object")]
    NotAnObject {
        /// Which segment.
        part: Part,
    },
    /// A member name appears twice in one object.
    #[error("the {part} has a duplicate member {name:?}")]
    DuplicateMember {
        /// Which segment.
        part: Part,
        /// The repeated name (truncated).
        name: String,
    },
    /// The header has no `alg`, or it is not a string.
    #[error("the header has no algorithm (alg)")]
    MissingAlgorithm,
    /// The header names an algorithm this verifier does not accept (anything but HS256
    /// for the key ring; with public keys, also EdDSA or ES256 when a key of that
    /// algorithm is held).
    #[error("algorithm {alg:?} not accepted")]
    AlgorithmNotAccepted {
        /// The algorithm named (truncated).
        alg: String,
    },
    /// The `kid` names a key of another algorithm: the key dictates the algorithm, never
    /// the token.
    #[error("algorithm {alg} does not match the key the kid names ({key_alg})")]
    WrongAlgorithmForKey {
        /// The header's algorithm.
        alg: &'static str,
        /// The key's.
        key_alg: &'static str,
    },
    /// The header uses a parameter we refuse (`crit`, `b64`, `zip`, `jku`, `x5u`, `jwk`,
    /// `x5c`).
    #[error("header parameter {name:?} is not accepted")]
    ForbiddenHeader {
        /// The parameter.
        name: &'static str,
    },
    /// `typ` is present and not `JWT` or `at+jwt`.
    #[error("token type {typ:?} not accepted (expected JWT)")]
    UnsupportedType {
        /// The type named (truncated).
        typ: String,
    },
    /// `kid` or `typ` is present but not a string.
    #[error("header parameter {name:?} must be a string")]
    InvalidHeaderParameter {
        /// The parameter.
        name: &'static str,
    },
    /// The `kid` names no key of the ring.
    #[error("signed with a key not in the ring (kid {kid:?})")]
    UnknownKey {
        /// The kid (truncated).
        kid: String,
    },
    /// The signature segment is not strict base64url of the algorithm's length (32 bytes
    /// for HS256; 64 raw bytes for EdDSA and ES256, so a DER-encoded ECDSA signature is
    /// refused here).
    #[error(
        "the signature is not a base64url value of the algorithm's length (HS256: 32 bytes; EdDSA and ES256: 64 raw bytes, not DER)"
    )]
    MalformedSignature,
    /// The MAC does not match any candidate key.
    #[error("signature does not match{}", if *.tried > 1 { format!(" any of the {tried} keys in the ring") } else { String::new() })]
    InvalidSignature {
        /// How many keys were tried.
        tried: usize,
    },
    /// A required claim is absent.
    #[error("required claim {name:?} is missing")]
    MissingClaim {
        /// The claim.
        name: &'static str,
    },
    /// A registered claim has the wrong JSON type.
    #[error("claim {name:?} must be {expected}")]
    InvalidClaim {
        /// The claim.
        name: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// A time claim is negative, too large, or overflows.
    #[error("claim {name:?} is out of range (0 to year 9999)")]
    ClaimOutOfRange {
        /// The claim.
        name: &'static str,
    },
    /// `exp` has passed (beyond the leeway).
    #[error("expired {} ago", Dur(*.ago))]
    Expired {
        /// Seconds since `exp`.
        ago: i64,
    },
    /// `nbf` is in the future (beyond the leeway).
    #[error("not valid yet: valid in {}", Dur(*.in_secs))]
    NotYetValid {
        /// Seconds until `nbf`.
        in_secs: i64,
    },
    /// `iat` is in the future (beyond the leeway).
    #[error("issued in the future ({} ahead of this clock)", Dur(*.ahead))]
    IssuedInFuture {
        /// Seconds ahead.
        ahead: i64,
    },
    /// `iss` is absent or not the configured issuer.
    #[error("issuer {found:?} is not the expected issuer")]
    WrongIssuer {
        /// The issuer found (truncated), if any.
        found: Option<String>,
    },
    /// `aud` does not contain the configured audience, or the token has an audience and
    /// none is configured (RFC 7519 §4.1.3).
    #[error("audience does not match")]
    WrongAudience,
}

impl JwtError {
    /// Whether the token was refused only because it expired (the contract's
    /// "Token has expired!").
    pub fn is_expired(&self) -> bool {
        matches!(self, Self::Expired { .. })
    }

    /// A short, stable label for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::SegmentCount | Self::Base64 { .. } | Self::Json { .. } => "malformed",
            Self::NotAnObject { .. } | Self::DuplicateMember { .. } => "malformed",
            Self::MissingAlgorithm
            | Self::AlgorithmNotAccepted { .. }
            | Self::WrongAlgorithmForKey { .. } => "algorithm",
            Self::ForbiddenHeader { .. }
            | Self::UnsupportedType { .. }
            | Self::InvalidHeaderParameter { .. } => "header",
            Self::UnknownKey { .. } => "unknown_key",
            Self::MalformedSignature | Self::InvalidSignature { .. } => "signature",
            Self::MissingClaim { .. } | Self::InvalidClaim { .. } => "claims",
            Self::ClaimOutOfRange { .. } => "claims",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } | Self::IssuedInFuture { .. } => "not_yet_valid",
            Self::WrongIssuer { .. } | Self::WrongAudience => "issuer_or_audience",
        }
    }
}

/// Seconds as `4m12s`.
struct Dur(i64);

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.max(0);
        let (d, h, m, s) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
        match (d, h, m) {
            (0, 0, 0) => write!(f, "{s}s"),
            (0, 0, _) => write!(f, "{m}m{s}s"),
            (0, _, _) => write!(f, "{h}h{m}m"),
            _ => write!(f, "{d}d{h}h"),
        }
    }
}

/// A value copied from a token into an error: at most 32 characters.
pub(super) fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(32).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

pub(super) fn b64_error(part: Part, e: B64Error) -> JwtError {
    JwtError::Base64 {
        part,
        detail: match e {
            B64Error::Alphabet => "a character outside the base64url alphabet",
            B64Error::Length => "impossible length",
            B64Error::NonCanonical => "non-zero trailing bits",
            B64Error::TooLong => "too long",
        },
    }
}

pub(super) fn json_error(part: Part, e: StrictError) -> JwtError {
    match e {
        StrictError::Duplicate(name) => JwtError::DuplicateMember { part, name },
        StrictError::NotAnObject => JwtError::NotAnObject { part },
        StrictError::Syntax(e) => JwtError::Json {
            part,
            detail: e.to_string(),
        },
    }
}
