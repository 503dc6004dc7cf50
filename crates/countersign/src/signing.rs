//! Asymmetric signing keys and their public halves: EdDSA over Ed25519 (RFC 8037) and
//! ES256, ECDSA over P-256 with SHA-256 (RFC 7518 §3.4), published as JSON Web Keys
//! (RFC 7517).
//!
//! A [`SigningKey`] is read from (or written as) an unencrypted PKCS#8 PEM file, the form
//! `openssl genpkey`, Python's `cryptography` and Node's `crypto` all write. Its
//! [`PublicKey`] carries the key's `kid`, the RFC 7638 thumbprint, so the same key has the
//! same id everywhere, and its algorithm: verification takes the algorithm from the key
//! the `kid` selects, never from the token (`docs/jwt.md`).
//!
//! The curve arithmetic is `ring`'s (constant-time, audited, already in the server's
//! dependency tree through rustls; `docs/decisions.md`). Nothing here does arithmetic on
//! keys or signatures; this module only moves bytes between PEM, JWK and ring.
//!
//! Private keys: `Debug` prints `[redacted]`; the PEM text and the PKCS#8 bytes this module
//! handles are held in [`Zeroizing`] buffers. ring keeps its own copy of the private scalar
//! inside its key pair types, which it does not zeroize on drop; the key lives as long as
//! the process uses it, so the exposure is the process's memory, as for any TLS key.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{
    self as sig, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair as _, UnparsedPublicKey,
};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::b64;

/// A JWS algorithm this crate signs or verifies with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(clippy::upper_case_acronyms)]
pub enum Algorithm {
    /// HMAC-SHA256 with the shared secret key ring.
    HS256,
    /// Ed25519 signatures (RFC 8037).
    EdDSA,
    /// ECDSA over P-256 with SHA-256 (RFC 7518 §3.4).
    ES256,
}

impl Algorithm {
    /// The JOSE name (`"HS256"`, `"EdDSA"`, `"ES256"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
        }
    }

    /// The algorithm with this exact JOSE name (case matters, as in RFC 7515).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Self::HS256),
            "EdDSA" => Some(Self::EdDSA),
            "ES256" => Some(Self::ES256),
            _ => None,
        }
    }

    /// The key type, for messages.
    pub(crate) fn curve(self) -> &'static str {
        match self {
            Self::HS256 => "HMAC",
            Self::EdDSA => "Ed25519",
            Self::ES256 => "P-256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The most keys a JWK Set may hold for us to use it (current, next, retired and some
/// room): a token without `kid` is tried against at most this many keys.
pub const MAX_PUBLIC_KEYS: usize = 32;

/// Why a signing key cannot be used. Never contains key material.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SigningKeyError {
    /// The key file could not be read.
    #[error("cannot read the signing key file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// What the operating system said.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The text is not a PEM `PRIVATE KEY` block.
    #[error(
        "not a PEM private key ({0}): expected -----BEGIN PRIVATE KEY----- (PKCS#8), as `countersign keygen --alg EdDSA --out FILE` writes"
    )]
    NotPem(&'static str),
    /// A PEM block of another kind (SEC1, encrypted, RSA…).
    #[error("{kind} keys are not accepted: {hint}")]
    UnsupportedPem {
        /// What the block holds.
        kind: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
    /// The PKCS#8 bytes hold no Ed25519 or P-256 key ring accepts.
    #[error(
        "the PKCS#8 key is neither an Ed25519 nor a P-256 (prime256v1) key, or it is malformed; RSA is not supported"
    )]
    UnsupportedKey,
    /// The operating system's random source failed.
    #[error("the operating system's random number generator failed")]
    Random,
}

/// A signature could not be made (ECDSA needs fresh randomness; the OS refused it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signing failed: the operating system's random number generator failed")]
pub struct SignError;

