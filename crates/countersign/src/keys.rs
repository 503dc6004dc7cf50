//! Secret keys, the key ring and purpose subkeys.
//!
//! A [`SecretKey`] that exists is strong enough: [`SecretKey::parse`] is the only way to
//! make one, and it refuses short keys, known placeholders and values of too little variety
//! to hold 128 bits (the rule and its reasons: `docs/keys.md`).
//!
//! A [`KeyRing`] holds the current key, which signs, and the fallbacks, which only verify
//! (Flask 3.1's `SECRET_KEY_FALLBACKS`, Django's `SECRET_KEY_FALLBACKS`). Each key has a
//! [`KeyId`] derived from an HMAC of the key, so the id reveals nothing about it.
//!
//! HS256 JWTs use the key bytes as they are, so a Flask or PyJWT app holding the same
//! `SECRET_KEY` interoperates. Every other use takes a [`Purpose`] subkey derived with
//! HKDF-SHA256, so a value made for one purpose is never accepted for another.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// HMAC-SHA256, keyed once and cloned per message.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The shortest key accepted, in bytes: the HS256 hash output size (RFC 7518 §3.2).
pub const MIN_KEY_BYTES: usize = 32;

/// The bits of capacity a key's alphabet and length must reach.
pub const MIN_KEY_BITS: f64 = 128.0;

/// How many keys a ring may hold (the current one and the fallbacks). A token without a
/// `kid` costs at most this many MACs.
pub const MAX_RING_KEYS: usize = 8;

/// Why a key was refused. The message names the fix; it never contains key material.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No key was given.
    #[error(
        "no secret key is set: set SECRET_KEY (or SECRET_KEY_FILE) to the output of `countersign keygen`"
    )]
    Missing,
    /// The key is a well-known example value.
    #[error(
        "the secret key is a known placeholder value, published in tutorials and docs: replace it with the output of `countersign keygen`"
    )]
    Placeholder,
    /// The key is shorter than [`MIN_KEY_BYTES`].
    #[error("the secret key is {len} bytes; at least {min} are required (RFC 7518 §3.2): generate one with `countersign keygen`", min = MIN_KEY_BYTES)]
    TooShort {
        /// The key's length in bytes.
        len: usize,
    },
    /// The key's characters cannot hold 128 bits (too few symbols, repeats, runs).
    #[error(
        "the secret key has too little variety to hold 128 bits ({reason}): generate one with `countersign keygen`"
    )]
    LowVariety {
        /// Which part of the variety rule failed.
        reason: &'static str,
    },
    /// A key file could not be read.
    #[error("cannot read the secret key file {path}: {source}")]
    File {
        /// The file's path.
        path: String,
        /// What the operating system said.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The same key appears twice in the ring.
    #[error(
        "the same key appears twice in the key ring (kid {kid}): remove the duplicate from SECRET_KEY_FALLBACKS"
    )]
    Duplicate {
        /// The id of the repeated key.
        kid: KeyId,
    },
    /// More keys than [`MAX_RING_KEYS`].
    #[error("the key ring holds {count} keys; at most {max} are allowed: drop the oldest fallbacks", max = MAX_RING_KEYS)]
    TooManyKeys {
        /// How many keys were given.
        count: usize,
    },
}

impl PartialEq for KeyError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::File { path: a, source: x }, Self::File { path: b, source: y }) => {
                a == b && x.kind() == y.kind()
            }
            (Self::TooShort { len: a }, Self::TooShort { len: b }) => a == b,
            (Self::LowVariety { reason: a }, Self::LowVariety { reason: b }) => a == b,
            (Self::Duplicate { kid: a }, Self::Duplicate { kid: b }) => a == b,
            (Self::TooManyKeys { count: a }, Self::TooManyKeys { count: b }) => a == b,
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}
impl Eq for KeyError {}

/// Placeholders refused whatever their length: compared after lowercasing and keeping
/// only letters and digits, either equal to the whole key or to a repetition of it.
const PLACEHOLDERS_EXACT: &[&str] = &[
    "secret",
    "yoursecretkey",
    "secretkey",
    "mysecretkey",
    "mysecret",
    "supersecret",
    "supersecretkey",
    "your256bitsecret",
    "keyboardcat",
    "shhhhh",
    "s3cr3t",
    "password",
    "changeme",
    "default",
    "development",
    "test",
    "dev",
    "jwtsecret",
    "jwtsecretkey",
    "flasksecretkey",
    "5y2lf4q8z9ec", // the seeds' and Flask's quick-start example, b'_5#y2L!F4Q8z-9ec]/'
];

