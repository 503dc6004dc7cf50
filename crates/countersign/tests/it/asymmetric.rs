//! EdDSA and ES256: round trips, one test per refusal the asymmetric path adds (with the
//! exact error kind), high-S ECDSA accepted, and PyJWT both ways.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use countersign::clock::UnixTime;
use countersign::jwt::{
    self, Algorithm, Issuance, JwtError, PublicKeys, Signer, Subject, TokenKeys, Validation,
};
use countersign::keys::KeyRing;
use countersign::signing::SigningKey;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

use crate::interop::run_python;
use crate::util::{NOW, TestKey, b64, forge, good_payload, unb64, wall_clock_now};

fn generate(alg: Algorithm) -> (SigningKey, String) {
    let (key, pem) = SigningKey::generate(alg).unwrap();
    (key, pem.to_string())
}

/// `header.payload.signature` with `key`'s raw signature over exactly these bytes.
fn sign_with(key: &SigningKey, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let signature = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(&signature))
}

fn header(alg: &str, kid: &str) -> String {
    format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#)
}

fn keys_of(keys: &[&SigningKey]) -> PublicKeys {
    PublicKeys::new(keys.iter().map(|k| k.public().clone()).collect()).unwrap()
}

fn verify(ring: Option<&KeyRing>, public: &PublicKeys, token: &str) -> Result<Algorithm, JwtError> {
    jwt::verify_any(ring, public, &Validation::default(), token, UnixTime(NOW)).map(|v| v.algorithm)
}

#[test]
fn issued_tokens_verify_with_the_public_key_only() {
    for alg in [Algorithm::EdDSA, Algorithm::ES256] {
        let (key, _) = generate(alg);
        let public = keys_of(&[&key]);
        let kid = key.kid().to_owned();
        let signer = Signer::new(key);
        let subject = Subject {
            username: Some("john_doe".into()),
            ..Subject::default()
        };
        let issued =
            jwt::issue_signed(&signer, &Issuance::default(), subject, UnixTime(NOW)).unwrap();
        let (h, _) = jwt::dangerous::decode_unverified(&issued.token).unwrap();
        assert_eq!(h["alg"], alg.as_str());
        assert_eq!(h["kid"], kid.as_str());
        assert_eq!(kid.len(), 43, "an RFC 7638 thumbprint");
        let ok = jwt::verify_any(
            None,
            &public,
            &Validation::default(),
            &issued.token,
            UnixTime(NOW),
        )
        .unwrap();
        assert_eq!(
            (ok.algorithm, ok.key_index, ok.claims),
            (alg, 0, issued.claims)
        );
        // One changed signature byte.
        let mut bad = issued.token.clone().into_bytes();
        let at = bad.len() - 10;
        bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(
            verify(None, &public, &bad),
            Err(JwtError::InvalidSignature { tried: 1 })
        );
        // Expiry still applies.
        assert!(
            jwt::verify_any(
                None,
                &public,
                &Validation::default(),
                &issued.token,
                UnixTime(NOW + 3_600)
            )
            .unwrap_err()
            .is_expired()
        );
    }
}

/// The classic algorithm confusion: an HS256 token whose MAC key is the public key (its
/// raw bytes, its JWK text, its `x`) and whose `kid` names the public key. The `kid`
/// selects an asymmetric key, which never verifies an HMAC; and the HS256 ring never
/// holds public keys.
#[test]
fn refuses_hs256_made_with_the_public_key() {
    let (key, _) = generate(Algorithm::EdDSA);
    let public = keys_of(&[&key]);
    let ring = TestKey::generate().ring();
    let jwk = Value::Object(key.public().to_jwk()).to_string();
    let x = key.public().to_jwk()["x"].as_str().unwrap().to_owned();
    let raw = unb64(&x);
    for mac_key in [raw.as_slice(), jwk.as_bytes(), x.as_bytes()] {
        let with_kid = forge(
            mac_key,
            header("HS256", key.kid()).as_bytes(),
            good_payload().as_bytes(),
        );
        assert_eq!(
            verify(Some(&ring), &public, &with_kid),
            Err(JwtError::UnknownKey {
                kid: format!("{}…", &key.kid()[..32])
            })
        );
        let without_kid = forge(
            mac_key,
            br#"{"alg":"HS256","typ":"JWT"}"#,
            good_payload().as_bytes(),
        );
        assert_eq!(
            verify(Some(&ring), &public, &without_kid),
            Err(JwtError::InvalidSignature { tried: 1 })
        );
        // With HS256 switched off, the algorithm itself is refused.
        for token in [&with_kid, &without_kid] {
            assert_eq!(
                verify(None, &public, token),
                Err(JwtError::AlgorithmNotAccepted {
                    alg: "HS256".into()
                })
            );
        }
    }
}