/// Why a JWK or JWK Set was refused. Messages never quote key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// Not JSON, not an object, a duplicate member, or no `keys` array.
    #[error("not a JWK Set: {0}")]
    Malformed(String),
    /// A member has the wrong type or an impossible value.
    #[error("key {index}: {message}")]
    Invalid {
        /// The key's position in `keys`.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// The set holds a private key (`d`): a JWK Set to verify with must hold public keys only.
    #[error("key {index} holds a private part (d): publish and use public keys only")]
    PrivateKey {
        /// The key's position.
        index: usize,
    },
    /// Two keys share a `kid`, so a `kid` would not select one key.
    #[error("two keys share the kid {kid:?}")]
    DuplicateKid {
        /// The kid (truncated).
        kid: String,
    },
    /// More keys than [`MAX_PUBLIC_KEYS`].
    #[error("the set holds {count} usable keys; at most {max} are accepted", max = MAX_PUBLIC_KEYS)]
    TooManyKeys {
        /// How many.
        count: usize,
    },
}

/// The public half of an EdDSA or ES256 key, with its `kid`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    alg: Algorithm,
    /// Ed25519: the 32-byte point. P-256: the 65-byte uncompressed point `04 ‖ x ‖ y`.
    raw: Vec<u8>,
    kid: String,
}

impl PublicKey {
    /// A key from its raw form, with `kid` (its thumbprint when `None`).
    ///
    /// # Errors
    /// When `alg` is not EdDSA or ES256, or `raw` has the wrong length or form for it.
    pub fn from_raw(alg: Algorithm, raw: &[u8], kid: Option<String>) -> Result<Self, String> {
        let ok = match alg {
            Algorithm::EdDSA => raw.len() == 32,
            Algorithm::ES256 => raw.len() == 65 && raw[0] == 4,
            Algorithm::HS256 => return Err("HS256 has no public key".to_owned()),
        };
        if !ok {
            return Err(format!("not a {} public key", alg.curve()));
        }
        let mut key = Self {
            alg,
            raw: raw.to_vec(),
            kid: String::new(),
        };
        key.kid = kid.unwrap_or_else(|| key.thumbprint());
        Ok(key)
    }

