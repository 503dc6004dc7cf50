//! EdDSA and ES256 tokens: signed with a [`SigningKey`], verified with public keys that
//! anyone may hold.
//!
//! The strict parsing of the HS256 path is kept as it is — same size limit, segment split,
//! header and claims parsers, same error kinds — and only the key lookup and the signature
//! differ:
//!
//! - the `kid` selects one key of [`PublicKeys`] and **the key dictates the algorithm**: a
//!   header `alg` other than the key's is refused ([`JwtError::WrongAlgorithmForKey`]), so
//!   a token can never make a public key act as an HMAC secret (algorithm confusion);
//! - HS256 tokens go to the key ring only, and only while [`TokenKeys`] accepts them
//!   (migration from the shared secret; switched off, they are `AlgorithmNotAccepted`);
//! - the signature is exactly 64 raw bytes — Ed25519's, or ECDSA's `R ‖ S` as RFC 7518
//!   §3.4 requires; a DER-encoded ECDSA signature is `MalformedSignature`. ECDSA signatures
//!   with a high `s` are accepted: JOSE does not forbid them, other issuers make them, and
//!   revocation keys on `jti`, never on signature bytes.
//!
//! `docs/jwt.md` has the whole order and the list of refusals.

use std::fmt;
use std::sync::OnceLock;

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::claims::Claims;
use super::compact::{
    Issuance, Issued, ReservedClaim, Subject, Validation, Verified, check_claims, check_params,
    decode_claims, decode_object, issued_claims, split, with_scratch,
};
use super::error::{JwtError, Part, shown};
use super::hs256::{self, recognised_by_ring};
use crate::b64;
use crate::clock::UnixTime;
use crate::keys::KeyRing;
pub use crate::signing::Algorithm;
use crate::signing::{JwkError, JwkSet, MAX_PUBLIC_KEYS, PublicKey, SignError, SigningKey};

/// The header segment we issue with `key`: `{"alg":…,"typ":"JWT","kid":…}`.
fn header_for(key: &PublicKey) -> String {
    b64::encode(
        format!(
            r#"{{"alg":"{}","typ":"JWT","kid":"{}"}}"#,
            key.alg().as_str(),
            key.kid()
        )
        .as_bytes(),
    )
}

/// A private key ready to sign tokens: the key and its precomputed header segment.
pub struct Signer {
    key: SigningKey,
    header_b64: String,
}

impl Signer {
    /// A signer for `key`.
    pub fn new(key: SigningKey) -> Self {
        let header_b64 = header_for(key.public());
        Self { key, header_b64 }
    }

    /// The key's public half.
    pub fn public(&self) -> &PublicKey {
        self.key.public()
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Signer").field(&self.key).finish()
    }
}

/// One verifying key with the header segment our own tokens under it carry.
#[derive(Clone, Debug)]
struct Entry {
    key: PublicKey,
    header_b64: String,
}

/// The public keys tokens are verified with, each selected by its `kid`: at most
/// [`MAX_PUBLIC_KEYS`], no `kid` twice.
#[derive(Clone, Debug, Default)]
pub struct PublicKeys {
    entries: Vec<Entry>,
}

