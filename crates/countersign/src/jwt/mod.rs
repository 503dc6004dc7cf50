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
mod fast;
mod strict;

use std::fmt;

use hmac::Mac;
use serde::de::DeserializeSeed;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

pub use self::asymmetric::{
    Algorithm, DEFAULT_JWKS_MAX_AGE_SECS, IssueError, Jwks, PublicKeys, Signer, TokenKeys,
    TokenKeysError, encode_signed, issue_signed, verify_any,
};
pub use self::claims::{Claims, MAX_NUMERIC_DATE, REGISTERED};
use self::strict::{DupSlot, StrictError};
use crate::b64::{self, B64Error};
use crate::clock::UnixTime;
use crate::keys::{KeyRing, RingKey};

/// The default size limit for a whole token, in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The default clock-skew allowance, in seconds.
pub const DEFAULT_LEEWAY_SECS: i64 = 30;

/// The header PyJWT writes for HS256 (no `kid`), recognised without parsing.
const PYJWT_HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

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
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(32).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// What the verifier demands beyond the signature.
#[derive(Clone, Debug)]
pub struct Validation {
    /// Clock-skew allowance for `exp`, `nbf`, `iat`, in seconds.
    pub leeway_secs: i64,
    /// When set, `iss` must equal it.
    pub issuer: Option<String>,
    /// When set, `aud` must contain it; when unset, a token with `aud` is refused.
    pub audience: Option<String>,
    /// Tokens longer than this are refused before any parsing.
    pub max_token_bytes: usize,
}

impl Default for Validation {
    fn default() -> Self {
        Self {
            leeway_secs: DEFAULT_LEEWAY_SECS,
            issuer: None,
            audience: None,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }
}

/// A token that passed every check.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    /// Its claims.
    pub claims: Claims,
    /// Which key verified it: for HS256 the ring's (0 is the current key, more is a
    /// fallback); for EdDSA and ES256, the index in the [`PublicKeys`].
    pub key_index: usize,
    /// The algorithm it was verified with.
    pub algorithm: Algorithm,
}

/// Verify `token` against `ring` at time `now`.
///
/// # Errors
/// One [`JwtError`] kind per rule, in the order the module documentation gives.
///
/// # Examples
/// ```
/// use countersign::clock::UnixTime;
/// use countersign::jwt::{self, Claims, JwtError, Validation};
/// use countersign::keys::{KeyRing, SecretKey};
///
/// let ring = KeyRing::single(SecretKey::generate(32).unwrap().0);
/// let mut claims = Claims::new(UnixTime(1_000));
/// claims.username = Some("john_doe".into());
/// let token = jwt::encode(&ring, &claims);
/// let ok = jwt::verify(&ring, &Validation::default(), &token, UnixTime(900)).unwrap();
/// assert_eq!(ok.claims.username.as_deref(), Some("john_doe"));
/// let late = jwt::verify(&ring, &Validation::default(), &token, UnixTime(2_000));
/// assert_eq!(late.unwrap_err(), JwtError::Expired { ago: 1_000 });
/// ```
pub fn verify(
    ring: &KeyRing,
    validation: &Validation,
    token: &str,
    now: UnixTime,
) -> Result<Verified, JwtError> {
    let (payload_b64, key_index) = verify_signature(ring, validation.max_token_bytes, token)?;
    // Only now is the payload worth reading. The claims are written in place, where the
    // caller gets them, rather than moved through each layer.
    let mut verified = Verified {
        claims: Claims::new(UnixTime(0)),
        key_index,
        algorithm: Algorithm::HS256,
    };
    decode_claims(payload_b64, &mut verified.claims)?;
    check_claims(&verified.claims, validation, now)?;
    Ok(verified)
}