    /// The algorithm this key verifies, and the only one.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The RFC 7638 thumbprint: SHA-256 of the required members in lexicographic order,
    /// base64url (43 characters). Our own keys use it as their `kid`.
    pub fn thumbprint(&self) -> String {
        let canonical = match self.alg {
            Algorithm::ES256 => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                b64::encode(&self.raw[1..33]),
                b64::encode(&self.raw[33..65])
            ),
            _ => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                b64::encode(&self.raw)
            ),
        };
        b64::encode(&Sha256::digest(canonical.as_bytes()))
    }

    /// The key as a JWK: `kty`, `crv`, `x` (and `y`), `kid`, `alg`, `use: "sig"`. Never a
    /// private member.
    pub fn to_jwk(&self) -> Map<String, Value> {
        let mut jwk = Map::new();
        let s = |v: &str| Value::String(v.to_owned());
        match self.alg {
            Algorithm::ES256 => {
                jwk.insert("kty".into(), s("EC"));
                jwk.insert("crv".into(), s("P-256"));
                jwk.insert("x".into(), s(&b64::encode(&self.raw[1..33])));
                jwk.insert("y".into(), s(&b64::encode(&self.raw[33..65])));
            }
            _ => {
                jwk.insert("kty".into(), s("OKP"));
                jwk.insert("crv".into(), s("Ed25519"));
                jwk.insert("x".into(), s(&b64::encode(&self.raw)));
            }
        }
        jwk.insert("kid".into(), s(&self.kid));
        jwk.insert("alg".into(), s(self.alg.as_str()));
        jwk.insert("use".into(), s("sig"));
        jwk
    }

    /// Read one JWK. `Ok(None)` for a key that is not ours to use, skipped rather than
    /// refused: another key type (RSA), curve, an `oct` (symmetric) key — never trusted
    /// from a set — or a key whose `use`/`key_ops` exclude verifying.
    ///
    /// # Errors
    /// A private part (`d`), a mistyped member, coordinates of the wrong length or not
    /// strict base64url, or an `alg` that disagrees with the key type.
    pub fn from_jwk(jwk: &Map<String, Value>, index: usize) -> Result<Option<Self>, JwkError> {
        let invalid = |message: String| JwkError::Invalid { index, message };
        let text = |name: &str| -> Result<Option<&str>, JwkError> {
            match jwk.get(name) {
                None => Ok(None),
                Some(Value::String(v)) => Ok(Some(v.as_str())),
                Some(_) => Err(invalid(format!("{name} must be a string"))),
            }
        };
        if jwk.contains_key("d") {
            return Err(JwkError::PrivateKey { index });
        }
        let alg = match (text("kty")?, text("crv")?) {
            (Some("OKP"), Some("Ed25519")) => Algorithm::EdDSA,
            (Some("EC"), Some("P-256")) => Algorithm::ES256,
            (None, _) => return Err(invalid("no kty".to_owned())),
            _ => return Ok(None),
        };
        if let Some(named) = text("alg")?
            && named != alg.as_str()
        {
            return Err(invalid(format!(
                "alg {:?} does not match its {} key",
                shown(named),
                alg.curve()
            )));
        }
        if text("use")?.is_some_and(|u| u != "sig") {
            return Ok(None);
        }
        match jwk.get("key_ops") {
            Some(Value::Array(ops)) if !ops.iter().any(|op| op == "verify") => return Ok(None),
            None | Some(Value::Array(_)) => {}
            Some(_) => return Err(invalid("key_ops must be an array".to_owned())),
        }
        let coordinate = |name: &str| -> Result<[u8; 32], JwkError> {
            let value = text(name)?.ok_or_else(|| invalid(format!("no {name}")))?;
            let mut out = [0u8; 32];
            match b64::decode_into(value.as_bytes(), &mut out) {
                Ok(32) => Ok(out),
                _ => Err(invalid(format!(
                    "{name} is not 32 bytes of unpadded base64url"
                ))),
            }
        };
        let raw = match alg {
            Algorithm::ES256 => {
                let mut raw = vec![4u8];
                raw.extend_from_slice(&coordinate("x")?);
                raw.extend_from_slice(&coordinate("y")?);
                raw
            }
            _ => coordinate("x")?.to_vec(),
        };
        let kid = text("kid")?.map(str::to_owned);
        Self::from_raw(alg, &raw, kid).map(Some).map_err(invalid)
    }

    /// Whether `signature` (raw: 64 bytes for both algorithms) is this key's over
    /// `message`. ECDSA signatures with a high `s` are accepted, as RFC 7518 and ring do.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let alg: &'static dyn sig::VerificationAlgorithm = match self.alg {
            Algorithm::ES256 => &ECDSA_P256_SHA256_FIXED,
            _ => &ED25519,
        };
        UnparsedPublicKey::new(alg, &self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A value quoted in an error: at most 32 characters.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(32).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// The key pair inside a [`SigningKey`].
enum Pair {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
}

/// A private EdDSA or ES256 key. `Debug` shows its algorithm and `kid`, never the key.
pub struct SigningKey {
    pair: Pair,
    public: PublicKey,
}

impl SigningKey {
    /// A new key for `alg` from the OS CSPRNG, and its PKCS#8 PEM text (to write to a file
    /// of mode 0600).
    ///
    /// # Errors
    /// [`SigningKeyError::UnsupportedKey`] for HS256; [`SigningKeyError::Random`] when the
    /// OS random source fails.
    ///
    /// # Examples
    /// ```
    /// use countersign::jwt::Algorithm;
    /// use countersign::signing::SigningKey;
    /// let (key, pem) = SigningKey::generate(Algorithm::EdDSA).unwrap();
    /// assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    /// let again = SigningKey::from_pem(&pem).unwrap();
    /// assert_eq!(again.public(), key.public());
    /// assert_eq!(key.public().kid().len(), 43);
    /// ```
    pub fn generate(alg: Algorithm) -> Result<(Self, Zeroizing<String>), SigningKeyError> {
        let rng = SystemRandom::new();
        let der = match alg {
            Algorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&rng),
            Algorithm::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            }
            Algorithm::HS256 => return Err(SigningKeyError::UnsupportedKey),
        }
        .map_err(|_| SigningKeyError::Random)?;
        let der = Zeroizing::new(der.as_ref().to_vec());
        let key = Self::from_pkcs8(&der)?;
        Ok((key, pem_encode(&der)))
    }

    /// Read an unencrypted PKCS#8 key (`-----BEGIN PRIVATE KEY-----`). Ed25519 keys may
    /// be PKCS#8 v1 (no public key: `openssl genpkey -algorithm ED25519`) or v2; P-256
    /// keys must carry their public key (every common tool writes it).
    ///
    /// # Errors
    /// [`SigningKeyError::NotPem`], [`SigningKeyError::UnsupportedPem`] (SEC1, encrypted,
    /// RSA blocks, with the conversion to use), [`SigningKeyError::UnsupportedKey`].
    pub fn from_pem(text: &str) -> Result<Self, SigningKeyError> {
        let der = pem_decode(text)?;
        Self::from_pkcs8(&der)
    }

    /// Read a key file (see [`SigningKey::from_pem`]).
    ///
    /// # Errors
    /// [`SigningKeyError::File`], else as [`SigningKey::from_pem`].
    pub fn from_file(path: &Path) -> Result<Self, SigningKeyError> {
        let bytes =
            Zeroizing::new(std::fs::read(path).map_err(|source| SigningKeyError::File {
                path: path.display().to_string(),
                source: Arc::new(source),
            })?);
        let text = std::str::from_utf8(&bytes).map_err(|_| SigningKeyError::NotPem("not text"))?;
        Self::from_pem(text)
    }

    /// Read PKCS#8 DER bytes: an Ed25519 key, else a P-256 key.
    ///
    /// # Errors
    /// [`SigningKeyError::UnsupportedKey`].
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, SigningKeyError> {
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            let public = PublicKey::from_raw(Algorithm::EdDSA, pair.public_key().as_ref(), None)
                .map_err(|_| SigningKeyError::UnsupportedKey)?;
            return Ok(Self {
                pair: Pair::Ed25519(pair),
                public,
            });
        }
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|_| SigningKeyError::UnsupportedKey)?;
        let public = PublicKey::from_raw(Algorithm::ES256, pair.public_key().as_ref(), None)
            .map_err(|_| SigningKeyError::UnsupportedKey)?;
        Ok(Self {
            pair: Pair::P256(pair),
            public,
        })
    }

    /// The public half (with the `kid`).
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Algorithm {
        self.public.alg
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.public.kid
    }

    /// The raw 64-byte signature of `message`: Ed25519's, or ECDSA's `R ‖ S` (the JWS
    /// form, RFC 7518 §3.4; not DER).
    ///
    /// # Errors
    /// [`SignError`] when ECDSA cannot get randomness from the OS.
    pub fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        let mut out = [0u8; 64];
        match &self.pair {
            Pair::Ed25519(pair) => out.copy_from_slice(pair.sign(message).as_ref()),
            Pair::P256(pair) => {
                // ring hedges the nonce: the OS randomness is mixed with the key and the
                // message, so a weak random source does not leak the key.
                let signature = pair
                    .sign(&SystemRandom::new(), message)
                    .map_err(|_| SignError)?;
                out.copy_from_slice(signature.as_ref());
            }
        }
        Ok(out)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.public.alg)
            .field("kid", &self.public.kid)
            .field("private", &"[redacted]")
            .finish()
    }
}

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// The PKCS#8 DER inside the first PEM block of `text`.
fn pem_decode(text: &str) -> Result<Zeroizing<Vec<u8>>, SigningKeyError> {
    let start = text
        .find("-----BEGIN ")
        .ok_or(SigningKeyError::NotPem("no BEGIN line"))?;
    let block = &text[start..];
    let label_end = block[11..]
        .find("-----")
        .ok_or(SigningKeyError::NotPem("malformed BEGIN line"))?;
    match &block[11..11 + label_end] {
        "PRIVATE KEY" => {}
        "EC PRIVATE KEY" => {
            return Err(SigningKeyError::UnsupportedPem {
                kind: "SEC1 (EC PRIVATE KEY)",
                hint: "convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in OLD -out NEW`",
            });
        }
        "ENCRYPTED PRIVATE KEY" => {
            return Err(SigningKeyError::UnsupportedPem {
                kind: "encrypted PKCS#8",
                hint: "store it unencrypted in a file of mode 0600 (`openssl pkcs8 -in OLD -out NEW -nocrypt`)",
            });
        }
        "RSA PRIVATE KEY" => {
            return Err(SigningKeyError::UnsupportedPem {
                kind: "RSA",
                hint: "only EdDSA (Ed25519) and ES256 (P-256) are supported: `countersign keygen --alg EdDSA --out FILE`",
            });
        }
        _ => return Err(SigningKeyError::NotPem("not a PRIVATE KEY block")),
    }
    let body = &block[PEM_BEGIN.len()..];
    let end = body
        .find(PEM_END)
        .ok_or(SigningKeyError::NotPem("no END line"))?;
    let compact: Zeroizing<Vec<u8>> = Zeroizing::new(
        body[..end]
            .bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .collect(),
    );
    STANDARD
        .decode(&*compact)
        .map(Zeroizing::new)
        .map_err(|_| SigningKeyError::NotPem("the body is not base64"))
}