impl PublicKeys {
    /// A set of `keys`.
    ///
    /// # Errors
    /// [`JwkError::DuplicateKid`], [`JwkError::TooManyKeys`].
    pub fn new(keys: Vec<PublicKey>) -> Result<Self, JwkError> {
        if keys.len() > MAX_PUBLIC_KEYS {
            return Err(JwkError::TooManyKeys { count: keys.len() });
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(keys.len());
        for key in keys {
            if entries.iter().any(|e| e.key.kid() == key.kid()) {
                return Err(JwkError::DuplicateKid {
                    kid: shown(key.kid()),
                });
            }
            entries.push(Entry {
                header_b64: header_for(&key),
                key,
            });
        }
        Ok(Self { entries })
    }

    /// The keys of a JWK Set document.
    ///
    /// # Errors
    /// As [`JwkSet::parse`].
    pub fn from_jwks(json: &[u8]) -> Result<Self, JwkError> {
        Self::new(JwkSet::parse(json)?.keys)
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &PublicKey> {
        self.entries.iter().map(|e| &e.key)
    }

    /// The key at `index` (as [`Verified::key_index`] reports it).
    pub fn get(&self, index: usize) -> Option<&PublicKey> {
        self.entries.get(index).map(|e| &e.key)
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The JWK Set document: `{"keys":[…]}`, public members only.
    pub fn to_jwks(&self) -> String {
        let keys: Vec<PublicKey> = self.keys().cloned().collect();
        JwkSet::to_json(&keys)
    }
}

/// Everything a service signs and verifies access tokens with besides the HS256 ring: the
/// asymmetric signer (when set, it signs instead of the ring's current key), the public
/// keys that verify (current, staged, retired), and whether HS256 tokens from the shared
/// ring are still accepted.
#[derive(Debug)]
pub struct TokenKeys {
    signer: Option<Signer>,
    public: PublicKeys,
    accept_hs256: bool,
    issuer: Option<String>,
    audience: Option<String>,
    jwks_max_age_secs: u64,
    published: OnceLock<Jwks>,
}

/// How long verifiers may cache the JWK Set unless told otherwise, in seconds.
pub const DEFAULT_JWKS_MAX_AGE_SECS: u64 = 300;

/// The JWK Set document of a [`TokenKeys`] and its HTTP entity tag, made once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwks {
    /// `{"keys":[…]}`.
    pub body: String,
    /// A strong entity tag (quoted): the first 128 bits of the body's SHA-256, base64url.
    pub etag: String,
}

impl Default for TokenKeys {
    /// HS256 only: the ring signs and verifies, nothing is published.
    fn default() -> Self {
        Self {
            signer: None,
            public: PublicKeys::default(),
            accept_hs256: true,
            issuer: None,
            audience: None,
            jwks_max_age_secs: DEFAULT_JWKS_MAX_AGE_SECS,
            published: OnceLock::new(),
        }
    }
}

/// The signer's key is missing from the verifying keys, or HS256 is refused with nothing
/// else to verify with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenKeysError {
    /// The signing key is not among the public keys, so its own tokens would not verify.
    #[error("the signing key (kid {0}) is not among the published keys")]
    SignerNotPublished(String),
    /// HS256 refused and no public key: no token could ever verify.
    #[error("HS256 tokens are refused and no signing key is set: no token could verify")]
    NothingVerifies,
}

impl TokenKeys {
    /// Sign with `signer` (if any), verify with `public` (which must hold the signer's
    /// key) and, when `accept_hs256`, with the HS256 ring. `issuer` is the `iss` of the
    /// tokens `signer` signs.
    ///
    /// # Errors
    /// [`TokenKeysError`].
    pub fn new(
        signer: Option<Signer>,
        public: PublicKeys,
        accept_hs256: bool,
        issuer: Option<String>,
    ) -> Result<Self, TokenKeysError> {
        if let Some(s) = &signer
            && !public.keys().any(|k| k == s.public())
        {
            return Err(TokenKeysError::SignerNotPublished(
                s.public().kid().to_owned(),
            ));
        }
        if !accept_hs256 && public.is_empty() {
            return Err(TokenKeysError::NothingVerifies);
        }
        Ok(Self {
            signer,
            public,
            accept_hs256,
            issuer,
            audience: None,
            jwks_max_age_secs: DEFAULT_JWKS_MAX_AGE_SECS,
            published: OnceLock::new(),
        })
    }

    /// The same keys, with `aud` set to `audience` on the tokens the signer signs and
    /// required in EdDSA and ES256 tokens (HS256 tokens keep the service's validation, so
    /// the ones issued before the switch still verify).
    #[must_use]
    pub fn with_audience(mut self, audience: Option<String>) -> Self {
        self.audience = audience;
        self
    }

    /// The `aud` of asymmetrically signed tokens.
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The same keys, with verifiers told to cache the JWK Set for `secs`.
    #[must_use]
    pub fn with_jwks_max_age(mut self, secs: u64) -> Self {
        self.jwks_max_age_secs = secs;
        self
    }

    /// How long verifiers may cache the JWK Set (`Cache-Control: max-age`), in seconds.
    pub fn jwks_max_age_secs(&self) -> u64 {
        self.jwks_max_age_secs
    }

    /// The algorithms of the public keys, each once, in a stable order.
    pub fn public_algorithms(&self) -> Vec<Algorithm> {
        let mut algs: Vec<Algorithm> = self.public.keys().map(PublicKey::alg).collect();
        algs.sort_unstable();
        algs.dedup();
        algs
    }

    /// The JWK Set to publish (the public keys) and its entity tag, computed on first use.
    pub fn jwks(&self) -> &Jwks {
        self.published.get_or_init(|| {
            let body = self.public.to_jwks();
            let digest = Sha256::digest(body.as_bytes());
            let etag = format!("\"{}\"", b64::encode(&digest[..16]));
            Jwks { body, etag }
        })
    }

    /// The asymmetric signer, when one is set.
    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// The public keys (what the JWK Set publishes).
    pub fn public(&self) -> &PublicKeys {
        &self.public
    }

    /// Whether HS256 tokens from the ring verify.
    pub fn accepts_hs256(&self) -> bool {
        self.accept_hs256
    }