#[test]
fn refuses_alg_none() {
    let (key, _) = generate(Algorithm::ES256);
    let public = keys_of(&[&key]);
    let ring = TestKey::generate().ring();
    for alg in ["none", "None", "NONE"] {
        let token = format!(
            "{}.{}.",
            b64(header(alg, key.kid()).as_bytes()),
            b64(good_payload().as_bytes())
        );
        for ring in [None, Some(&ring)] {
            assert_eq!(
                verify(ring, &public, &token),
                Err(JwtError::AlgorithmNotAccepted { alg: alg.into() })
            );
        }
    }
}

/// Keys and key URLs named by the token are never fetched nor trusted, even with a
/// signature that verifies under the `kid`'s key.
#[test]
fn refuses_key_bearing_headers() {
    let (key, _) = generate(Algorithm::EdDSA);
    let public = keys_of(&[&key]);
    let jwk = Value::Object(key.public().to_jwk());
    for (name, value) in [
        ("jwk", jwk),
        ("jku", json!("https://attacker.example/jwks.json")),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("x5c", json!(["MIIB"])),
    ] {
        let mut h =
            serde_json::from_str::<serde_json::Map<String, Value>>(&header("EdDSA", key.kid()))
                .unwrap();
        h.insert(name.into(), value);
        let token = sign_with(&key, &Value::Object(h).to_string(), &good_payload());
        assert_eq!(
            verify(None, &public, &token),
            Err(JwtError::ForbiddenHeader { name }),
            "{name}"
        );
    }
}

#[test]
fn refuses_a_kid_that_names_no_key() {
    let (key, _) = generate(Algorithm::EdDSA);
    let (other, _) = generate(Algorithm::EdDSA);
    let public = keys_of(&[&key]);
    let token = sign_with(&other, &header("EdDSA", other.kid()), &good_payload());
    assert_eq!(
        verify(None, &public, &token),
        Err(JwtError::UnknownKey {
            kid: format!("{}…", &other.kid()[..32])
        })
    );
    // A kid is a map key, nothing more: no path, no URL.
    let token = sign_with(&key, &header("EdDSA", "../../etc/passwd"), &good_payload());
    assert!(matches!(
        verify(None, &public, &token),
        Err(JwtError::UnknownKey { .. })
    ));
}

/// The key dictates the algorithm: a header naming ES256 with an EdDSA key's kid is
/// refused before any signature check.
#[test]
fn refuses_an_algorithm_other_than_the_keys() {
    let (ed, _) = generate(Algorithm::EdDSA);
    let (ec, _) = generate(Algorithm::ES256);
    let public = keys_of(&[&ed, &ec]);
    let token = sign_with(&ec, &header("ES256", ed.kid()), &good_payload());
    assert_eq!(
        verify(None, &public, &token),
        Err(JwtError::WrongAlgorithmForKey {
            alg: "ES256",
            key_alg: "EdDSA"
        })
    );
    let token = sign_with(&ed, &header("EdDSA", ec.kid()), &good_payload());
    assert_eq!(
        verify(None, &public, &token),
        Err(JwtError::WrongAlgorithmForKey {
            alg: "EdDSA",
            key_alg: "ES256"
        })
    );
    for alg in ["ES384", "RS256", "PS256", "Ed25519", "HS512"] {
        let token = sign_with(&ed, &header(alg, ed.kid()), &good_payload());
        assert_eq!(
            verify(None, &public, &token),
            Err(JwtError::AlgorithmNotAccepted { alg: alg.into() })
        );
    }
}

fn pkcs8_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

/// An ECDSA signature in DER (what OpenSSL and many libraries return by default) instead
/// of the raw `R ‖ S` of RFC 7518 §3.4 — a valid signature of the right key, in the wrong
/// form.
#[test]
fn refuses_a_der_ecdsa_signature() {
    let (key, pem) = generate(Algorithm::ES256);
    let public = keys_of(&[&key]);
    let rng = ring::rand::SystemRandom::new();
    let der_signer =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8_der(&pem), &rng).unwrap();
    let input = format!(
        "{}.{}",
        b64(header("ES256", key.kid()).as_bytes()),
        b64(good_payload().as_bytes())
    );
    let der = der_signer.sign(&rng, input.as_bytes()).unwrap();
    assert_eq!(der.as_ref()[0], 0x30, "a DER SEQUENCE");
    let token = format!("{input}.{}", b64(der.as_ref()));
    assert_eq!(
        verify(None, &public, &token),
        Err(JwtError::MalformedSignature)
    );
    // The same input signed raw verifies.
    let raw = format!("{input}.{}", b64(&key.sign(input.as_bytes()).unwrap()));
    assert_eq!(verify(None, &public, &raw), Ok(Algorithm::ES256));
}

