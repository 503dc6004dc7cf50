//! Shared helpers: test keys, and a forger that signs arbitrary header and payload bytes
//! with HMAC-SHA256 so that the MAC is valid and the rule under test is the one that fails.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use countersign::clock::UnixTime;
use countersign::jwt::{self, JwtError, Validation, Verified};
use countersign::keys::{KeyRing, SecretKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A fixed "now" for tests that do not talk to another library's wall clock.
pub const NOW: i64 = 1_700_000_000;

/// A fresh key from the OS CSPRNG, with its text (whose UTF-8 bytes are the key, as in
/// `SECRET_KEY`). Generated per test: nothing here can be reused as a real secret.
pub struct TestKey {
    pub key: SecretKey,
    pub text: String,
}

impl TestKey {
    pub fn generate() -> Self {
        let (key, text) = SecretKey::generate(32).unwrap();
        Self {
            key,
            text: text.to_string(),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    pub fn ring(&self) -> KeyRing {
        KeyRing::single(self.key.clone())
    }

    pub fn kid(&self) -> String {
        self.key.kid().to_string()
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// HMAC-SHA256 of `input` under `key`, computed independently of the engine.
pub fn hs256(key: &[u8], input: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(input);
    mac.finalize().into_bytes().into()
}

/// `header_b64.payload_b64.MAC`, the segments taken as given (so they may be malformed).
pub fn sign_segments(key: &[u8], header_b64: &str, payload_b64: &str) -> String {
    let input = format!("{header_b64}.{payload_b64}");
    let sig = b64(&hs256(key, input.as_bytes()));
    format!("{input}.{sig}")
}

/// A token with exactly these header and payload bytes and a valid MAC under `key`.
pub fn forge(key: &[u8], header: &[u8], payload: &[u8]) -> String {
    sign_segments(key, &b64(header), &b64(payload))
}

/// The header our issuer writes for `key`.
pub fn our_header(key: &TestKey) -> String {
    format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#, key.kid())
}

/// Claims that verify at [`NOW`].
pub fn good_payload() -> String {
    format!(
        r#"{{"sub":"u1","username":"john_doe","role":"admin","exp":{}}}"#,
        NOW + 600
    )
}

pub fn verify_at(ring: &KeyRing, token: &str, now: i64) -> Result<Verified, JwtError> {
    jwt::verify(ring, &Validation::default(), token, UnixTime(now))
}

pub fn verify_with(
    ring: &KeyRing,
    validation: &Validation,
    token: &str,
    now: i64,
) -> Result<Verified, JwtError> {
    jwt::verify(ring, validation, token, UnixTime(now))
}

/// The wall clock, for tests against libraries that read it themselves (jsonwebtoken,
/// PyJWT). Our verifier is still given the time as a parameter.
pub fn wall_clock_now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}