    /// The `iss` of asymmetrically signed tokens.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The algorithm new tokens are signed with.
    pub fn signing_algorithm(&self) -> Algorithm {
        self.signer
            .as_ref()
            .map_or(Algorithm::HS256, |s| s.key.alg())
    }

    /// Sign `claims` with the signer, or HS256 with the ring's current key when there is
    /// none. With a signer, `iss` is set to the issuer when one is configured; every other
    /// claim is the caller's (an identity assertion for another party keeps its own `aud`).
    ///
    /// # Errors
    /// [`SignError`] when ES256 cannot get randomness from the OS.
    pub fn encode(&self, ring: &KeyRing, claims: &mut Claims) -> Result<String, SignError> {
        match &self.signer {
            None => Ok(hs256::encode(ring, claims)),
            Some(signer) => {
                if let Some(issuer) = &self.issuer {
                    claims.iss = Some(issuer.clone());
                }
                encode_signed(signer, claims)
            }
        }
    }

    /// Sign an access token: as [`TokenKeys::encode`], and with a signer and a configured
    /// audience, `aud` set to it (the audience EdDSA and ES256 tokens must carry here).
    ///
    /// # Errors
    /// [`SignError`] when ES256 cannot get randomness from the OS.
    pub fn encode_access(&self, ring: &KeyRing, claims: &mut Claims) -> Result<String, SignError> {
        if self.signer.is_some()
            && let Some(audience) = &self.audience
        {
            claims.aud = vec![audience.clone()];
        }
        self.encode(ring, claims)
    }