/// A token signed by a key that was retired and then pruned from the set no longer
/// verifies; while retired (still in the set) it does.
#[test]
fn refuses_a_token_of_a_pruned_key() {
    let (old, _) = generate(Algorithm::EdDSA);
    let (new, _) = generate(Algorithm::EdDSA);
    let token = sign_with(&old, &header("EdDSA", old.kid()), &good_payload());
    let retired = keys_of(&[&new, &old]);
    assert_eq!(verify(None, &retired, &token), Ok(Algorithm::EdDSA));
    let pruned = keys_of(&[&new]);
    assert!(matches!(
        verify(None, &pruned, &token),
        Err(JwtError::UnknownKey { .. })
    ));
}

/// P-256's group order.
const N: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];

/// `n - s`, big-endian.
fn negate_s(s: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(N[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = u8::try_from(d).unwrap();
    }
    out
}

/// ECDSA is malleable: (r, n - s) is as valid as (r, s). JOSE does not require low S and
/// other issuers make high-S signatures, so both verify; revocation keys on `jti`.
#[test]
fn accepts_high_s_ecdsa() {
    let (key, _) = generate(Algorithm::ES256);
    let public = keys_of(&[&key]);
    let input = format!(
        "{}.{}",
        b64(header("ES256", key.kid()).as_bytes()),
        b64(good_payload().as_bytes())
    );
    let signature = key.sign(input.as_bytes()).unwrap();
    let mut flipped = signature;
    flipped[32..].copy_from_slice(&negate_s(&signature[32..]));
    assert_ne!(flipped, signature);
    // Exactly one of the two has S above n/2.
    let high = |s: &[u8]| s[0] >= 0x80;
    assert_ne!(high(&signature[32..]), high(&flipped[32..]));
    for sig in [signature, flipped] {
        let token = format!("{input}.{}", b64(&sig));
        assert_eq!(verify(None, &public, &token), Ok(Algorithm::ES256));
    }
}

/// Without `kid` (PyJWT's and jose's default), the keys of the header's algorithm are
/// tried, and only those.
#[test]
fn without_kid_only_the_algorithms_keys_are_tried() {
    let (ed1, _) = generate(Algorithm::EdDSA);
    let (ec, _) = generate(Algorithm::ES256);
    let (ed2, _) = generate(Algorithm::EdDSA);
    let public = keys_of(&[&ed1, &ec, &ed2]);
    let token = sign_with(&ed2, r#"{"alg":"EdDSA","typ":"JWT"}"#, &good_payload());
    let ok = jwt::verify_any(None, &public, &Validation::default(), &token, UnixTime(NOW)).unwrap();
    assert_eq!(ok.key_index, 2);
    let (stranger, _) = generate(Algorithm::EdDSA);
    let token = sign_with(&stranger, r#"{"alg":"EdDSA"}"#, &good_payload());
    assert_eq!(
        verify(None, &public, &token),
        Err(JwtError::InvalidSignature { tried: 2 })
    );
    let only_ec = keys_of(&[&ec]);
    assert_eq!(
        verify(None, &only_ec, &token),
        Err(JwtError::AlgorithmNotAccepted {
            alg: "EdDSA".into()
        })
    );
}

/// Migration: while HS256 is accepted, the ring's tokens (ours and PyJWT's) keep
/// verifying beside the signed ones; the service signs with the asymmetric key.
#[test]
fn token_keys_sign_asymmetrically_and_accept_hs256_while_allowed() {
    let secret = TestKey::generate();
    let ring = secret.ring();
    let (key, _) = generate(Algorithm::EdDSA);
    let public = keys_of(&[&key]);
    let hs = jwt::encode(&ring, &jwt::Claims::new(UnixTime(NOW + 60)));
    let keys = TokenKeys::new(
        Some(Signer::new(key)),
        public.clone(),
        true,
        Some("https://auth.example".into()),
    )
    .unwrap();
    let mut claims = jwt::Claims::new(UnixTime(NOW + 60));
    let signed = keys.encode(&ring, &mut claims).unwrap();
    assert_eq!(claims.iss.as_deref(), Some("https://auth.example"));
    let v = Validation::default();
    let at = UnixTime(NOW);
    assert_eq!(
        keys.verify(&ring, &v, &signed, at).unwrap().algorithm,
        Algorithm::EdDSA
    );
    assert_eq!(
        keys.verify(&ring, &v, &hs, at).unwrap().algorithm,
        Algorithm::HS256
    );
    let strict = TokenKeys::new(None, public, false, None).unwrap();
    assert_eq!(
        strict.verify(&ring, &v, &hs, at).unwrap_err(),
        JwtError::AlgorithmNotAccepted {
            alg: "HS256".into()
        }
    );
    assert!(TokenKeys::new(None, PublicKeys::default(), false, None).is_err());
}

/// With an audience configured, access tokens carry it and signed tokens must; a token
/// signed for another party keeps its own `aud`, so it is never an access token here.
#[test]
fn the_audience_is_for_access_tokens_only() {
    let ring = TestKey::generate().ring();
    let (key, _) = generate(Algorithm::ES256);
    let public = keys_of(&[&key]);
    let keys = TokenKeys::new(Some(Signer::new(key)), public, true, None)
        .unwrap()
        .with_audience(Some("api".into()));
    let v = Validation::default();
    let at = UnixTime(NOW);
    let mut access = jwt::Claims::new(UnixTime(NOW + 60));
    let token = keys.encode_access(&ring, &mut access).unwrap();
    assert_eq!(access.aud, ["api"]);
    assert!(keys.verify(&ring, &v, &token, at).is_ok());
    let mut assertion = jwt::Claims::new(UnixTime(NOW + 60));
    assertion.aud = vec!["https://app.example".into()];
    let token = keys.encode(&ring, &mut assertion).unwrap();
    assert_eq!(assertion.aud, ["https://app.example"]);
    assert_eq!(
        keys.verify(&ring, &v, &token, at).unwrap_err(),
        JwtError::WrongAudience
    );
    let mut bare = jwt::Claims::new(UnixTime(NOW + 60));
    let token = keys.encode(&ring, &mut bare).unwrap();
    assert_eq!(
        keys.verify(&ring, &v, &token, at).unwrap_err(),
        JwtError::WrongAudience
    );
}

/// PyJWT (with `cryptography`) verifies our EdDSA and ES256 tokens with the keys of our
/// JWK Set, and its tokens — with and without `kid` — verify with its JWK Set here. Its
/// PKCS#8 key files load as our signing keys.
#[test]
fn pyjwt_both_ways() {
    let now = wall_clock_now();
    let (ed, _) = generate(Algorithm::EdDSA);
    let (ec, _) = generate(Algorithm::ES256);
    let public = keys_of(&[&ed, &ec]);
    let issuance = Issuance {
        ttl_secs: 600,
        issuer: Some("https://auth.example".into()),
        audience: Some("api".into()),
    };
    let subject = || Subject {
        sub: Some("7".into()),
        username: Some("john_doe".into()),
        role: Some("admin".into()),
        ..Subject::default()
    };
    let tokens: Vec<String> = [ed, ec]
        .into_iter()
        .map(|k| {
            jwt::issue_signed(&Signer::new(k), &issuance, subject(), UnixTime(now))
                .unwrap()
                .token
        })
        .collect();
    let out = run_python(
        "asymmetric.py",
        &[],
        &json!({
            "jwks": serde_json::from_str::<Value>(&public.to_jwks()).unwrap(),
            "tokens": tokens,
            "iss": "https://auth.example",
            "aud": "api",
            "exp": now + 600,
        }),
    );
    for v in out["verified"].as_array().unwrap() {
        assert_eq!(v["claims"]["username"], "john_doe", "{v}");
        assert_eq!(v["claims"]["iss"], "https://auth.example");
    }
    assert_eq!(out["verified"].as_array().unwrap().len(), 2);

    let theirs = PublicKeys::from_jwks(out["jwks"].to_string().as_bytes()).unwrap();
    let at = UnixTime(now);
    let algs: Vec<Algorithm> = out["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            jwt::verify_any(
                None,
                &theirs,
                &Validation::default(),
                t.as_str().unwrap(),
                at,
            )
            .unwrap()
            .algorithm
        })
        .collect();
    assert_eq!(
        algs,
        [
            Algorithm::EdDSA,
            Algorithm::EdDSA,
            Algorithm::ES256,
            Algorithm::ES256
        ]
    );
    // Their private keys (PKCS#8 v1 for Ed25519, as `cryptography` and OpenSSL write it)
    // load, and have the public keys their JWKs publish.
    for (alg, i) in [("EdDSA", 0), ("ES256", 1)] {
        let key = SigningKey::from_pem(out["pems"][alg].as_str().unwrap()).unwrap();
        let published = theirs.get(i).unwrap();
        assert_eq!(key.public().thumbprint(), published.thumbprint());
        assert_eq!(key.alg(), published.alg());
    }
}
