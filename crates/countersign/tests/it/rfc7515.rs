//! RFC 7515 appendix A.1: the HS256 known-answer vector.
//!
//! The key is the JWK octet key of A.1, 64 raw bytes that are not UTF-8 text, so it goes
//! through `SecretKey::from_bytes`; being 64 random bytes, it passes the strength rules.
//! The header is `{"typ":"JWT",\r\n "alg":"HS256"}` (CRLF and a space, no `kid`), which
//! exercises the general header parser rather than the fast path for our own headers.

use countersign::clock::UnixTime;
use countersign::jwt::{self, JwtError, Validation};
use countersign::keys::{KeyRing, SecretKey};
use serde_json::json;

use crate::util::{b64, hs256, unb64};

/// The JWK `k` member of A.1.
const JWK_K: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

/// The complete JWS of A.1.
const TOKEN: &str = concat!(
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9",
    ".",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".",
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
);

/// The signature of A.1 as the RFC lists it, byte by byte.
const SIGNATURE: [u8; 32] = [
    116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77,
    105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
];

/// The octets of the JWS Protected Header and Payload of A.1.
const HEADER_JSON: &[u8] = b"{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
const PAYLOAD_JSON: &[u8] =
    b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";

const EXP: i64 = 1_300_819_380;

fn rfc_key() -> SecretKey {
    let raw = unb64(JWK_K);
    assert_eq!(raw.len(), 64);
    assert!(
        std::str::from_utf8(&raw).is_err(),
        "the A.1 key is raw bytes"
    );
    SecretKey::from_bytes(&raw).expect("64 random bytes pass the strength rules")
}

#[test]
fn segments_are_the_rfc_octets() {
    let parts: Vec<&str> = TOKEN.split('.').collect();
    assert_eq!(unb64(parts[0]), HEADER_JSON);
    assert_eq!(unb64(parts[1]), PAYLOAD_JSON);
    assert_eq!(unb64(parts[2]), SIGNATURE);
}

#[test]
fn the_mac_equals_the_rfc_signature() {
    let signing_input = TOKEN.rsplit_once('.').unwrap().0;
    let mac = hs256(&unb64(JWK_K), signing_input.as_bytes());
    assert_eq!(mac, SIGNATURE);
    assert_eq!(b64(&mac), TOKEN.rsplit_once('.').unwrap().1);
}

#[test]
fn verifies_before_exp_with_the_rfc_claims() {
    let ring = KeyRing::single(rfc_key());
    let strict = Validation {
        leeway_secs: 0,
        ..Validation::default()
    };
    let ok = jwt::verify(&ring, &strict, TOKEN, UnixTime(EXP - 1)).unwrap();
    assert_eq!(ok.key_index, 0);
    assert_eq!(ok.claims.iss.as_deref(), Some("joe"));
    assert_eq!(ok.claims.exp, UnixTime(EXP));
    assert_eq!(
        ok.claims.extra.get("http://example.com/is_root"),
        Some(&json!(true))
    );
    assert_eq!(ok.claims.extra.len(), 1);
    assert!(ok.claims.sub.is_none() && ok.claims.iat.is_none() && ok.claims.aud.is_empty());

    // A configured issuer of "joe" accepts it too.
    let joe = Validation {
        issuer: Some("joe".into()),
        ..strict.clone()
    };
    assert!(jwt::verify(&ring, &joe, TOKEN, UnixTime(EXP - 3600)).is_ok());
}

#[test]
fn expires_at_exp_and_after_the_leeway() {
    let ring = KeyRing::single(rfc_key());
    let strict = Validation {
        leeway_secs: 0,
        ..Validation::default()
    };
    assert_eq!(
        jwt::verify(&ring, &strict, TOKEN, UnixTime(EXP)).unwrap_err(),
        JwtError::Expired { ago: 0 }
    );
    let default = Validation::default();
    assert!(jwt::verify(&ring, &default, TOKEN, UnixTime(EXP + 29)).is_ok());
    assert_eq!(
        jwt::verify(&ring, &default, TOKEN, UnixTime(EXP + 30)).unwrap_err(),
        JwtError::Expired { ago: 30 }
    );
}

#[test]
fn refused_under_another_key_or_with_a_flipped_bit() {
    let other = KeyRing::single(SecretKey::generate(32).unwrap().0);
    assert_eq!(
        jwt::verify(&other, &Validation::default(), TOKEN, UnixTime(EXP - 1)).unwrap_err(),
        JwtError::InvalidSignature { tried: 1 }
    );

    let ring = KeyRing::single(rfc_key());
    let mut sig = SIGNATURE;
    sig[0] ^= 1;
    let (input, _) = TOKEN.rsplit_once('.').unwrap();
    let tampered = format!("{input}.{}", b64(&sig));
    assert_eq!(
        jwt::verify(&ring, &Validation::default(), &tampered, UnixTime(EXP - 1)).unwrap_err(),
        JwtError::InvalidSignature { tried: 1 }
    );
}