/// Everything up to and including the MAC: the payload segment it covers, and which key
/// of the ring made it.
fn verify_signature<'t>(
    ring: &KeyRing,
    max: usize,
    token: &'t str,
) -> Result<(&'t [u8], usize), JwtError> {
    let bytes = token.as_bytes();
    if bytes.len() > max {
        return Err(JwtError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    let (header_b64, payload_b64, sig_b64) = split(bytes)?;

    // Header → candidate keys. Our own headers and PyJWT's are recognised byte for byte.
    let candidates = if let Some(i) = ring
        .keys
        .iter()
        .position(|k| k.header_b64.as_bytes() == header_b64)
    {
        Candidates::One(i)
    } else if header_b64 == PYJWT_HEADER_B64.as_bytes() {
        Candidates::All
    } else {
        let header = decode_object(header_b64, Part::Header)?;
        check_header(ring, &header)?
    };

    let mut sig = [0u8; 32];
    match b64::decode_into(sig_b64, &mut sig) {
        Ok(32) => {}
        _ => return Err(JwtError::MalformedSignature),
    }
    let signing_input = &bytes[..header_b64.len() + 1 + payload_b64.len()];
    let key_index = match candidates {
        Candidates::One(i) => {
            if !mac_matches(&ring.keys[i], signing_input, &sig) {
                return Err(JwtError::InvalidSignature { tried: 1 });
            }
            i
        }
        Candidates::All => ring
            .keys
            .iter()
            .position(|k| mac_matches(k, signing_input, &sig))
            .ok_or(JwtError::InvalidSignature {
                tried: ring.keys.len(),
            })?,
    };
    Ok((payload_b64, key_index))
}

enum Candidates {
    One(usize),
    All,
}

/// Whether the ring would take `header_b64` without parsing it: one of its own headers, or
/// PyJWT's.
fn recognised_by_ring(ring: &KeyRing, header_b64: &[u8]) -> bool {
    header_b64 == PYJWT_HEADER_B64.as_bytes()
        || ring
            .keys
            .iter()
            .any(|k| k.header_b64.as_bytes() == header_b64)
}

fn mac_matches(key: &RingKey, signing_input: &[u8], sig: &[u8; 32]) -> bool {
    let mut mac = key.hs256.clone();
    mac.update(signing_input);
    let tag: [u8; 32] = mac.finalize().into_bytes().into();
    // Constant time: the XOR of every word is ORed together with no early exit, and only
    // the folded word goes through `subtle`'s optimisation barrier (one barrier instead
    // of one per byte, as `<[u8]>::ct_eq` does).
    let (tag_words, _) = tag.as_chunks::<8>();
    let (sig_words, _) = sig.as_chunks::<8>();
    let diff = tag_words.iter().zip(sig_words).fold(0u64, |acc, (t, s)| {
        acc | (u64::from_ne_bytes(*t) ^ u64::from_ne_bytes(*s))
    });
    diff.ct_eq(&0).into()
}

/// Header, payload and signature, still in base64url.
type Segments<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// The three segments of a compact JWS: exactly two dots, found in one pass over 8-byte
/// words (a token is mostly base64url, so the per-byte loop `splitn` runs was the slowest
/// part of the structure check).
fn split(bytes: &[u8]) -> Result<Segments<'_>, JwtError> {
    const DOTS: u64 = u64::from_ne_bytes([b'.'; 8]);
    const LOW7: u64 = u64::from_ne_bytes([0x7f; 8]);
    let mut dots = [0usize; 2];
    let mut count = 0usize;
    let mut note = |at: usize| {
        if let Some(slot) = dots.get_mut(count) {
            *slot = at;
        }
        count += 1;
    };
    let (words, rest) = bytes.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let x = u64::from_le_bytes(*word) ^ DOTS;
        // The high bit of each byte is set exactly where that byte of `x` is zero, that
        // is where the token has a dot (no carries cross bytes: each lane adds at most
        // 0x7f + 0x7f).
        let mut found = !(((x & LOW7) + LOW7) | x | LOW7);
        while found != 0 {
            note(i * 8 + (found.trailing_zeros() / 8) as usize);
            found &= found - 1;
        }
    }
    for (i, b) in rest.iter().enumerate() {
        if *b == b'.' {
            note(words.len() * 8 + i);
        }
    }
    match (count, dots) {
        (2, [a, b]) => Ok((&bytes[..a], &bytes[a + 1..b], &bytes[b + 1..])),
        _ => Err(JwtError::SegmentCount),
    }
}

