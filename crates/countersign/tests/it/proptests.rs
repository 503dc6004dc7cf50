//! Property tests: issue → verify round trips for arbitrary claims, and any single-byte
//! change to a valid token is refused.

use countersign::clock::UnixTime;
use countersign::jwt::{
    self, Claims, Issuance, JwtError, MAX_NUMERIC_DATE, REGISTERED, Subject, Validation,
};
use countersign::keys::KeyRing;
use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::util::{NOW, TestKey, verify_at};

/// Any unicode text, newlines and control characters included.
fn text() -> impl Strategy<Value = String> {
    "(?s).{0,24}"
}

/// Any JSON value whose numbers survive a text round trip exactly (serde_json parses
/// floats with a fast, not always correctly rounded, algorithm unless `float_roundtrip` is
/// on; multiples of 1/8 are exact either way).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1_000_000_000i64..1_000_000_000).prop_map(|n| Value::from(n as f64 / 8.0)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Extra claims: any names but the registered ones the issuer manages.
fn extra_claims() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(
        text().prop_filter("registered claim", |k| !REGISTERED.contains(&k.as_str())),
        json_value(),
        0..5,
    )
    .prop_map(|m| m.into_iter().collect())
}

fn subject() -> impl Strategy<Value = Subject> {
    (
        prop::option::of(text()),
        prop::option::of(text()),
        prop::option::of(text()),
        extra_claims(),
    )
        .prop_map(|(sub, username, role, extra)| Subject {
            sub,
            username,
            role,
            extra,
        })
}