/// Phrases that mark a placeholder wherever they stand in the key (same normalisation).
/// A random 32-byte key contains one of these with probability below 2^-40.
const PLACEHOLDERS_CONTAINED: &[&str] = &[
    "yoursecretkey",
    "changeme",
    "changethis",
    "replaceme",
    "replacethis",
    "placeholder",
    "insecure",
    "notsecret",
    "notasecret",
    "donotuse",
    "example",
    "your256bitsecret",
];

/// A secret key that passed the strength rules. Redacted in `Debug`, zeroized on drop,
/// compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    /// Parse a key from the text of `SECRET_KEY`: its UTF-8 bytes are the key, as in Flask,
    /// Django and PyJWT.
    ///
    /// # Errors
    /// [`KeyError::Missing`] for an empty value, [`KeyError::Placeholder`],
    /// [`KeyError::TooShort`] or [`KeyError::LowVariety`] for a weak one.
    ///
    /// # Examples
    /// ```
    /// use countersign::keys::{KeyError, SecretKey};
    /// assert_eq!(SecretKey::parse("your_secret_key").err(), Some(KeyError::Placeholder));
    /// // What `countersign keygen` prints parses (never paste a key from documentation).
    /// let (_, text) = SecretKey::generate(32).unwrap();
    /// assert!(SecretKey::parse(&text).is_ok());
    /// ```
    pub fn parse(value: &str) -> Result<Self, KeyError> {
        Self::from_bytes(value.as_bytes())
    }

    /// Parse a key from raw bytes (the same rules as [`SecretKey::parse`]).
    ///
    /// # Errors
    /// As [`SecretKey::parse`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        check_strength(bytes)?;
        Ok(Self(bytes.to_vec()))
    }

    /// Read a key from a file (`SECRET_KEY_FILE`): its contents, less one trailing newline.
    ///
    /// # Errors
    /// [`KeyError::File`] when the file cannot be read, else as [`SecretKey::parse`].
    pub fn from_file(path: &std::path::Path) -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| KeyError::File {
            path: path.display().to_string(),
            source: Arc::new(source),
        })?);
        let mut value: &[u8] = &bytes;
        if let Some(rest) = value.strip_suffix(b"\n") {
            value = rest.strip_suffix(b"\r").unwrap_or(rest);
        }
        Self::from_bytes(value)
    }

    /// Generate a key: `bytes` random bytes from the OS CSPRNG, as base64url without
    /// padding (the text form `countersign keygen` prints). `bytes` is at least 32.
    ///
    /// # Errors
    /// When the operating system's random source fails.
    pub fn generate(bytes: usize) -> Result<(Self, Zeroizing<String>), getrandom::Error> {
        let mut raw = Zeroizing::new(vec![0u8; bytes.max(MIN_KEY_BYTES)]);
        getrandom::fill(&mut raw)?;
        let text = Zeroizing::new(URL_SAFE_NO_PAD.encode(&*raw));
        // 43+ base64url characters from a CSPRNG: the strength rules cannot refuse this
        // except with negligible probability; should they, ask the OS again.
        match Self::parse(&text) {
            Ok(key) => Ok((key, text)),
            Err(_) => Self::generate(bytes),
        }
    }

    /// The key bytes, for the HS256 MAC and HKDF. Crate-private: no caller outside the
    /// engine ever holds raw key material.
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The key's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: an empty key is refused.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The key's id: HMAC-SHA256 of a fixed label under the key, first 9 bytes, base64url.
    pub fn kid(&self) -> KeyId {
        let mut mac = HmacSha256::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"countersign/kid/v1");
        let tag = mac.finalize().into_bytes();
        KeyId(URL_SAFE_NO_PAD.encode(&tag[..9]))
    }

    /// A 32-byte subkey for `purpose` (HKDF-SHA256, RFC 5869).
    pub fn subkey(&self, purpose: Purpose) -> Subkey {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"countersign/v1"), &self.0);
        let mut out = [0u8; 32];
        hk.expand(purpose.label().as_bytes(), &mut out)
            .unwrap_or_else(|_| unreachable!("32 bytes is within HKDF-SHA256's output limit"));
        Subkey(out)
    }

    /// A rough capacity estimate in bits: length × log2(alphabet).
    pub fn capacity_bits(&self) -> f64 {
        capacity_bits(&self.0)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for SecretKey {}

impl std::str::FromStr for SecretKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// What a subkey is for. Each purpose has its own HKDF label, so subkeys never collide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Purpose {
    /// The MAC on session cookie values.
    SessionCookie,
    /// CSRF synchronizer tokens.
    Csrf,
    /// The keyed hash under which refresh tokens are stored.
    RefreshToken,
    /// The AEAD key sealing second-factor secrets (TOTP) at rest.
    MfaSecret,
    /// The AEAD key sealing second-factor challenges and WebAuthn ceremony state.
    MfaChallenge,
    /// Anything else, named by the caller (e.g. an embedding application's own cookies).
    Custom(&'static str),
}

impl Purpose {
    /// The HKDF `info` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::SessionCookie => "countersign/session-cookie",
            Self::Csrf => "countersign/csrf",
            Self::RefreshToken => "countersign/refresh-token",
            Self::MfaSecret => "countersign/mfa-secret",
            Self::MfaChallenge => "countersign/mfa-challenge",
            Self::Custom(label) => label,
        }
    }
}