fn b64_error(part: Part, e: B64Error) -> JwtError {
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

fn json_error(part: Part, e: StrictError) -> JwtError {
    match e {
        StrictError::Duplicate(name) => JwtError::DuplicateMember { part, name },
        StrictError::NotAnObject => JwtError::NotAnObject { part },
        StrictError::Syntax(e) => JwtError::Json {
            part,
            detail: e.to_string(),
        },
    }
}

fn decode_segment(segment: &[u8], part: Part) -> Result<Vec<u8>, JwtError> {
    let mut buf = vec![0u8; segment.len()];
    let n = b64::decode_into(segment, &mut buf).map_err(|e| b64_error(part, e))?;
    buf.truncate(n);
    Ok(buf)
}

fn decode_object(segment: &[u8], part: Part) -> Result<Map<String, Value>, JwtError> {
    let json = decode_segment(segment, part)?;
    strict::parse_object(&json).map_err(|e| json_error(part, e))
}

/// A JSON object by the strict parser (duplicate members refused at every depth), for
/// documents other than tokens (JWK Sets); the error as text.
pub(crate) fn parse_strict_object(json: &[u8]) -> Result<Map<String, Value>, String> {
    strict::parse_object(json).map_err(|e| match e {
        StrictError::Duplicate(name) => format!("duplicate member {name:?}"),
        StrictError::NotAnObject => "not a JSON object".to_owned(),
        StrictError::Syntax(e) => e.to_string(),
    })
}

/// Decode the payload and read its claims into `out`, which holds [`Claims::new`].
fn decode_claims(segment: &[u8], out: &mut Claims) -> Result<(), JwtError> {
    with_scratch(|buf| {
        let n = b64::decoded_len(segment.len()).unwrap_or(0);
        buf.clear();
        buf.resize(n, 0);
        match b64::decode_into(segment, buf) {
            Ok(n) => match fast::claims_into(&buf[..n], out) {
                Some(()) => Ok(()),
                None => claims_strict(&buf[..n]).map(|claims| *out = claims),
            },
            Err(e) => Err(b64_error(Part::Payload, e)),
        }
    })
}

/// The claims of a payload by the general strict parser, which decides every error kind.
fn claims_strict(json: &[u8]) -> Result<Claims, JwtError> {
    let slot = DupSlot::default();
    let mut de = serde_json::Deserializer::from_slice(json);
    let raw = claims::ClaimsSeed(&slot)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| json_error(Part::Payload, StrictError::from_parts(e, &slot)))?;
    raw.into_claims()
}

const FORBIDDEN_HEADERS: &[&str] = &["crit", "b64", "zip", "jku", "x5u", "jwk", "x5c"];

fn check_header(ring: &KeyRing, header: &Map<String, Value>) -> Result<Candidates, JwtError> {
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "HS256" => {}
        Some(Value::String(alg)) => {
            return Err(JwtError::AlgorithmNotAccepted { alg: shown(alg) });
        }
        _ => return Err(JwtError::MissingAlgorithm),
    }
    match check_params(header)? {
        None => Ok(Candidates::All),
        Some(kid) => ring
            .keys
            .iter()
            .position(|k| k.kid.as_str() == kid)
            .map(Candidates::One)
            .ok_or_else(|| JwtError::UnknownKey { kid: shown(kid) }),
    }
}

/// The header rules after `alg`, the same for every algorithm: no forbidden parameter, a
/// `typ` of JWT when present, a string `kid` when present (returned).
fn check_params(header: &Map<String, Value>) -> Result<Option<&str>, JwtError> {
    if let Some(name) = FORBIDDEN_HEADERS.iter().find(|n| header.contains_key(**n)) {
        return Err(JwtError::ForbiddenHeader { name });
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(typ)) => {
            let ok = ["JWT", "at+jwt", "application/jwt", "application/at+jwt"]
                .iter()
                .any(|t| typ.eq_ignore_ascii_case(t));
            if !ok {
                return Err(JwtError::UnsupportedType { typ: shown(typ) });
            }
        }
        Some(_) => return Err(JwtError::InvalidHeaderParameter { name: "typ" }),
    }
    match header.get("kid") {
        None => Ok(None),
        Some(Value::String(kid)) => Ok(Some(kid)),
        Some(_) => Err(JwtError::InvalidHeaderParameter { name: "kid" }),
    }
}

