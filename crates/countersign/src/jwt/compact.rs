//! What both algorithms share: a compact JWS split and decoded, the header parameters and
//! the claims every token is checked against, and what issuing one takes.

use std::fmt;

use serde::de::DeserializeSeed;
use serde_json::{Map, Value};

use super::claims::{self, Claims, REGISTERED};
use super::error::{JwtError, Part, b64_error, json_error, shown};
use super::fast;
use super::strict::{self, DupSlot, StrictError};
use crate::b64;
use crate::clock::UnixTime;
use crate::signing::Algorithm;

/// The default size limit for a whole token, in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The default clock-skew allowance, in seconds.
pub const DEFAULT_LEEWAY_SECS: i64 = 30;

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
    /// fallback); for EdDSA and ES256, the index in the [`PublicKeys`](super::PublicKeys).
    pub key_index: usize,
    /// The algorithm it was verified with.
    pub algorithm: Algorithm,
}

/// Header, payload and signature, still in base64url.
pub(super) type Segments<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// The three segments of a compact JWS: exactly two dots, found in one pass over 8-byte
/// words (a token is mostly base64url, so the per-byte loop `splitn` runs was the slowest
/// part of the structure check).
pub(super) fn split(bytes: &[u8]) -> Result<Segments<'_>, JwtError> {
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

fn decode_segment(segment: &[u8], part: Part) -> Result<Vec<u8>, JwtError> {
    let mut buf = vec![0u8; segment.len()];
    let n = b64::decode_into(segment, &mut buf).map_err(|e| b64_error(part, e))?;
    buf.truncate(n);
    Ok(buf)
}

pub(super) fn decode_object(segment: &[u8], part: Part) -> Result<Map<String, Value>, JwtError> {
    let json = decode_segment(segment, part)?;
    strict::parse_object(&json).map_err(|e| json_error(part, e))
}

/// Decode the payload and read its claims into `out`, which holds [`Claims::new`].
pub(super) fn decode_claims(segment: &[u8], out: &mut Claims) -> Result<(), JwtError> {
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
pub(super) fn claims_strict(json: &[u8]) -> Result<Claims, JwtError> {
    let slot = DupSlot::default();
    let mut de = serde_json::Deserializer::from_slice(json);
    let raw = claims::ClaimsSeed(&slot)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| json_error(Part::Payload, StrictError::from_parts(e, &slot)))?;
    raw.into_claims()
}

const FORBIDDEN_HEADERS: &[&str] = &["crit", "b64", "zip", "jku", "x5u", "jwk", "x5c"];

/// The header rules after `alg`, the same for every algorithm: no forbidden parameter, a
/// `typ` of JWT when present, a string `kid` when present (returned).
pub(super) fn check_params(header: &Map<String, Value>) -> Result<Option<&str>, JwtError> {
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

pub(super) fn check_claims(claims: &Claims, v: &Validation, now: UnixTime) -> Result<(), JwtError> {
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
pub(super) fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
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

/// A claim name that [`issue`](super::issue) manages itself was passed as an extra claim.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("claim {0:?} is set by the issuer and cannot be given as an extra claim")]
pub struct ReservedClaim(pub String);

/// The claims [`issue`](super::issue) signs.
pub(super) fn issued_claims(
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