/// A derived key for one [`Purpose`]. Redacted, zeroized, never used for JWTs.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Subkey([u8; 32]);

impl Subkey {
    /// HMAC-SHA256 of `parts` (each length-prefixed, so ("ab","c") ≠ ("a","bc")).
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The raw key, for an AEAD (`mfa::seal`): never leaves the crate.
    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `tag` is the MAC of `parts`, compared in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        self.mac(parts).ct_eq(tag).into()
    }

    /// A subkey of 32 bytes straight from the OS CSPRNG, derived from no key: for a MAC
    /// that lives only as long as the process (the setup link), so that rotating the key
    /// ring neither breaks it nor needs it.
    pub(crate) fn random() -> Result<Self, getrandom::Error> {
        let mut key = Self([0u8; 32]);
        getrandom::fill(&mut key.0)?;
        Ok(key)
    }
}

impl fmt::Debug for Subkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Subkey([redacted])")
    }
}

/// A key's public id, put in the JWT header as `kid`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Refuse a key that is a placeholder, short, or of too little variety.
fn check_strength(bytes: &[u8]) -> Result<(), KeyError> {
    if bytes.is_empty() {
        return Err(KeyError::Missing);
    }
    if is_placeholder(bytes) {
        return Err(KeyError::Placeholder);
    }
    if bytes.len() < MIN_KEY_BYTES {
        return Err(KeyError::TooShort { len: bytes.len() });
    }
    if let Some(reason) = low_variety(bytes) {
        return Err(KeyError::LowVariety { reason });
    }
    Ok(())
}

fn is_placeholder(bytes: &[u8]) -> bool {
    let norm: Zeroizing<Vec<u8>> = Zeroizing::new(
        bytes
            .iter()
            .filter(|b| b.is_ascii_alphanumeric())
            .map(u8::to_ascii_lowercase)
            .collect(),
    );
    if norm.is_empty() {
        return false;
    }
    let is_repetition_of = |word: &[u8]| {
        norm.len().is_multiple_of(word.len()) && norm.chunks(word.len()).all(|chunk| chunk == word)
    };
    PLACEHOLDERS_EXACT
        .iter()
        .any(|p| is_repetition_of(p.as_bytes()))
        || PLACEHOLDERS_CONTAINED
            .iter()
            .any(|p| norm.windows(p.len()).any(|w| w == p.as_bytes()))
}

/// The size of the smallest common alphabet that holds every byte of the key.
fn alphabet_size(bytes: &[u8]) -> u32 {
    let all = |f: fn(&u8) -> bool| bytes.iter().all(f);
    if all(u8::is_ascii_digit) {
        10
    } else if all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        || all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
    {
        16
    } else if all(u8::is_ascii_lowercase) || all(u8::is_ascii_uppercase) {
        26
    } else if all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        || all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        36
    } else if all(u8::is_ascii_alphanumeric) {
        62
    } else if all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/' | b'=')) {
        64
    } else if all(|b| b.is_ascii_graphic() || *b == b' ') {
        95
    } else {
        256
    }
}

fn capacity_bits(bytes: &[u8]) -> f64 {
    bytes.len() as f64 * f64::from(alphabet_size(bytes)).log2()
}