/// Verification without the size limit: the round trip is about content, not size (the
/// limit has its own tests).
fn unlimited(issuance: &Issuance) -> Validation {
    Validation {
        issuer: issuance.issuer.clone(),
        audience: issuance.audience.clone(),
        max_token_bytes: usize::MAX,
        ..Validation::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn issue_then_verify_round_trips(
        subject in subject(),
        now in 0i64..MAX_NUMERIC_DATE - 100_000_000,
        ttl in 1i64..100_000_000,
        issuer in prop::option::of(text()),
        audience in prop::option::of(text()),
    ) {
        let key = TestKey::generate();
        let ring = key.ring();
        let issuance = Issuance { ttl_secs: ttl, issuer, audience };
        let expected = subject.clone();
        let issued = jwt::issue(&ring, &issuance, subject, UnixTime(now)).unwrap();
        let v = unlimited(&issuance);
        let ok = jwt::verify(&ring, &v, &issued.token, UnixTime(now)).unwrap();
        prop_assert_eq!(&ok.claims, &issued.claims);
        prop_assert_eq!(ok.key_index, 0);
        prop_assert_eq!(ok.claims.sub, expected.sub);
        prop_assert_eq!(ok.claims.username, expected.username);
        prop_assert_eq!(ok.claims.role, expected.role);
        prop_assert_eq!(ok.claims.extra, expected.extra);
        prop_assert_eq!(ok.claims.iat, Some(UnixTime(now)));
        prop_assert_eq!(ok.claims.exp, UnixTime(now + ttl));
        prop_assert_eq!(ok.claims.jti.as_ref().map(String::len), Some(22));
        // Valid until the last second of the leeway, expired from then on.
        let leeway = v.leeway_secs;
        prop_assert!(jwt::verify(&ring, &v, &issued.token, UnixTime(now + ttl + leeway - 1)).is_ok());
        prop_assert_eq!(
            jwt::verify(&ring, &v, &issued.token, UnixTime(now + ttl + leeway)).unwrap_err(),
            JwtError::Expired { ago: leeway }
        );
        // What `dangerous::decode_unverified` reads is what was signed.
        let (header, payload) = jwt::dangerous::decode_unverified(&issued.token).unwrap();
        let kid = key.kid();
        prop_assert_eq!(header.get("kid").and_then(Value::as_str), Some(kid.as_str()));
        prop_assert_eq!(Value::Object(payload), serde_json::to_value(&issued.claims).unwrap());
    }

    #[test]
    fn encode_then_verify_round_trips_any_claims(
        username in prop::option::of(text()),
        extra in extra_claims(),
        nbf in prop::option::of(0i64..NOW),
        iat in prop::option::of(0i64..NOW),
        jti in prop::option::of(text()),
    ) {
        let key = TestKey::generate();
        let ring = key.ring();
        let mut claims = Claims::new(UnixTime(NOW + 60));
        claims.username = username;
        claims.extra = extra;
        claims.nbf = nbf.map(UnixTime);
        claims.iat = iat.map(UnixTime);
        claims.jti = jti;
        let token = jwt::encode(&ring, &claims);
        let v = Validation { max_token_bytes: usize::MAX, ..Validation::default() };
        let ok = jwt::verify(&ring, &v, &token, UnixTime(NOW)).unwrap();
        prop_assert_eq!(ok.claims, claims);
    }

    /// Every position of a valid token, each changed to a random other byte: refused (or,
    /// when the change makes the token invalid UTF-8, not even a `&str` to pass in).
    #[test]
    fn any_single_byte_change_is_refused(
        subject in subject(),
        replacements in prop::collection::vec(any::<u8>(), 64),
    ) {
        let key = TestKey::generate();
        let ring = key.ring();
        let issued = jwt::issue(&ring, &Issuance::default(), subject, UnixTime(NOW)).unwrap();
        let v = Validation { max_token_bytes: usize::MAX, ..Validation::default() };
        prop_assert!(jwt::verify(&ring, &v, &issued.token, UnixTime(NOW)).is_ok());
        let original = issued.token.as_bytes();
        for i in 0..original.len() {
            let mut bytes = original.to_vec();
            let r = replacements[i % replacements.len()];
            bytes[i] = if r == original[i] { r.wrapping_add(1 + i as u8 % 254) } else { r };
            prop_assert_ne!(bytes[i], original[i]);
            match String::from_utf8(bytes) {
                Ok(changed) => {
                    let r = jwt::verify(&ring, &v, &changed, UnixTime(NOW));
                    prop_assert!(r.is_err(), "byte {} changed to {:?}: accepted", i, changed.as_bytes()[i]);
                }
                Err(e) => prop_assert!(std::str::from_utf8(e.as_bytes()).is_err()),
            }
        }
    }
}

/// The exhaustive version for one token of each kind we issue: every position, every
/// other ASCII byte (every non-ASCII byte makes the ASCII token invalid UTF-8).
#[test]
fn every_ascii_change_at_every_position_is_refused() {
    let key = TestKey::generate();
    let old = TestKey::generate();
    let ring = KeyRing::new(key.key.clone(), vec![old.key.clone()]).unwrap();
    let issuance = Issuance {
        issuer: Some("https://auth.example".into()),
        audience: Some("api".into()),
        ..Issuance::default()
    };
    let subject = Subject {
        sub: Some("42".into()),
        username: Some("john_doe".into()),
        role: Some("admin".into()),
        ..Subject::default()
    };
    let ours = jwt::issue(&ring, &issuance, subject, UnixTime(NOW))
        .unwrap()
        .token;
    // PyJWT's shape: no kid, signed with the fallback (the ring-wide path).
    let pyjwt = crate::util::forge(
        old.bytes(),
        br#"{"alg":"HS256","typ":"JWT"}"#,
        format!(
            r#"{{"username":"john_doe","role":"admin","exp":{}}}"#,
            NOW + 600
        )
        .as_bytes(),
    );
    let v = Validation {
        issuer: issuance.issuer.clone(),
        audience: issuance.audience.clone(),
        ..Validation::default()
    };
    assert!(jwt::verify(&ring, &v, &ours, UnixTime(NOW)).is_ok());
    assert_eq!(verify_at(&ring, &pyjwt, NOW).unwrap().key_index, 1);
    let mut tried = 0;
    for (token, v) in [(&ours, &v), (&pyjwt, &Validation::default())] {
        assert!(token.is_ascii());
        for i in 0..token.len() {
            for b in 0u8..0x80 {
                if b == token.as_bytes()[i] {
                    continue;
                }
                let mut bytes = token.as_bytes().to_vec();
                bytes[i] = b;
                let changed = String::from_utf8(bytes).unwrap();
                assert!(
                    jwt::verify(&ring, v, &changed, UnixTime(NOW)).is_err(),
                    "byte {i} of {token} changed to {b:#04x}: accepted"
                );
                tried += 1;
            }
        }
    }
    assert!(tried > 30_000, "{tried}");
}