fn check_claims(claims: &Claims, v: &Validation, now: UnixTime) -> Result<(), JwtError> {
    let leeway = v.leeway_secs.max(0);
    if now.0 >= claims.exp.0.saturating_add(leeway) {
        return Err(JwtError::Expired {
            ago: now.0 - claims.exp.0,
        });
    }
    if let Some(nbf) = claims.nbf
        && now.0.saturating_add(leeway) < nbf.0
    {
        // `now` is the caller's and may be far in the past: saturate, never overflow.
        return Err(JwtError::NotYetValid {
            in_secs: nbf.0.saturating_sub(now.0),
        });
    }
    if let Some(iat) = claims.iat
        && iat.0 > now.0.saturating_add(leeway)
    {
        return Err(JwtError::IssuedInFuture {
            ahead: iat.0.saturating_sub(now.0),
        });
    }
    if let Some(expected) = &v.issuer
        && claims.iss.as_deref() != Some(expected.as_str())
    {
        return Err(JwtError::WrongIssuer {
            found: claims.iss.as_deref().map(shown),
        });
    }
    match &v.audience {
        Some(expected) if !claims.aud.iter().any(|a| a == expected) => Err(JwtError::WrongAudience),
        None if !claims.aud.is_empty() => Err(JwtError::WrongAudience),
        _ => Ok(()),
    }
}

/// Sign `claims` with the ring's current key: header `{"alg":"HS256","typ":"JWT","kid":…}`.
pub fn encode(ring: &KeyRing, claims: &Claims) -> String {
    let key = &ring.keys[0];
    with_scratch(|json| {
        json.clear();
        claims.write_json(json);
        let len = key.header_b64.len() + 1 + b64::encoded_len(json.len()) + 1 + 43;
        let mut token = Vec::with_capacity(len);
        token.extend_from_slice(key.header_b64.as_bytes());
        token.push(b'.');
        b64::encode_into_vec(json, &mut token);
        let mut mac = key.hs256.clone();
        mac.update(&token);
        let tag = mac.finalize().into_bytes();
        token.push(b'.');
        b64::encode_into_vec(&tag, &mut token);
        String::from_utf8(token).unwrap_or_else(|_| unreachable!("a compact JWS is ASCII"))
    })
}

thread_local! {
    /// Payloads are decoded here (verify) and serialized here (issue), so neither
    /// allocates for them.
    static PAYLOAD_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A scratch buffer that grew past this (a token with large claims) is released.
const SCRATCH_KEEP: usize = 8 * 1024;

/// Run `f` with this thread's scratch buffer, or with a fresh one when it is unavailable
/// (in use further up the stack, or the thread is tearing down its thread-locals), so
/// verifying never panics for want of it.
fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut f = Some(f);
    let shared = PAYLOAD_SCRATCH.try_with(|cell| {
        let mut buf = cell.try_borrow_mut().ok()?;
        let f = f.take()?;
        let out = f(&mut buf);
        if buf.capacity() > SCRATCH_KEEP {
            *buf = Vec::new();
        }
        Some(out)
    });
    match (shared, f) {
        (Ok(Some(out)), _) => out,
        (_, Some(f)) => f(&mut Vec::new()),
        (_, None) => unreachable!("`f` is taken only on the path that returns its result"),
    }
}

/// How tokens are issued.
#[derive(Clone, Debug)]
pub struct Issuance {
    /// Lifetime, in seconds (the contract's default: 15 minutes).
    pub ttl_secs: i64,
    /// `iss`, when configured.
    pub issuer: Option<String>,
    /// `aud`, when configured.
    pub audience: Option<String>,
}