/// The variety rule (`docs/keys.md`): enough capacity for the alphabet, no long repeats,
/// no runs, enough distinct symbols. Returns which part failed.
fn low_variety(bytes: &[u8]) -> Option<&'static str> {
    if capacity_bits(bytes) < MIN_KEY_BITS {
        return Some("too short for the characters it uses");
    }
    let mut seen = [false; 256];
    for &b in bytes {
        seen[usize::from(b)] = true;
    }
    if seen.iter().filter(|s| **s).count() < 8 {
        return Some("fewer than 8 distinct characters");
    }
    let windows = bytes.len() - 3;
    let mut grams: Vec<[u8; 4]> = bytes.windows(4).map(|w| [w[0], w[1], w[2], w[3]]).collect();
    grams.sort_unstable();
    grams.dedup();
    let distinct = grams.len();
    grams.zeroize();
    if distinct * 4 < windows * 3 {
        return Some("repeated sequences");
    }
    let steps = bytes
        .windows(2)
        .filter(|w| w[0].abs_diff(w[1]) <= 1)
        .count();
    if steps * 2 > bytes.len() - 1 {
        return Some("runs of repeated or consecutive characters");
    }
    None
}

/// One key of the ring with what is precomputed from it.
pub(crate) struct RingKey {
    pub(crate) key: SecretKey,
    pub(crate) kid: KeyId,
    /// The HMAC state keyed with the raw key; cloned for each token.
    pub(crate) hs256: HmacSha256,
    /// The exact base64url header segment this ring issues with this key.
    pub(crate) header_b64: String,
}

impl RingKey {
    fn new(key: SecretKey) -> Self {
        let kid = key.kid();
        let hs256 = HmacSha256::new_from_slice(key.expose())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#);
        let header_b64 = URL_SAFE_NO_PAD.encode(header.as_bytes());
        Self {
            key,
            kid,
            hs256,
            header_b64,
        }
    }
}

/// The current key (signs and verifies) and the fallbacks (verify only).
///
/// # Examples
/// ```
/// use countersign::keys::{KeyRing, SecretKey};
/// let (old, _) = SecretKey::generate(32).unwrap();
/// let (new, _) = SecretKey::generate(32).unwrap();
/// let ring = KeyRing::new(new, vec![old]).unwrap();
/// assert_eq!(ring.len(), 2);
/// ```
pub struct KeyRing {
    /// `keys[0]` is the current key.
    pub(crate) keys: Vec<RingKey>,
}

impl KeyRing {
    /// A ring whose `current` key signs and whose `fallbacks` (newest first) verify.
    ///
    /// # Errors
    /// [`KeyError::Duplicate`] when a key repeats, [`KeyError::TooManyKeys`] past
    /// [`MAX_RING_KEYS`].
    pub fn new(current: SecretKey, fallbacks: Vec<SecretKey>) -> Result<Self, KeyError> {
        let count = 1 + fallbacks.len();
        if count > MAX_RING_KEYS {
            return Err(KeyError::TooManyKeys { count });
        }
        let mut keys: Vec<RingKey> = Vec::with_capacity(count);
        for key in std::iter::once(current).chain(fallbacks) {
            let entry = RingKey::new(key);
            if keys.iter().any(|k| k.key == entry.key) {
                return Err(KeyError::Duplicate { kid: entry.kid });
            }
            keys.push(entry);
        }
        Ok(Self { keys })
    }

    /// A ring of one key.
    pub fn single(current: SecretKey) -> Self {
        let entry = RingKey::new(current);
        Self { keys: vec![entry] }
    }

    /// The current (signing) key's id.
    pub fn current_kid(&self) -> &KeyId {
        &self.keys[0].kid
    }