    /// Verify `token`: HS256 against `ring` when accepted, EdDSA and ES256 against the
    /// public keys. With no public key and HS256 accepted this is exactly
    /// [`super::verify`].
    ///
    /// # Errors
    /// One [`JwtError`] kind per rule.
    pub fn verify(
        &self,
        ring: &KeyRing,
        validation: &Validation,
        token: &str,
        now: UnixTime,
    ) -> Result<Verified, JwtError> {
        if self.public.is_empty() && self.accept_hs256 {
            return hs256::verify(ring, validation, token, now);
        }
        let ring = self.accept_hs256.then_some((ring, validation));
        match &self.audience {
            None => verify_inner(ring, &self.public, validation, token, now),
            Some(audience) => {
                let signed = Validation {
                    audience: Some(audience.clone()),
                    ..validation.clone()
                };
                verify_inner(ring, &self.public, &signed, token, now)
            }
        }
    }
}

/// Sign `claims` with `signer`: header `{"alg":"EdDSA"|"ES256","typ":"JWT","kid":…}`.
///
/// # Errors
/// [`SignError`] when ES256 cannot get randomness from the OS.
pub fn encode_signed(signer: &Signer, claims: &Claims) -> Result<String, SignError> {
    with_scratch(|json| {
        json.clear();
        claims.write_json(json);
        let len = signer.header_b64.len() + 1 + b64::encoded_len(json.len()) + 1 + 86;
        let mut token = Vec::with_capacity(len);
        token.extend_from_slice(signer.header_b64.as_bytes());
        token.push(b'.');
        b64::encode_into_vec(json, &mut token);
        let signature = signer.key.sign(&token)?;
        token.push(b'.');
        b64::encode_into_vec(&signature, &mut token);
        Ok(String::from_utf8(token).unwrap_or_else(|_| unreachable!("a compact JWS is ASCII")))
    })
}

/// Why [`issue_signed`] made no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// An extra claim shadows a registered one.
    #[error(transparent)]
    Reserved(#[from] ReservedClaim),
    /// The signature could not be made.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// [`super::issue`] with an asymmetric signer.
///
/// # Errors
/// [`IssueError`].
pub fn issue_signed(
    signer: &Signer,
    issuance: &Issuance,
    subject: Subject,
    now: UnixTime,
) -> Result<Issued, IssueError> {
    let claims = issued_claims(issuance, subject, now)?;
    let token = encode_signed(signer, &claims)?;
    Ok(Issued { token, claims })
}

/// Verify `token` against the HS256 `ring` (when given: `None` refuses HS256) and the
/// public keys.
///
/// # Errors
/// One [`JwtError`] kind per rule.
///
/// # Examples
/// ```
/// use countersign::clock::UnixTime;
/// use countersign::jwt::{self, Algorithm, Claims, JwtError, PublicKeys, Signer, Validation};
/// use countersign::signing::SigningKey;
///
/// let (key, _) = SigningKey::generate(Algorithm::EdDSA).unwrap();
/// let public = PublicKeys::new(vec![key.public().clone()]).unwrap();
/// let signer = Signer::new(key);
/// let token = jwt::encode_signed(&signer, &Claims::new(UnixTime(1_000))).unwrap();
/// let ok = jwt::verify_any(None, &public, &Validation::default(), &token, UnixTime(900));
/// assert_eq!(ok.unwrap().algorithm, Algorithm::EdDSA);
/// let none = PublicKeys::default();
/// let refused = jwt::verify_any(None, &none, &Validation::default(), &token, UnixTime(900));
/// assert!(matches!(refused, Err(JwtError::UnknownKey { .. })));
/// ```
pub fn verify_any(
    ring: Option<&KeyRing>,
    public: &PublicKeys,
    validation: &Validation,
    token: &str,
    now: UnixTime,
) -> Result<Verified, JwtError> {
    verify_inner(
        ring.map(|r| (r, validation)),
        public,
        validation,
        token,
        now,
    )
}

/// [`verify_any`], with the HS256 ring's own validation.
fn verify_inner(
    ring: Option<(&KeyRing, &Validation)>,
    public: &PublicKeys,
    validation: &Validation,
    token: &str,
    now: UnixTime,
) -> Result<Verified, JwtError> {
    let bytes = token.as_bytes();
    let max = validation.max_token_bytes;
    if bytes.len() > max {
        return Err(JwtError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    let (header_b64, payload_b64, sig_b64) = split(bytes)?;

    let pick = if let Some(i) = public
        .entries
        .iter()
        .position(|e| e.header_b64.as_bytes() == header_b64)
    {
        Pick::One(i)
    } else {
        if let Some((ring, hs256)) = ring
            && recognised_by_ring(ring, header_b64)
        {
            return hs256::verify(ring, hs256, token, now);
        }
        let header = decode_object(header_b64, Part::Header)?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg,
            _ => return Err(JwtError::MissingAlgorithm),
        };
        match Algorithm::from_name(alg) {
            Some(Algorithm::HS256) => {
                return match ring {
                    Some((ring, hs256)) => hs256::verify(ring, hs256, token, now),
                    None => Err(JwtError::AlgorithmNotAccepted { alg: shown(alg) }),
                };
            }
            Some(named) => select(public, &header, named)?,
            None => return Err(JwtError::AlgorithmNotAccepted { alg: shown(alg) }),
        }
    };

    let mut signature = [0u8; 64];
    match b64::decode_into(sig_b64, &mut signature) {
        Ok(64) => {}
        _ => return Err(JwtError::MalformedSignature),
    }
    let signing_input = &bytes[..header_b64.len() + 1 + payload_b64.len()];
    let (key_index, algorithm) = match pick {
        Pick::One(i) => {
            let key = &public.entries[i].key;
            if !key.verify(signing_input, &signature) {
                return Err(JwtError::InvalidSignature { tried: 1 });
            }
            (i, key.alg())
        }
        Pick::Alg(wanted) => {
            let mut tried = 0;
            let found = public.entries.iter().position(|e| {
                e.key.alg() == wanted && {
                    tried += 1;
                    e.key.verify(signing_input, &signature)
                }
            });
            (found.ok_or(JwtError::InvalidSignature { tried })?, wanted)
        }
    };
    let mut verified = Verified {
        claims: Claims::new(UnixTime(0)),
        key_index,
        algorithm,
    };
    decode_claims(payload_b64, &mut verified.claims)?;
    check_claims(&verified.claims, validation, now)?;
    Ok(verified)
}

/// Which public keys a token may be signed with.
enum Pick {
    /// The one its `kid` (or our own header) names.
    One(usize),
    /// Without `kid`: each key of this algorithm, in order.
    Alg(Algorithm),
}

/// The header rules for an asymmetric algorithm, then the key: the one its `kid` names
/// (which must be of the header's algorithm), or without `kid` every key of the algorithm.
fn select(
    public: &PublicKeys,
    header: &Map<String, Value>,
    alg: Algorithm,
) -> Result<Pick, JwtError> {
    match check_params(header)? {
        Some(kid) => {
            let i = public
                .entries
                .iter()
                .position(|e| e.key.kid() == kid)
                .ok_or_else(|| JwtError::UnknownKey { kid: shown(kid) })?;
            let key_alg = public.entries[i].key.alg();
            if key_alg != alg {
                return Err(JwtError::WrongAlgorithmForKey {
                    alg: alg.as_str(),
                    key_alg: key_alg.as_str(),
                });
            }
            Ok(Pick::One(i))
        }
        None if public.keys().any(|k| k.alg() == alg) => Ok(Pick::Alg(alg)),
        None => Err(JwtError::AlgorithmNotAccepted {
            alg: alg.as_str().to_owned(),
        }),
    }
}