impl Default for Issuance {
    fn default() -> Self {
        Self {
            ttl_secs: 15 * 60,
            issuer: None,
            audience: None,
        }
    }
}

/// Who a token is for.
#[derive(Clone, Debug, Default)]
pub struct Subject {
    /// `sub`: the user's stable id.
    pub sub: Option<String>,
    /// `username`.
    pub username: Option<String>,
    /// `role`.
    pub role: Option<String>,
    /// More claims (registered names are refused).
    pub extra: Map<String, Value>,
}

/// A freshly issued token and its claims.
#[derive(Clone)]
pub struct Issued {
    /// The compact JWS.
    pub token: String,
    /// What it says.
    pub claims: Claims,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("token", &"[redacted]")
            .field("claims", &self.claims)
            .finish()
    }
}

/// A claim name that [`issue`] manages itself was passed as an extra claim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("claim {0:?} is set by the issuer and cannot be given as an extra claim")]
pub struct ReservedClaim(pub String);

/// Issue a token for `subject` at `now`: `iat = now`, `exp = now + ttl`, a fresh 128-bit
/// `jti`, and `iss`/`aud` when configured.
///
/// # Errors
/// [`ReservedClaim`] when `subject.extra` names a registered claim.
pub fn issue(
    ring: &KeyRing,
    issuance: &Issuance,
    subject: Subject,
    now: UnixTime,
) -> Result<Issued, ReservedClaim> {
    let claims = issued_claims(issuance, subject, now)?;
    let token = encode(ring, &claims);
    Ok(Issued { token, claims })
}

/// The claims [`issue`] signs.
fn issued_claims(
    issuance: &Issuance,
    subject: Subject,
    now: UnixTime,
) -> Result<Claims, ReservedClaim> {
    if let Some(k) = subject
        .extra
        .keys()
        .find(|k| REGISTERED.contains(&k.as_str()))
    {
        return Err(ReservedClaim(k.clone()));
    }
    Ok(Claims {
        sub: subject.sub,
        username: subject.username,
        role: subject.role,
        iat: Some(now),
        exp: now.add_secs(issuance.ttl_secs),
        nbf: None,
        jti: Some(crate::random::token_id()),
        iss: issuance.issuer.clone(),
        aud: issuance.audience.iter().cloned().collect(),
        extra: subject.extra,
    })
}

/// Reading tokens without verifying them. Nothing here may feed an authorization
/// decision: an attacker chooses every byte of an unverified token.
pub mod dangerous {
    use super::{JwtError, Part, decode_object, split};
    use serde_json::{Map, Value};

    /// A JSON object as `serde_json` holds it.
    pub type Object = Map<String, Value>;

    /// The header and claims of `token`, **unverified**: no signature, no time checks.
    ///
    /// # Errors
    /// When the token is not three strict base64url segments holding JSON objects.
    pub fn decode_unverified(token: &str) -> Result<(Object, Object), JwtError> {
        let (h, p, _) = split(token.as_bytes())?;
        Ok((
            decode_object(h, Part::Header)?,
            decode_object(p, Part::Payload)?,
        ))
    }
}

/// The time every fuzz target verifies at.
#[cfg(any(test, feature = "fuzzing"))]
const FUZZ_NOW: UnixTime = UnixTime(1_700_000_000);

/// For fuzzing: verify with a fixed time and default validation. Not part of the API.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub fn fuzz_verify(ring: &KeyRing, token: &[u8]) -> Option<Verified> {
    let token = std::str::from_utf8(token).ok()?;
    verify(ring, &Validation::default(), token, FUZZ_NOW).ok()
}