    /// The ids of every key, current first.
    pub fn kids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.iter().map(|k| &k.kid)
    }

    /// How many keys the ring holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a ring has a current key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The current key (for deriving subkeys that sign).
    pub fn current(&self) -> &SecretKey {
        &self.keys[0].key
    }

    /// Every key, current first (for checking subkey MACs made before a rotation).
    pub fn all(&self) -> impl Iterator<Item = &SecretKey> {
        self.keys.iter().map(|k| &k.key)
    }

    /// Subkeys for `purpose`, current first: sign with the first, accept any.
    pub fn subkeys(&self, purpose: Purpose) -> Vec<Subkey> {
        self.all().map(|k| k.subkey(purpose)).collect()
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("kids", &self.kids().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "kQ3v9ZtWm0Xb4yH7sLp2eRj8uNc6aFd1gT5oVi0qYwE";

    #[test]
    fn accepts_keygen_output() {
        for _ in 0..200 {
            let (key, text) = SecretKey::generate(32).unwrap();
            assert_eq!(text.len(), 43);
            assert_eq!(key.len(), 43);
        }
        assert!(SecretKey::parse(GOOD).is_ok());
    }

    #[test]
    fn accepts_python_token_hex_16() {
        // secrets.token_hex(16): exactly 128 bits in 32 hex characters.
        assert!(SecretKey::parse("3f9a1c27e4b05d68a7c2e91f04b3d856").is_ok());
    }

    #[test]
    fn refuses_empty_short_placeholder() {
        assert_eq!(SecretKey::parse(""), Err(KeyError::Missing));
        assert_eq!(
            SecretKey::parse("your_secret_key"),
            Err(KeyError::Placeholder)
        );
        assert_eq!(
            SecretKey::parse("_5#y2L!F4Q8z-9ec]/"),
            Err(KeyError::Placeholder)
        );
        assert_eq!(SecretKey::parse("changeme"), Err(KeyError::Placeholder));
        assert_eq!(SecretKey::parse("secret"), Err(KeyError::Placeholder));
        assert_eq!(
            SecretKey::parse("your_secret_key_your_secret_key_your_secret_key"),
            Err(KeyError::Placeholder)
        );
        assert_eq!(
            SecretKey::parse("please-change-me-before-deploying-9f8e7d6c5b4a"),
            Err(KeyError::Placeholder)
        );
        assert_eq!(
            SecretKey::parse("Zx81kQv0pL2m"),
            Err(KeyError::TooShort { len: 12 })
        );
    }

    #[test]
    fn refuses_low_variety() {
        let cases = [
            "a".repeat(64),
            "ab".repeat(32),
            "0123456789".repeat(5),
            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnop".to_string(),
            "12345678901234567890123456789012".to_string(),
            "Kx9!Kx9!Kx9!Kx9!Kx9!Kx9!Kx9!Kx9!Kx9!".to_string(),
        ];
        for case in cases {
            assert!(
                matches!(SecretKey::parse(&case), Err(KeyError::LowVariety { .. })),
                "{case} was accepted"
            );
        }
    }

    #[test]
    fn debug_is_redacted() {
        let key = SecretKey::parse(GOOD).unwrap();
        let shown = format!("{key:?} {:?}", key.subkey(Purpose::Csrf));
        assert!(!shown.contains(GOOD));
        assert!(shown.contains("[redacted]"));
        let ring = KeyRing::single(key);
        assert!(!format!("{ring:?}").contains(GOOD));
    }

    #[test]
    fn kid_is_stable_and_distinct() {
        let a = SecretKey::parse(GOOD).unwrap();
        let (b, _) = SecretKey::generate(32).unwrap();
        assert_eq!(a.kid(), SecretKey::parse(GOOD).unwrap().kid());
        assert_ne!(a.kid(), b.kid());
        assert_eq!(a.kid().as_str().len(), 12);
    }

    #[test]
    fn subkeys_differ_by_purpose_and_key() {
        let a = SecretKey::parse(GOOD).unwrap();
        let msg: &[&[u8]] = &[b"x"];
        let s = a.subkey(Purpose::SessionCookie).mac(msg);
        let c = a.subkey(Purpose::Csrf).mac(msg);
        assert_ne!(s, c);
        assert!(a.subkey(Purpose::SessionCookie).verify(msg, &s));
        assert!(!a.subkey(Purpose::Csrf).verify(msg, &s));
        // Length prefixes keep part boundaries.
        let k = a.subkey(Purpose::Csrf);
        assert_ne!(k.mac(&[b"ab", b"c"]), k.mac(&[b"a", b"bc"]));
    }

    #[test]
    fn ring_refuses_duplicates_and_too_many() {
        let a = SecretKey::parse(GOOD).unwrap();
        assert!(matches!(
            KeyRing::new(a.clone(), vec![a.clone()]),
            Err(KeyError::Duplicate { .. })
        ));
        let many = (0..MAX_RING_KEYS)
            .map(|_| SecretKey::generate(32).unwrap().0)
            .collect();
        assert_eq!(
            KeyRing::new(a, many).err(),
            Some(KeyError::TooManyKeys {
                count: MAX_RING_KEYS + 1
            })
        );
    }

    #[test]
    fn key_file_strips_one_newline() {
        let dir = std::env::temp_dir().join(format!("cs-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k");
        std::fs::write(&path, format!("{GOOD}\n")).unwrap();
        let key = SecretKey::from_file(&path).unwrap();
        assert_eq!(key, SecretKey::parse(GOOD).unwrap());
        let missing = SecretKey::from_file(&dir.join("nope"));
        assert!(matches!(missing, Err(KeyError::File { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