/// PKCS#8 DER as a PEM block, 64 characters a line.
fn pem_encode(der: &[u8]) -> Zeroizing<String> {
    let body = Zeroizing::new(STANDARD.encode(der));
    let mut out = Zeroizing::new(String::with_capacity(body.len() + 80));
    out.push_str(PEM_BEGIN);
    out.push('\n');
    for line in body.as_bytes().chunks(64) {
        // base64 output is ASCII.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(PEM_END);
    out.push('\n');
    out
}

/// A JWK Set's usable public keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JwkSet {
    /// The keys we can verify with, in the set's order.
    pub keys: Vec<PublicKey>,
    /// How many keys were skipped (other key types or curves, symmetric keys, keys not for
    /// signatures).
    pub skipped: usize,
}

impl JwkSet {
    /// Parse a JWK Set document (`{"keys": [...]}`) strictly: duplicate members anywhere
    /// are refused, as in tokens.
    ///
    /// # Errors
    /// [`JwkError`]: malformed JSON, a bad key, a private key, a repeated `kid`, too many
    /// keys.
    ///
    /// # Examples
    /// ```
    /// use countersign::jwt::Algorithm;
    /// use countersign::signing::{JwkSet, SigningKey};
    /// let (key, _) = SigningKey::generate(Algorithm::ES256).unwrap();
    /// let doc = JwkSet::to_json(&[key.public().clone()]);
    /// let set = JwkSet::parse(doc.as_bytes()).unwrap();
    /// assert_eq!(set.keys, [key.public().clone()]);
    /// ```
    pub fn parse(json: &[u8]) -> Result<Self, JwkError> {
        let doc = crate::jwt::parse_strict_object(json).map_err(JwkError::Malformed)?;
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(JwkError::Malformed("no \"keys\" array".to_owned()));
        };
        let mut set = Self::default();
        for (index, entry) in entries.iter().enumerate() {
            let Value::Object(jwk) = entry else {
                return Err(JwkError::Invalid {
                    index,
                    message: "not a JSON object".to_owned(),
                });
            };
            match PublicKey::from_jwk(jwk, index)? {
                Some(key) => {
                    if set.keys.iter().any(|k| k.kid == key.kid) {
                        return Err(JwkError::DuplicateKid {
                            kid: shown(&key.kid),
                        });
                    }
                    set.keys.push(key);
                }
                None => set.skipped += 1,
            }
        }
        if set.keys.len() > MAX_PUBLIC_KEYS {
            return Err(JwkError::TooManyKeys {
                count: set.keys.len(),
            });
        }
        Ok(set)
    }

    /// The JWK Set document for `keys`: `{"keys":[…]}`, public members only.
    pub fn to_json(keys: &[PublicKey]) -> String {
        let keys: Vec<Value> = keys.iter().map(|k| Value::Object(k.to_jwk())).collect();
        let mut doc = Map::new();
        doc.insert("keys".into(), Value::Array(keys));
        Value::Object(doc).to_string()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_pem_and_jwk() {
        for alg in [Algorithm::EdDSA, Algorithm::ES256] {
            let (key, pem) = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pem(&pem).unwrap();
            assert_eq!(again.public(), key.public());
            assert_eq!(key.alg(), alg);
            let jwk = key.public().to_jwk();
            assert!(!jwk.contains_key("d"));
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["alg"], alg.as_str());
            assert_eq!(
                PublicKey::from_jwk(&jwk, 0).unwrap().as_ref(),
                Some(key.public())
            );
            let signature = key.sign(b"message").unwrap();
            assert!(key.public().verify(b"message", &signature));
            assert!(!key.public().verify(b"massage", &signature));
        }
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let (key, pem) = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("[redacted]"), "{shown}");
        let body: String = pem.lines().nth(1).unwrap().chars().take(40).collect();
        assert!(!shown.contains(&body));
    }

    /// RFC 8037 appendix A.1–A.3: the Ed25519 key's JWK and its thumbprint.
    #[test]
    fn rfc8037_thumbprint() {
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let mut raw = [0u8; 32];
        b64::decode_into(x.as_bytes(), &mut raw).unwrap();
        let key = PublicKey::from_raw(Algorithm::EdDSA, &raw, None).unwrap();
        assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    /// RFC 7638 §3.1's example is RSA; for EC, the thumbprint of RFC 7515 A.3's key is
    /// checked against the canonical form computed by hand.
    #[test]
    fn ec_thumbprint_is_over_the_canonical_members() {
        let x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
        let y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
        let mut raw = vec![4u8];
        let mut c = [0u8; 32];
        b64::decode_into(x.as_bytes(), &mut c).unwrap();
        raw.extend_from_slice(&c);
        b64::decode_into(y.as_bytes(), &mut c).unwrap();
        raw.extend_from_slice(&c);
        let key = PublicKey::from_raw(Algorithm::ES256, &raw, None).unwrap();
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        assert_eq!(
            key.kid(),
            b64::encode(&Sha256::digest(canonical.as_bytes()))
        );
    }

    #[test]
    fn jwk_sets_skip_what_we_do_not_use_and_refuse_what_is_wrong() {
        let (ed, _) = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let mut jwk = ed.public().to_jwk();
        let doc = |keys: Vec<Value>| serde_json::json!({ "keys": keys }).to_string();
        let set = JwkSet::parse(
            doc(vec![
                Value::Object(jwk.clone()),
                serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "sym"}),
                serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
                serde_json::json!({"kty": "OKP", "crv": "X25519", "x": "AA"}),
            ])
            .as_bytes(),
        )
        .unwrap();
        assert_eq!((set.keys.len(), set.skipped), (1, 3));

        let refused = |keys: Vec<Value>| JwkSet::parse(doc(keys).as_bytes()).unwrap_err();
        let mut private = jwk.clone();
        private.insert("d".into(), "AAAA".into());
        assert_eq!(
            refused(vec![Value::Object(private)]),
            JwkError::PrivateKey { index: 0 }
        );
        assert!(matches!(
            refused(vec![Value::Object(jwk.clone()), Value::Object(jwk.clone())]),
            JwkError::DuplicateKid { .. }
        ));
        jwk.insert("alg".into(), "ES256".into());
        assert!(matches!(
            refused(vec![Value::Object(jwk.clone())]),
            JwkError::Invalid { index: 0, .. }
        ));
        jwk.insert("alg".into(), "EdDSA".into());
        jwk.insert("x".into(), "AAAA".into());
        assert!(matches!(
            refused(vec![Value::Object(jwk)]),
            JwkError::Invalid { index: 0, .. }
        ));
        assert!(matches!(
            JwkSet::parse(br#"{"keys":[],"keys":[]}"#).unwrap_err(),
            JwkError::Malformed(_)
        ));
        assert!(matches!(
            JwkSet::parse(b"[]").unwrap_err(),
            JwkError::Malformed(_)
        ));
    }

    #[test]
    fn pem_blocks_of_other_kinds_are_named() {
        for (label, want) in [
            ("EC PRIVATE KEY", "SEC1"),
            ("ENCRYPTED PRIVATE KEY", "encrypted"),
            ("RSA PRIVATE KEY", "RSA"),
        ] {
            let text = format!("-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n");
            let e = SigningKey::from_pem(&text).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
        assert!(matches!(
            SigningKey::from_pem("hello"),
            Err(SigningKeyError::NotPem(_))
        ));
        let junk = format!("{PEM_BEGIN}\nAAAA\n{PEM_END}\n");
        assert!(matches!(
            SigningKey::from_pem(&junk),
            Err(SigningKeyError::UnsupportedKey)
        ));
    }
}
