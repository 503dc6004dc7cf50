//! HS256 tokens: signed and verified with the shared key ring.

use hmac::Mac;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::claims::Claims;
use super::compact::{
    Issuance, Issued, ReservedClaim, Subject, Validation, Verified, check_claims, check_params,
    decode_claims, decode_object, issued_claims, split, with_scratch,
};
use super::error::{JwtError, Part, shown};
use crate::b64;
use crate::clock::UnixTime;
use crate::keys::{KeyRing, RingKey};
use crate::signing::Algorithm;

/// The header PyJWT writes for HS256 (no `kid`), recognised without parsing.
const PYJWT_HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

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
pub(super) fn recognised_by_ring(ring: &KeyRing, header_b64: &[u8]) -> bool {
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
    if super::fast::claims_into(payload, &mut fast).is_some() {
        assert_eq!(
            super::compact::claims_strict(payload),
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