/// For fuzzing: the fixed, test-only ring of the fuzz targets and their seeds — a current
/// key and a fallback, so that both the `kid` path and the no-`kid` path are reachable.
/// Fixed bytes, not generated ones, so that a crash found once replays anywhere. Not part
/// of the API; these keys protect nothing.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub fn fuzz_ring() -> KeyRing {
    let key = |bytes: &[u8]| {
        crate::keys::SecretKey::from_bytes(bytes)
            .unwrap_or_else(|_| unreachable!("the fuzz keys pass the strength rules (tested)"))
    };
    KeyRing::new(
        key(b"fuzz-fixture-key-0:Qm7Tz2Lw9Xc4Rv8Ks1Hd6Jp3Nb5Fg0YeAu"),
        vec![key(
            b"fuzz-fixture-key-1:Wr4Yk8Pz1Gd5Lc9Tm2Xs7Hb3Nq6Vf0JaEo",
        )],
    )
    .unwrap_or_else(|_| unreachable!("two distinct keys make a ring (tested)"))
}

/// For fuzzing past the MAC: a token is built around `data` and signed with the ring's
/// keys, so the claims parsers see every payload the fuzzer makes. The first byte picks
/// the header — the current key's own (the recognised fast path), the fallback's, PyJWT's
/// (no `kid`), or the bytes of `data` up to the first newline — and the key; the rest is
/// the payload.
///
/// # Panics
/// When the one-pass reader of common payloads and the strict parser disagree on a
/// payload the former accepts: that is the bug the target looks for.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub fn fuzz_verify_signed(ring: &KeyRing, data: &[u8]) -> Option<Verified> {
    let (&selector, rest) = data.split_first()?;
    let key = usize::from(selector >> 2) % ring.keys.len();
    let (header_b64, payload) = match selector % 4 {
        0 => (ring.keys[0].header_b64.clone(), rest),
        1 => (ring.keys[key].header_b64.clone(), rest),
        2 => (PYJWT_HEADER_B64.to_owned(), rest),
        _ => {
            let at = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
            (
                b64::encode(&rest[..at]),
                rest.get(at + 1..).unwrap_or_default(),
            )
        }
    };
    let signer = if selector % 4 == 0 { 0 } else { key };
    let mut token = header_b64;
    token.push('.');
    b64::encode_into(payload, &mut token);
    let mut mac = ring.keys[signer].hs256.clone();
    mac.update(token.as_bytes());
    token.push('.');
    b64::encode_into(&mac.finalize().into_bytes(), &mut token);

    let mut fast = Claims::new(UnixTime(0));
    if fast::claims_into(payload, &mut fast).is_some() {
        assert_eq!(
            claims_strict(payload),
            Ok(fast),
            "the one-pass reader disagrees with the strict parser on {:?}",
            String::from_utf8_lossy(payload)
        );
    }
    verify(ring, &Validation::default(), &token, FUZZ_NOW).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_in_use_falls_back_to_a_fresh_buffer() {
        let ring = fuzz_ring();
        let token = encode(&ring, &Claims::new(UnixTime(1_700_000_100)));
        let nested = with_scratch(|outer| {
            outer.clear();
            outer.extend_from_slice(b"kept");
            let ok = fuzz_verify(&ring, token.as_bytes()).is_some();
            (
                ok,
                encode(&ring, &Claims::new(UnixTime(1_700_000_100))),
                outer.clone(),
            )
        });
        assert_eq!(nested, (true, token, b"kept".to_vec()));
    }

    #[test]
    fn fuzz_helpers_reach_the_claims() {
        let ring = fuzz_ring();
        assert_eq!(ring.len(), 2);
        let payload = br#"{"sub":"1","username":"u","role":"r","exp":1700000100}"#;
        for selector in [0u8, 1, 2, 5, 6] {
            let mut data = vec![selector];
            data.extend_from_slice(payload);
            let ok = fuzz_verify_signed(&ring, &data).expect("a signed, valid payload verifies");
            assert_eq!(ok.claims.username.as_deref(), Some("u"));
        }
        let mut custom = vec![3u8];
        custom.extend_from_slice(b"{\"alg\":\"HS256\"}\n");
        custom.extend_from_slice(payload);
        assert!(fuzz_verify_signed(&ring, &custom).is_some());
        let token = encode(&ring, &Claims::new(UnixTime(1_700_000_100)));
        assert!(fuzz_verify(&ring, token.as_bytes()).is_some());
        assert!(fuzz_verify(&ring, b"a.b.c").is_none());
    }
}
