//! The negative corpus: one token per rule of `jwt`'s module documentation and issue 2,
//! each asserting the exact [`JwtError`] kind (and its fields where they say something).
//!
//! Tokens are forged with [`forge`], which signs arbitrary header and payload bytes with a
//! valid HMAC-SHA256, so the rule under test is the one that fails, not the MAC.

use countersign::clock::UnixTime;
use countersign::jwt::{self, Claims, JwtError, MAX_NUMERIC_DATE, Part, Validation};
use countersign::keys::{KeyError, KeyRing, SecretKey};
use serde_json::json;

use crate::util::{
    NOW, TestKey, b64, forge, good_payload, hs256, our_header, sign_segments, verify_at,
    verify_with,
};

/// One key and its ring.
struct Fx {
    k: TestKey,
    ring: KeyRing,
}

fn fx() -> Fx {
    let k = TestKey::generate();
    let ring = k.ring();
    Fx { k, ring }
}

impl Fx {
    fn header(&self) -> String {
        our_header(&self.k)
    }

    /// A header with our `kid` and `alg`, plus `members` (a JSON fragment, e.g. `"x":1`).
    fn header_with(&self, members: &str) -> String {
        format!(
            r#"{{"alg":"HS256","typ":"JWT","kid":"{}",{members}}}"#,
            self.k.kid()
        )
    }

    fn forge(&self, header: &str, payload: &str) -> String {
        forge(self.k.bytes(), header.as_bytes(), payload.as_bytes())
    }

    fn forge_bytes(&self, header: &[u8], payload: &[u8]) -> String {
        forge(self.k.bytes(), header, payload)
    }

    /// Verify a token with `header` and the good payload at [`NOW`].
    fn header_result(&self, header: &str) -> Result<jwt::Verified, JwtError> {
        verify_at(&self.ring, &self.forge(header, &good_payload()), NOW)
    }

    /// Verify a token with our header and `payload` at [`NOW`].
    fn payload_result(&self, payload: &str) -> Result<jwt::Verified, JwtError> {
        verify_at(&self.ring, &self.forge(&self.header(), payload), NOW)
    }

    fn valid_token(&self) -> String {
        self.forge(&self.header(), &good_payload())
    }
}

fn expect_err(result: Result<jwt::Verified, JwtError>, expected: &JwtError, case: &str) {
    match result {
        Ok(v) => panic!("{case}: accepted ({:?}), expected {expected:?}", v.claims),
        Err(e) => assert_eq!(&e, expected, "{case}"),
    }
}

/// The forged tokens are valid when nothing is wrong with them: the harness itself works.
#[test]
fn the_forger_makes_valid_tokens() {
    let f = fx();
    let ok = verify_at(&f.ring, &f.valid_token(), NOW).unwrap();
    assert_eq!(ok.claims.username.as_deref(), Some("john_doe"));
    assert_eq!(ok.key_index, 0);
    // Without kid (PyJWT's header), and with the header in another member order.
    let pyjwt = f.forge(r#"{"alg":"HS256","typ":"JWT"}"#, &good_payload());
    assert!(verify_at(&f.ring, &pyjwt, NOW).is_ok());
    let reordered = format!(r#"{{"kid":"{}","typ":"JWT","alg":"HS256"}}"#, f.k.kid());
    assert!(f.header_result(&reordered).is_ok());
    // And the engine's own tokens are exactly what the forger makes from the same bytes.
    let mut claims = Claims::new(UnixTime(NOW + 600));
    claims.username = Some("john_doe".into());
    let ours = jwt::encode(&f.ring, &claims);
    let (h, p) = {
        let mut it = ours.split('.');
        (it.next().unwrap(), it.next().unwrap())
    };
    assert_eq!(sign_segments(f.k.bytes(), h, p), ours);
}

// ---------------------------------------------------------------------------------------
// Algorithm: pinned by the verifier, never by the token.

#[test]
fn alg_none_in_every_casing_is_refused_before_the_signature() {
    let f = fx();
    for alg in ["none", "None", "NONE", "nOnE", "NoNe"] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        let expected = JwtError::AlgorithmNotAccepted { alg: alg.into() };
        // The classic attack: an empty signature.
        let unsigned = format!(
            "{}.{}.",
            b64(header.as_bytes()),
            b64(good_payload().as_bytes())
        );
        expect_err(verify_at(&f.ring, &unsigned, NOW), &expected, alg);
        // With a valid MAC too: the algorithm alone decides.
        expect_err(f.header_result(&header), &expected, alg);
        // With our kid.
        let with_kid = format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, f.k.kid());
        expect_err(f.header_result(&with_kid), &expected, alg);
    }
}

#[test]
fn other_algorithms_are_refused_even_with_a_valid_hs256_mac() {
    let f = fx();
    for alg in [
        "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "ES512", "EdDSA",
        "ES256K", "hs256", "Hs256", "HS256 ", " HS256", "HS2560", "HMAC", "foo", "",
    ] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{}"}}"#, f.k.kid());
        expect_err(
            f.header_result(&header),
            &JwtError::AlgorithmNotAccepted { alg: alg.into() },
            alg,
        );
    }
    // The reported algorithm is truncated: a token cannot fill the logs.
    let long = "A".repeat(500);
    let header = format!(r#"{{"alg":"{long}"}}"#);
    match f.header_result(&header) {
        Err(JwtError::AlgorithmNotAccepted { alg }) => assert!(alg.chars().count() <= 33),
        other => panic!("long alg: {other:?}"),
    }
}

#[test]
fn missing_or_non_string_alg_is_refused() {
    let f = fx();
    let kid = f.k.kid();
    for header in [
        format!(r#"{{"typ":"JWT","kid":"{kid}"}}"#),
        "{}".to_string(),
        r#"{"alg":null}"#.to_string(),
        r#"{"alg":256}"#.to_string(),
        r#"{"alg":true}"#.to_string(),
        r#"{"alg":["HS256"]}"#.to_string(),
        r#"{"alg":{"name":"HS256"}}"#.to_string(),
        r#"{"ALG":"HS256"}"#.to_string(),
    ] {
        expect_err(
            f.header_result(&header),
            &JwtError::MissingAlgorithm,
            &header,
        );
    }
}

/// An HS512-sized MAC under an HS256 header is malformed, not a different algorithm.
#[test]
fn a_hs512_sized_signature_is_malformed() {
    let f = fx();
    let token = f.valid_token();
    let (input, _) = token.rsplit_once('.').unwrap();
    let long = format!("{input}.{}", b64(&[7u8; 64]));
    expect_err(
        verify_at(&f.ring, &long, NOW),
        &JwtError::MalformedSignature,
        "64-byte MAC",
    );
}

// ---------------------------------------------------------------------------------------
// Signature segment.

#[test]
fn malformed_signatures_are_refused() {
    let f = fx();
    let token = f.valid_token();
    let (input, sig) = token.rsplit_once('.').unwrap();
    assert_eq!(sig.len(), 43);
    let last = sig.chars().last().unwrap();
    let mut cases: Vec<(String, String)> = vec![
        ("empty".into(), String::new()),
        ("short".into(), sig[..10].to_string()),
        ("one char short".into(), sig[..42].to_string()),
        ("31 bytes".into(), b64(&[1u8; 31])),
        ("padded".into(), format!("{sig}=")),
        ("padded twice".into(), format!("{sig}==")),
        ("one char long".into(), format!("{sig}A")),
        ("33 bytes".into(), b64(&[1u8; 33])),
        ("over-long".into(), sig.repeat(3)),
        ("leading space".into(), format!(" {}", &sig[1..])),
        ("trailing space".into(), format!("{} ", &sig[..42])),
        ("trailing newline".into(), format!("{sig}\n")),
        (
            "tab inside".into(),
            format!("{}\t{}", &sig[..20], &sig[21..]),
        ),
        ("plus".into(), format!("+{}", &sig[1..])),
        ("slash".into(), format!("/{}", &sig[1..])),
        ("dot-free garbage".into(), "!".repeat(43)),
        ("non-ascii".into(), format!("é{}", &sig[2..])),
    ];
    // The same 32 bytes in the standard alphabet, padded: what a lax decoder accepts.
    let std_alphabet = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        crate::util::unb64(sig),
    );
    if std_alphabet.contains(['+', '/']) {
        cases.push(("standard alphabet".into(), std_alphabet.clone()));
    }
    cases.push(("standard alphabet, padded".into(), std_alphabet));
    // Non-canonical trailing bits: the 43rd character carries 4 bits and 2 zero bits.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let v = ALPHABET.iter().position(|&c| c == last as u8).unwrap();
    assert_eq!(v & 3, 0, "canonical encodings end in zero bits");
    for low in 1..4 {
        let noncanonical = char::from(ALPHABET[v | low]);
        cases.push((
            format!("trailing bits {low}"),
            format!("{}{noncanonical}", &sig[..42]),
        ));
    }
    for (case, bad) in cases {
        let t = format!("{input}.{bad}");
        expect_err(
            verify_at(&f.ring, &t, NOW),
            &JwtError::MalformedSignature,
            &case,
        );
    }
}

#[test]
fn a_wrong_mac_is_an_invalid_signature() {
    let f = fx();
    let token = f.valid_token();
    let (input, _) = token.rsplit_once('.').unwrap();
    let zero = format!("{input}.{}", b64(&[0u8; 32]));
    expect_err(
        verify_at(&f.ring, &zero, NOW),
        &JwtError::InvalidSignature { tried: 1 },
        "zero MAC",
    );
    // Signed with a key that is not in the ring, our kid in the header.
    let stranger = TestKey::generate();
    let forged = forge(
        stranger.bytes(),
        f.header().as_bytes(),
        good_payload().as_bytes(),
    );
    expect_err(
        verify_at(&f.ring, &forged, NOW),
        &JwtError::InvalidSignature { tried: 1 },
        "stranger's key, our kid",
    );
}

/// Nothing from the payload is read before the MAC matches.
#[test]
fn the_payload_is_not_read_before_the_mac() {
    let f = fx();
    let h = b64(f.header().as_bytes());
    let bad_sig = b64(&[9u8; 32]);
    for payload in ["!!!!", "W10", "bnVsbA", "e30", ""] {
        let t = format!("{h}.{payload}.{bad_sig}");
        expect_err(
            verify_at(&f.ring, &t, NOW),
            &JwtError::InvalidSignature { tried: 1 },
            payload,
        );
    }
    // Expired and badly signed: the signature is what is reported.
    let expired = format!(r#"{{"exp":{}}}"#, NOW - 1000);
    let t = format!("{h}.{}.{bad_sig}", b64(expired.as_bytes()));
    expect_err(
        verify_at(&f.ring, &t, NOW),
        &JwtError::InvalidSignature { tried: 1 },
        "expired and bad MAC",
    );
}

// ---------------------------------------------------------------------------------------
// Structure and size.

#[test]
fn wrong_segment_counts_are_refused() {
    let f = fx();
    let token = f.valid_token();
    let (h, rest) = token.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    for (case, t) in [
        ("empty string", String::new()),
        ("one segment", h.to_string()),
        ("one dot", ".".to_string()),
        ("two segments", format!("{h}.{p}")),
        ("four segments", format!("{h}.{p}.{s}.{s}")),
        ("five segments", format!("{h}.{p}.{s}.{p}.{s}")),
        ("trailing dot", format!("{token}.")),
        ("leading dot", format!(".{token}")),
        ("JWE-like", format!("{h}.{p}.{p}.{p}.{s}")),
        ("dots only", "....".to_string()),
    ] {
        expect_err(verify_at(&f.ring, &t, NOW), &JwtError::SegmentCount, case);
    }
    // Three empty segments are three segments: the empty header is not JSON.
    assert!(matches!(
        verify_at(&f.ring, "..", NOW),
        Err(JwtError::Json {
            part: Part::Header,
            ..
        })
    ));
}

#[test]
fn huge_tokens_are_refused_before_anything_else() {
    let f = fx();
    let max = jwt::DEFAULT_MAX_TOKEN_BYTES;
    assert_eq!(max, 8 * 1024);
    // Garbage, no dots, bad base64, an alg of none: the size is what is reported.
    for (case, t) in [
        ("garbage", "!".repeat(max + 1)),
        ("no dots", "a".repeat(100_000)),
        ("dots", ".".repeat(max + 1)),
        (
            "alg none",
            format!("{}.{}.", b64(br#"{"alg":"none"}"#), "A".repeat(max)),
        ),
    ] {
        expect_err(
            verify_at(&f.ring, &t, NOW),
            &JwtError::TooLarge { len: t.len(), max },
            case,
        );
    }
    // A well-signed token exactly at the limit, and one just over it.
    let sized = |total: usize| token_of_len(&f, total);
    let at_limit = sized(max);
    assert_eq!(
        at_limit.len(),
        max,
        "found a padding that makes exactly 8 KiB"
    );
    assert!(verify_at(&f.ring, &at_limit, NOW).is_ok());
    let over = sized(max + 1);
    assert_eq!(over.len(), max + 1);
    expect_err(
        verify_at(&f.ring, &over, NOW),
        &JwtError::TooLarge { len: max + 1, max },
        "8 KiB + 1",
    );
    // The limit is configurable.
    let small = Validation {
        max_token_bytes: 64,
        ..Validation::default()
    };
    let t = f.valid_token();
    expect_err(
        verify_with(&f.ring, &small, &t, NOW),
        &JwtError::TooLarge {
            len: t.len(),
            max: 64,
        },
        "configured limit",
    );
}

/// A valid token of exactly `total` bytes: a padding claim sets the length to within a
/// character, a padding header member settles the rest (an unpadded base64url segment
/// cannot have every length).
fn token_of_len(f: &Fx, total: usize) -> String {
    for header_pad in 0..4 {
        let header = f.header_with(&format!(r#""p":"{}""#, "h".repeat(header_pad)));
        let bare = f.forge(&header, &format!(r#"{{"exp":{},"pad":""}}"#, NOW + 600));
        let Some(room) = total.checked_sub(bare.len()) else {
            continue;
        };
        let n = room * 3 / 4;
        for pad in n.saturating_sub(3)..n + 3 {
            let t = f.forge(
                &header,
                &format!(r#"{{"exp":{},"pad":"{}"}}"#, NOW + 600, "x".repeat(pad)),
            );
            if t.len() == total {
                return t;
            }
        }
    }
    panic!("no token of {total} bytes");
}

#[test]
fn non_base64url_header_and_payload_are_refused() {
    let f = fx();
    let h = b64(f.header().as_bytes());
    let p = b64(good_payload().as_bytes());
    let bad_segments = |good: &str| -> Vec<(String, String)> {
        let mut v = vec![
            ("padded".to_string(), format!("{good}=")),
            ("plus".to_string(), format!("+{}", &good[1..])),
            ("slash".to_string(), format!("/{}", &good[1..])),
            (
                "space".to_string(),
                format!("{} {}", &good[..4], &good[5..]),
            ),
            (
                "newline".to_string(),
                format!("{}\n", &good[..good.len() - 1]),
            ),
            (
                "length 1 mod 4".to_string(),
                format!("{good}{}", "A".repeat((1 + 4 - good.len() % 4) % 4,)),
            ),
        ];
        v.retain(|(_, s)| s != good);
        v
    };
    // Header: refused before the MAC, no valid signature needed.
    for (case, bad) in bad_segments(&h) {
        let t = format!("{bad}.{p}.{}", b64(&[0u8; 32]));
        assert!(
            matches!(
                verify_at(&f.ring, &t, NOW),
                Err(JwtError::Base64 {
                    part: Part::Header,
                    ..
                })
            ),
            "header {case}: {:?}",
            verify_at(&f.ring, &t, NOW)
        );
    }
    // Payload: the MAC is valid over the malformed segment, so the base64 rule fails.
    for (case, bad) in bad_segments(&p) {
        let t = sign_segments(f.k.bytes(), &h, &bad);
        assert!(
            matches!(
                verify_at(&f.ring, &t, NOW),
                Err(JwtError::Base64 {
                    part: Part::Payload,
                    ..
                })
            ),
            "payload {case}: {:?}",
            verify_at(&f.ring, &t, NOW)
        );
    }
}

#[test]
fn non_canonical_trailing_bits_in_header_and_payload_are_refused() {
    let f = fx();
    // A payload whose length is not a multiple of 3 ends in a character with zero bits.
    let payload = format!(r#"{{"exp":{}, "a":"12"}}"#, NOW + 600);
    let p = b64(payload.as_bytes());
    assert_ne!(payload.len() % 3, 0);
    let last = p.as_bytes()[p.len() - 1];
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let v = ALPHABET.iter().position(|&c| c == last).unwrap();
    let bumped = format!("{}{}", &p[..p.len() - 1], char::from(ALPHABET[v | 1]));
    let h = b64(f.header().as_bytes());
    assert!(verify_at(&f.ring, &sign_segments(f.k.bytes(), &h, &p), NOW).is_ok());
    expect_err(
        verify_at(&f.ring, &sign_segments(f.k.bytes(), &h, &bumped), NOW),
        &JwtError::Base64 {
            part: Part::Payload,
            detail: "non-zero trailing bits",
        },
        "payload trailing bits",
    );
    // Header: 43 bytes, so its encoding ends mid-group.
    let header = format!(r#"{{"alg":"HS256","kid":"{}","x":12}}"#, f.k.kid());
    assert_eq!(header.len() % 3, 1);
    let hb = b64(header.as_bytes());
    let last = hb.as_bytes()[hb.len() - 1];
    let v = ALPHABET.iter().position(|&c| c == last).unwrap();
    let bumped = format!("{}{}", &hb[..hb.len() - 1], char::from(ALPHABET[v | 1]));
    assert!(verify_at(&f.ring, &sign_segments(f.k.bytes(), &hb, &p), NOW).is_ok());
    expect_err(
        verify_at(&f.ring, &sign_segments(f.k.bytes(), &bumped, &p), NOW),
        &JwtError::Base64 {
            part: Part::Header,
            detail: "non-zero trailing bits",
        },
        "header trailing bits",
    );
}

// ---------------------------------------------------------------------------------------
// Header parameters.

#[test]
fn kid_injection_strings_are_only_map_keys() {
    let f = fx();
    let long = "k".repeat(4000);
    for kid in [
        "../../etc/passwd",
        "/dev/null",
        "file:///etc/passwd",
        "' OR 1=1 --",
        "\"; DROP TABLE keys; --",
        "$(rm -rf /)",
        "*",
        "",
        " ",
        "\u{0}",
        "http://attacker.example/key",
        long.as_str(),
    ] {
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string();
        let expected: String = if kid.chars().count() > 32 {
            kid.chars().take(32).chain(['…']).collect()
        } else {
            kid.to_string()
        };
        expect_err(
            f.header_result(&header),
            &JwtError::UnknownKey { kid: expected },
            &kid[..kid.len().min(40)],
        );
    }
    // A kid differing from ours only in case, or with a suffix, names no key.
    let kid = f.k.kid();
    for near in [
        kid.to_lowercase(),
        kid.to_uppercase(),
        format!("{kid} "),
        format!("{kid}\0"),
    ] {
        if near == kid {
            continue;
        }
        let header = json!({"alg": "HS256", "kid": near}).to_string();
        assert!(
            matches!(f.header_result(&header), Err(JwtError::UnknownKey { .. })),
            "{near:?}"
        );
    }
}

#[test]
fn kid_that_is_not_a_string_is_refused() {
    let f = fx();
    for kid in [
        "1",
        "0",
        "null",
        "true",
        "[]",
        r#"["a"]"#,
        "{}",
        r#"{"$ne":""}"#,
        "1.5",
    ] {
        let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":{kid}}}"#);
        expect_err(
            f.header_result(&header),
            &JwtError::InvalidHeaderParameter { name: "kid" },
            kid,
        );
    }
}

#[test]
fn forbidden_header_parameters_are_refused_in_any_form() {
    let f = fx();
    let cases: &[(&str, &[&str])] = &[
        (
            "crit",
            &[
                r#"["exp"]"#,
                "[]",
                r#""exp""#,
                "{}",
                "null",
                r#"["b64"]"#,
                "1",
            ],
        ),
        ("b64", &["false", "true", "null", r#""false""#]),
        ("zip", &[r#""DEF""#, r#""""#, "null"]),
        (
            "jku",
            &[r#""https://attacker.example/jwks.json""#, "null", "[]"],
        ),
        ("x5u", &[r#""https://attacker.example/cert.pem""#, "null"]),
        ("jwk", &[r#"{"kty":"oct","k":"AAAA"}"#, "{}", "null"]),
        ("x5c", &[r#"["MIIB"]"#, "[]", "null"]),
    ];
    for (name, values) in cases {
        for value in *values {
            let header = f.header_with(&format!(r#""{name}":{value}"#));
            expect_err(
                f.header_result(&header),
                &JwtError::ForbiddenHeader { name },
                &header,
            );
        }
        // Without a kid too (the ring-wide path), and as the first member.
        let header = format!(r#"{{"{name}":{},"alg":"HS256"}}"#, values[0]);
        expect_err(
            f.header_result(&header),
            &JwtError::ForbiddenHeader { name },
            &header,
        );
    }
    // Parameters we do not refuse: registered or private ones that change nothing.
    for members in [
        r#""cty":"JWT""#,
        r#""x5t":"abc""#,
        r#""custom":{"a":[1,2]}"#,
    ] {
        assert!(
            f.header_result(&f.header_with(members)).is_ok(),
            "{members}"
        );
    }
}

#[test]
fn typ_must_be_jwt_or_at_jwt() {
    let f = fx();
    for typ in [
        "JOSE",
        "JOSE+JSON",
        "JWS",
        "JWE",
        "jwt+xml",
        "",
        "JWT ",
        "application/json",
        "dpop+jwt",
    ] {
        let header = json!({"alg": "HS256", "kid": f.k.kid(), "typ": typ}).to_string();
        expect_err(
            f.header_result(&header),
            &JwtError::UnsupportedType { typ: typ.into() },
            typ,
        );
    }
    for typ in ["1", "null", "true", r#"["JWT"]"#, r#"{"t":"JWT"}"#] {
        let header = format!(r#"{{"alg":"HS256","typ":{typ}}}"#);
        expect_err(
            f.header_result(&header),
            &JwtError::InvalidHeaderParameter { name: "typ" },
            typ,
        );
    }
    // RFC 7515 §4.1.9: media types compare case-insensitively and may omit "application/".
    for typ in [
        "JWT",
        "at+jwt",
        "jwt",
        "AT+JWT",
        "application/jwt",
        "application/at+jwt",
    ] {
        let header = json!({"alg": "HS256", "kid": f.k.kid(), "typ": typ}).to_string();
        assert!(f.header_result(&header).is_ok(), "{typ}");
    }
    // typ is optional.
    let header = json!({"alg": "HS256", "kid": f.k.kid()}).to_string();
    assert!(f.header_result(&header).is_ok());
}

// ---------------------------------------------------------------------------------------
// JSON: objects only, UTF-8, no duplicate members, bounded depth.

#[test]
fn non_object_json_is_refused() {
    let f = fx();
    for json in [
        "[]",
        r#"["alg","HS256"]"#,
        r#""HS256""#,
        "1",
        "-1.5",
        "null",
        "true",
        "false",
    ] {
        // Header: refused before the MAC, so any signature will do.
        let t = format!("{}.{}.{}", b64(json.as_bytes()), b64(b"{}"), b64(&[0; 32]));
        expect_err(
            verify_at(&f.ring, &t, NOW),
            &JwtError::NotAnObject { part: Part::Header },
            json,
        );
        expect_err(
            f.payload_result(json),
            &JwtError::NotAnObject {
                part: Part::Payload,
            },
            json,
        );
    }
}

#[test]
fn malformed_json_is_refused() {
    let f = fx();
    for json in [
        "",
        " ",
        "{",
        "}",
        r#"{"alg":"HS256""#,
        r#"{"alg":"HS256",}"#,
        r#"{"alg":'HS256'}"#,
        r#"{alg:"HS256"}"#,
        r#"{"alg":"HS256"} {}"#,
        r#"{"alg":"HS256"}x"#,
        r#"{"alg":"HS\u0032"#,
        r#"{"alg":"HS256","n":NaN}"#,
        r#"{"alg":"HS256","n":1e400}"#,
        "{\"alg\":\"HS256\",\"s\":\"\u{1}\"}",
        r#"{"alg":"HS256","s":"\ud800"}"#,
        r#"{"alg":"HS256","s":"\x"}"#,
    ] {
        let t = format!("{}.{}.{}", b64(json.as_bytes()), b64(b"{}"), b64(&[0; 32]));
        let r = verify_at(&f.ring, &t, NOW);
        assert!(
            matches!(
                r,
                Err(JwtError::Json {
                    part: Part::Header,
                    ..
                })
            ),
            "header {json:?}: {r:?}"
        );
        let payload = json.replacen(r#""alg":"HS256""#, &format!(r#""exp":{}"#, NOW + 60), 1);
        let r = f.payload_result(&payload);
        assert!(
            matches!(
                r,
                Err(JwtError::Json {
                    part: Part::Payload,
                    ..
                })
            ),
            "payload {payload:?}: {r:?}"
        );
    }
}

#[test]
fn invalid_utf8_is_refused() {
    let f = fx();
    let cases: &[&[u8]] = &[
        b"{\"alg\":\"HS256\",\"x\":\"\xff\"}",
        b"{\"alg\":\"HS256\",\"\xc3\x28\":1}",
        b"{\"alg\":\"HS256\",\"x\":\"\xed\xa0\x80\"}", // an encoded surrogate
        b"{\"alg\":\"HS256\",\"x\":\"\xc0\xaf\"}",     // an over-long encoding of '/'
        b"\xef\xbb\xbf{\"alg\":\"HS256\"}",            // a byte order mark
    ];
    for json in cases {
        let t = format!("{}.{}.{}", b64(json), b64(b"{}"), b64(&[0; 32]));
        let r = verify_at(&f.ring, &t, NOW);
        assert!(
            matches!(
                r,
                Err(JwtError::Json {
                    part: Part::Header,
                    ..
                })
            ),
            "header {json:?}: {r:?}"
        );
        // The same bytes with the alg member replaced by an exp.
        let needle = b"\"alg\":\"HS256\"";
        let at = json
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        let mut payload = json[..at].to_vec();
        payload.extend_from_slice(format!("\"exp\":{}", NOW + 60).as_bytes());
        payload.extend_from_slice(&json[at + needle.len()..]);
        let r = verify_at(
            &f.ring,
            &f.forge_bytes(f.header().as_bytes(), &payload),
            NOW,
        );
        assert!(
            matches!(
                r,
                Err(JwtError::Json {
                    part: Part::Payload,
                    ..
                })
            ),
            "payload {payload:?}: {r:?}"
        );
    }
}

#[test]
fn duplicate_members_are_refused_at_every_depth() {
    let f = fx();
    let kid = f.k.kid();
    let dup = |part, name: &str| JwtError::DuplicateMember {
        part,
        name: name.into(),
    };
    // Header, top level: the second alg would win in a keep-last parser.
    for (header, name) in [
        (r#"{"alg":"HS256","alg":"none"}"#.to_string(), "alg"),
        (r#"{"alg":"none","alg":"HS256"}"#.to_string(), "alg"),
        (r#"{"alg":"HS256","\u0061lg":"HS256"}"#.to_string(), "alg"),
        (
            format!(r#"{{"alg":"HS256","kid":"{kid}","kid":"other"}}"#),
            "kid",
        ),
        (
            format!(r#"{{"alg":"HS256","typ":"JWT","typ":"JWT","kid":"{kid}"}}"#),
            "typ",
        ),
        (
            format!(r#"{{"alg":"HS256","kid":"{kid}","x":1,"x":1}}"#),
            "x",
        ),
        // Nested.
        (
            format!(r#"{{"alg":"HS256","kid":"{kid}","ext":{{"a":1,"a":2}}}}"#),
            "a",
        ),
        (
            format!(r#"{{"alg":"HS256","kid":"{kid}","ext":[{{"b":1,"\u0062":1}}]}}"#),
            "b",
        ),
    ] {
        expect_err(f.header_result(&header), &dup(Part::Header, name), &header);
    }
    // Payload, top level and nested; registered and extra claims.
    let e = NOW + 600;
    for (payload, name) in [
        (format!(r#"{{"exp":{e},"exp":{}}}"#, e + 1_000_000), "exp"),
        (
            format!(r#"{{"exp":{e},"\u0065xp":{}}}"#, e + 1_000_000),
            "exp",
        ),
        (format!(r#"{{"\u0065\u0078\u0070":{e},"exp":{e}}}"#), "exp"),
        (
            format!(r#"{{"exp":{e},"role":"user","role":"admin"}}"#),
            "role",
        ),
        (
            format!(r#"{{"exp":{e},"username":"a","usern\u0061me":"b"}}"#),
            "username",
        ),
        (format!(r#"{{"exp":{e},"sub":"1","sub":"2"}}"#), "sub"),
        (format!(r#"{{"exp":{e},"aud":"a","aud":"b"}}"#), "aud"),
        (format!(r#"{{"exp":{e},"nbf":1,"nbf":1}}"#), "nbf"),
        (format!(r#"{{"exp":{e},"scope":"a","scope":"b"}}"#), "scope"),
        (format!(r#"{{"exp":{e},"obj":{{"k":1,"k":2}}}}"#), "k"),
        (
            format!(r#"{{"exp":{e},"arr":[1,{{"k":1,"\u006b":1}}]}}"#),
            "k",
        ),
        (format!(r#"{{"exp":{e},"aud":[{{"x":1,"x":1}}]}}"#), "x"),
        (
            format!(r#"{{"exp":{e},"a":{{"b":{{"c":{{"d":1,"d":1}}}}}}}}"#),
            "d",
        ),
    ] {
        expect_err(
            f.payload_result(&payload),
            &dup(Part::Payload, name),
            &payload,
        );
    }
    // Not duplicates: the same name in sibling objects, or differing by case.
    for payload in [
        format!(r#"{{"exp":{e},"a":{{"k":1}},"b":{{"k":1}}}}"#),
        format!(r#"{{"exp":{e},"EXP":1,"Exp":2}}"#),
        format!(r#"{{"exp":{e},"arr":[{{"k":1}},{{"k":2}}]}}"#),
    ] {
        assert!(f.payload_result(&payload).is_ok(), "{payload}");
    }
}

#[test]
fn deep_nesting_is_a_json_error_not_a_crash() {
    let f = fx();
    // 200 levels fit in 8 KiB; deeper ones are checked with the size limit lifted, so
    // that the depth limit (not the size limit) is what refuses them.
    let unlimited = Validation {
        max_token_bytes: usize::MAX,
        ..Validation::default()
    };
    for depth in [200, 1_000, 10_000] {
        let v = if depth == 200 {
            Validation::default()
        } else {
            unlimited.clone()
        };
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let objects = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        for nested in [&arrays, &objects] {
            let payload = format!(r#"{{"exp":{},"x":{nested}}}"#, NOW + 60);
            let r = verify_with(&f.ring, &v, &f.forge(&f.header(), &payload), NOW);
            assert!(
                matches!(
                    &r,
                    Err(JwtError::Json {
                        part: Part::Payload,
                        ..
                    })
                ),
                "payload depth {depth}: {r:?}"
            );
            let header = format!(r#"{{"alg":"HS256","x":{nested}}}"#);
            let t = format!(
                "{}.{}.{}",
                b64(header.as_bytes()),
                b64(b"{}"),
                b64(&[0; 32])
            );
            let r = verify_with(&f.ring, &v, &t, NOW);
            assert!(
                matches!(
                    &r,
                    Err(JwtError::Json {
                        part: Part::Header,
                        ..
                    })
                ),
                "header depth {depth}: {r:?}"
            );
        }
    }
    // Moderate nesting is still JSON we read.
    let payload = format!(
        r#"{{"exp":{},"x":{}{}}}"#,
        NOW + 60,
        "[".repeat(100),
        "]".repeat(100)
    );
    assert!(f.payload_result(&payload).is_ok());
}

/// Deep nesting on a small stack: the depth limit holds before the stack runs out.
#[test]
fn deep_nesting_on_a_small_stack() {
    let f = fx();
    let payload = format!(r#"{{"exp":{},"x":{}}}"#, NOW + 60, "[".repeat(5_000));
    let token = f.forge(&f.header(), &payload);
    let ring = f.ring;
    let r = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || verify_at(&ring, &token, NOW))
        .unwrap()
        .join()
        .expect("no stack overflow");
    assert!(
        matches!(
            r,
            Err(JwtError::Json {
                part: Part::Payload,
                ..
            })
        ),
        "{r:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Claims: types and ranges.

const NUMERIC_DATE: &str = "a number of seconds (NumericDate)";

#[test]
fn exp_is_required() {
    let f = fx();
    for payload in [
        "{}".to_string(),
        r#"{"username":"john_doe","role":"admin"}"#.to_string(),
        format!(r#"{{"EXP":{}}}"#, NOW + 60),
        format!(r#"{{"expires":{}}}"#, NOW + 60),
        format!(r#"{{"nbf":{},"iat":{}}}"#, NOW, NOW),
    ] {
        expect_err(
            f.payload_result(&payload),
            &JwtError::MissingClaim { name: "exp" },
            &payload,
        );
    }
}

#[test]
fn time_claims_of_the_wrong_type_are_refused() {
    let f = fx();
    let e = NOW + 600;
    for name in ["exp", "nbf", "iat"] {
        for value in [
            format!(r#""{e}""#),
            r#""1e9""#.to_string(),
            r#""""#.to_string(),
            "true".into(),
            "false".into(),
            "null".into(),
            format!("[{e}]"),
            "[]".into(),
            format!(r#"{{"v":{e}}}"#),
        ] {
            let payload = if name == "exp" {
                format!(r#"{{"exp":{value}}}"#)
            } else {
                format!(r#"{{"exp":{e},"{name}":{value}}}"#)
            };
            expect_err(
                f.payload_result(&payload),
                &JwtError::InvalidClaim {
                    name,
                    expected: NUMERIC_DATE,
                },
                &payload,
            );
        }
    }
}

#[test]
fn time_claims_out_of_range_are_refused() {
    let f = fx();
    let e = NOW + 600;
    for name in ["exp", "nbf", "iat"] {
        for value in [
            "-1".to_string(),
            "-1700000000".into(),
            "-0.5".into(),
            (MAX_NUMERIC_DATE + 1).to_string(),
            "253402300800.5".into(),
            i64::MAX.to_string(),
            i64::MIN.to_string(),
            u64::MAX.to_string(),
            "18446744073709551616".into(), // u64 overflow
            "340282366920938463463374607431768211456".into(), // 2^128
            "1e19".into(),
            "1.7976931348623157e308".into(),
            "-1e300".into(),
        ] {
            let payload = if name == "exp" {
                format!(r#"{{"exp":{value}}}"#)
            } else {
                format!(r#"{{"exp":{e},"{name}":{value}}}"#)
            };
            expect_err(
                f.payload_result(&payload),
                &JwtError::ClaimOutOfRange { name },
                &payload,
            );
        }
    }
    // Year 9999 is the last accepted.
    let payload = format!(r#"{{"exp":{MAX_NUMERIC_DATE}}}"#);
    assert_eq!(
        f.payload_result(&payload).unwrap().claims.exp,
        UnixTime(MAX_NUMERIC_DATE)
    );
    let payload = format!(r#"{{"exp":{e},"nbf":0,"iat":0}}"#);
    assert!(f.payload_result(&payload).is_ok());
}

#[test]
fn float_times_are_numeric_dates() {
    let f = fx();
    let strict = Validation {
        leeway_secs: 0,
        ..Validation::default()
    };
    let t = 1_000_000_000;
    let token = f.forge(&f.header(), r#"{"exp":1000000000.5}"#);
    // Valid before 1e9 + 0.5, expired from 1e9 + 1 on.
    assert!(verify_with(&f.ring, &strict, &token, t).is_ok());
    assert!(matches!(
        verify_with(&f.ring, &strict, &token, t + 1),
        Err(JwtError::Expired { .. })
    ));
    // Exponent notation and a trailing ".0" are numbers too.
    for exp in ["1e9", "1E9", "1000000000.0", "10e8"] {
        let token = f.forge(&f.header(), &format!(r#"{{"exp":{exp}}}"#));
        assert_eq!(
            verify_with(&f.ring, &strict, &token, t - 1)
                .unwrap()
                .claims
                .exp,
            UnixTime(t),
            "{exp}"
        );
        assert!(verify_with(&f.ring, &strict, &token, t).is_err(), "{exp}");
    }
    // nbf = 1e9 + 0.5: not valid at 1e9, valid at 1e9 + 1.
    let token = f.forge(
        &f.header(),
        r#"{"exp":1000001000,"nbf":1000000000.5,"iat":1000000000.25}"#,
    );
    assert!(matches!(
        verify_with(&f.ring, &strict, &token, t),
        Err(JwtError::NotYetValid { .. })
    ));
    assert!(verify_with(&f.ring, &strict, &token, t + 1).is_ok());
}

#[test]
fn string_claims_of_the_wrong_type_are_refused() {
    let f = fx();
    let e = NOW + 600;
    for name in ["sub", "username", "role", "jti", "iss"] {
        for value in ["1", "null", "true", r#"["a"]"#, r#"{"a":"b"}"#] {
            let payload = format!(r#"{{"exp":{e},"{name}":{value}}}"#);
            expect_err(
                f.payload_result(&payload),
                &JwtError::InvalidClaim {
                    name,
                    expected: "a string",
                },
                &payload,
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Boundary times (default leeway 30 s).

#[test]
fn exp_boundaries() {
    let f = fx();
    let e = NOW;
    let token = f.forge(&f.header(), &format!(r#"{{"exp":{e}}}"#));
    let leeway = jwt::DEFAULT_LEEWAY_SECS;
    assert_eq!(leeway, 30);
    for now in [e - 1_000_000, e - 1, e, e + 1, e + leeway - 1] {
        assert!(
            verify_at(&f.ring, &token, now).is_ok(),
            "now = exp + {}",
            now - e
        );
    }
    for now in [e + leeway, e + leeway + 1, e + 86_400] {
        expect_err(
            verify_at(&f.ring, &token, now),
            &JwtError::Expired { ago: now - e },
            &format!("now = exp + {}", now - e),
        );
    }
    // Without leeway, exactly at exp is expired (RFC 7519 §4.1.4: now must be before exp).
    let strict = Validation {
        leeway_secs: 0,
        ..Validation::default()
    };
    assert!(verify_with(&f.ring, &strict, &token, e - 1).is_ok());
    expect_err(
        verify_with(&f.ring, &strict, &token, e),
        &JwtError::Expired { ago: 0 },
        "exactly at exp, no leeway",
    );
    // A negative leeway counts as none, never as a stricter-than-exp rule that overflows.
    let negative = Validation {
        leeway_secs: -100,
        ..Validation::default()
    };
    assert!(verify_with(&f.ring, &negative, &token, e - 1).is_ok());
    expect_err(
        verify_with(&f.ring, &negative, &token, e),
        &JwtError::Expired { ago: 0 },
        "negative leeway",
    );
    // A configured leeway.
    let wide = Validation {
        leeway_secs: 300,
        ..Validation::default()
    };
    assert!(verify_with(&f.ring, &wide, &token, e + 299).is_ok());
    expect_err(
        verify_with(&f.ring, &wide, &token, e + 300),
        &JwtError::Expired { ago: 300 },
        "leeway 300",
    );
    assert!(JwtError::Expired { ago: 252 }.to_string().contains("4m12s"));
}

#[test]
fn nbf_boundaries() {
    let f = fx();
    let n = NOW;
    let token = f.forge(&f.header(), &format!(r#"{{"exp":{},"nbf":{n}}}"#, n + 3600));
    for now in [n - 30, n - 1, n, n + 1] {
        assert!(
            verify_at(&f.ring, &token, now).is_ok(),
            "now = nbf - {}",
            n - now
        );
    }
    for now in [n - 31, n - 32, n - 3600] {
        expect_err(
            verify_at(&f.ring, &token, now),
            &JwtError::NotYetValid { in_secs: n - now },
            &format!("now = nbf - {}", n - now),
        );
    }
    let strict = Validation {
        leeway_secs: 0,
        ..Validation::default()
    };
    assert!(verify_with(&f.ring, &strict, &token, n).is_ok());
    expect_err(
        verify_with(&f.ring, &strict, &token, n - 1),
        &JwtError::NotYetValid { in_secs: 1 },
        "one second early, no leeway",
    );
}

#[test]
fn iat_in_the_future_is_refused() {
    let f = fx();
    let i = NOW;
    let token = f.forge(&f.header(), &format!(r#"{{"exp":{},"iat":{i}}}"#, i + 3600));
    for now in [i - 30, i, i + 1000] {
        assert!(
            verify_at(&f.ring, &token, now).is_ok(),
            "now = iat + {}",
            now - i
        );
    }
    for now in [i - 31, i - 3600] {
        expect_err(
            verify_at(&f.ring, &token, now),
            &JwtError::IssuedInFuture { ahead: i - now },
            &format!("now = iat - {}", i - now),
        );
    }
}

/// The clock is the caller's: extreme values never overflow or panic.
#[test]
fn extreme_clock_values_do_not_panic() {
    let f = fx();
    let token = f.forge(
        &f.header(),
        &format!(r#"{{"exp":{MAX_NUMERIC_DATE},"nbf":{MAX_NUMERIC_DATE},"iat":0}}"#),
    );
    let early = f.forge(&f.header(), r#"{"exp":0,"nbf":0,"iat":0}"#);
    for now in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
        let _ = verify_at(&f.ring, &token, now);
        let _ = verify_at(&f.ring, &early, now);
        let wide = Validation {
            leeway_secs: i64::MAX,
            ..Validation::default()
        };
        let _ = verify_with(&f.ring, &wide, &token, now);
    }
    assert!(matches!(
        verify_at(&f.ring, &token, i64::MIN),
        Err(JwtError::NotYetValid { .. })
    ));
    assert!(matches!(
        verify_at(&f.ring, &early, i64::MAX),
        Err(JwtError::Expired { .. })
    ));
}

// ---------------------------------------------------------------------------------------
// Issuer and audience.

#[test]
fn issuer_checks() {
    let f = fx();
    let e = NOW + 600;
    let v = Validation {
        issuer: Some("https://auth.example".into()),
        ..Validation::default()
    };
    let ok = f.forge(
        &f.header(),
        &format!(r#"{{"exp":{e},"iss":"https://auth.example"}}"#),
    );
    assert!(verify_with(&f.ring, &v, &ok, NOW).is_ok());
    for (payload, found) in [
        (
            format!(r#"{{"exp":{e},"iss":"https://evil.example"}}"#),
            Some("https://evil.example"),
        ),
        (
            format!(r#"{{"exp":{e},"iss":"https://auth.example/"}}"#),
            Some("https://auth.example/"),
        ),
        (
            format!(r#"{{"exp":{e},"iss":"HTTPS://AUTH.EXAMPLE"}}"#),
            Some("HTTPS://AUTH.EXAMPLE"),
        ),
        (format!(r#"{{"exp":{e},"iss":""}}"#), Some("")),
        (format!(r#"{{"exp":{e}}}"#), None),
    ] {
        expect_err(
            verify_with(&f.ring, &v, &f.forge(&f.header(), &payload), NOW),
            &JwtError::WrongIssuer {
                found: found.map(String::from),
            },
            &payload,
        );
    }
    // iss must be a string: an array is refused, configured issuer or not.
    let array = f.forge(
        &f.header(),
        &format!(r#"{{"exp":{e},"iss":["https://auth.example"]}}"#),
    );
    let expected = JwtError::InvalidClaim {
        name: "iss",
        expected: "a string",
    };
    expect_err(
        verify_with(&f.ring, &v, &array, NOW),
        &expected,
        "iss array, configured",
    );
    expect_err(
        verify_at(&f.ring, &array, NOW),
        &expected,
        "iss array, not configured",
    );
    // No issuer configured: any string issuer is fine.
    assert!(
        verify_at(
            &f.ring,
            &f.forge(&f.header(), &format!(r#"{{"exp":{e},"iss":"x"}}"#)),
            NOW
        )
        .is_ok()
    );
}

#[test]
fn audience_checks() {
    let f = fx();
    let e = NOW + 600;
    let v = Validation {
        audience: Some("api".into()),
        ..Validation::default()
    };
    let tok = |aud: &str| f.forge(&f.header(), &format!(r#"{{"exp":{e},"aud":{aud}}}"#));
    for aud in [
        r#""api""#,
        r#"["api"]"#,
        r#"["other","api"]"#,
        r#"["api","api"]"#,
    ] {
        let ok = verify_with(&f.ring, &v, &tok(aud), NOW).unwrap();
        assert!(ok.claims.aud.iter().any(|a| a == "api"), "{aud}");
    }
    for aud in [
        r#""other""#,
        r#"["other"]"#,
        r#""API""#,
        r#""api ""#,
        r#"["apis"]"#,
    ] {
        expect_err(
            verify_with(&f.ring, &v, &tok(aud), NOW),
            &JwtError::WrongAudience,
            aud,
        );
    }
    // Missing aud when one is configured.
    let none = f.forge(&f.header(), &format!(r#"{{"exp":{e}}}"#));
    expect_err(
        verify_with(&f.ring, &v, &none, NOW),
        &JwtError::WrongAudience,
        "no aud",
    );
    // A token with an audience and a verifier without one (RFC 7519 §4.1.3).
    for aud in [r#""api""#, r#"["api"]"#, r#"["a","b"]"#] {
        expect_err(
            verify_at(&f.ring, &tok(aud), NOW),
            &JwtError::WrongAudience,
            aud,
        );
    }
    // aud of the wrong type, configured or not.
    let bad = JwtError::InvalidClaim {
        name: "aud",
        expected: "a string or a non-empty array of strings",
    };
    for aud in [
        "1",
        "null",
        "true",
        "{}",
        r#"[1]"#,
        r#"["api",1]"#,
        r#"[["api"]]"#,
        "[]",
    ] {
        expect_err(verify_with(&f.ring, &v, &tok(aud), NOW), &bad, aud);
        expect_err(verify_at(&f.ring, &tok(aud), NOW), &bad, aud);
    }
}

// ---------------------------------------------------------------------------------------
// Keys and the ring.

#[test]
fn a_fallback_key_verifies_until_it_leaves_the_ring() {
    let old = TestKey::generate();
    let new = TestKey::generate();
    let mut claims = Claims::new(UnixTime(NOW + 600));
    claims.username = Some("john_doe".into());
    // Ours, signed by the old key while it was current (kid = old).
    let with_kid = jwt::encode(&old.ring(), &claims);
    // PyJWT-style, no kid.
    let without_kid = forge(
        old.bytes(),
        br#"{"alg":"HS256","typ":"JWT"}"#,
        good_payload().as_bytes(),
    );

    let rotated = KeyRing::new(new.key.clone(), vec![old.key.clone()]).unwrap();
    for t in [&with_kid, &without_kid] {
        let ok = verify_at(&rotated, t, NOW).unwrap();
        assert_eq!(ok.key_index, 1);
        assert_eq!(ok.claims.username.as_deref(), Some("john_doe"));
    }
    // New tokens are signed by the new key.
    let fresh = jwt::encode(&rotated, &claims);
    assert_eq!(verify_at(&rotated, &fresh, NOW).unwrap().key_index, 0);

    // The old key removed (emergency rotation): both are refused.
    let removed = KeyRing::single(new.key.clone());
    expect_err(
        verify_at(&removed, &with_kid, NOW),
        &JwtError::UnknownKey { kid: old.kid() },
        "kid of a removed key",
    );
    expect_err(
        verify_at(&removed, &without_kid, NOW),
        &JwtError::InvalidSignature { tried: 1 },
        "no kid, removed key",
    );
    // With two other keys in the ring, every one is tried.
    let other = TestKey::generate();
    let two = KeyRing::new(new.key.clone(), vec![other.key.clone()]).unwrap();
    expect_err(
        verify_at(&two, &without_kid, NOW),
        &JwtError::InvalidSignature { tried: 2 },
        "no kid, two keys",
    );
}

#[test]
fn a_kid_naming_one_key_with_a_mac_from_another_is_refused() {
    let a = TestKey::generate();
    let b = TestKey::generate();
    let ring = KeyRing::new(a.key.clone(), vec![b.key.clone()]).unwrap();
    // kid of A, signed by B (which is in the ring): only A is tried.
    let header = our_header(&a);
    let t = forge(b.bytes(), header.as_bytes(), good_payload().as_bytes());
    expect_err(
        verify_at(&ring, &t, NOW),
        &JwtError::InvalidSignature { tried: 1 },
        "kid A, MAC B",
    );
    // And the other way round.
    let header = our_header(&b);
    let t = forge(a.bytes(), header.as_bytes(), good_payload().as_bytes());
    expect_err(
        verify_at(&ring, &t, NOW),
        &JwtError::InvalidSignature { tried: 1 },
        "kid B, MAC A",
    );
    // The honest pairs verify, with the right index.
    let t = forge(b.bytes(), header.as_bytes(), good_payload().as_bytes());
    assert_eq!(verify_at(&ring, &t, NOW).unwrap().key_index, 1);
}

/// The MAC uses the key bytes as they are (a subkey or a hash of the key is not the key).
#[test]
fn jwts_use_the_raw_key() {
    let k = TestKey::generate();
    let token = jwt::encode(&k.ring(), &Claims::new(UnixTime(NOW + 60)));
    let (input, sig) = token.rsplit_once('.').unwrap();
    assert_eq!(b64(&hs256(k.bytes(), input.as_bytes())), sig);
}

#[test]
fn weak_or_empty_keys_never_become_keys() {
    assert_eq!(SecretKey::parse("").unwrap_err(), KeyError::Missing);
    assert_eq!(SecretKey::from_bytes(b"").unwrap_err(), KeyError::Missing);
    // The seeds' values and other placeholders, whatever their length.
    for placeholder in [
        "your_secret_key",
        "_5#y2L!F4Q8z-9ec]/",
        "secret",
        "changeme",
        "your-256-bit-secret",
        "keyboard cat",
        "YOUR_SECRET_KEY_YOUR_SECRET_KEY_YOUR_SECRET_KEY",
        "this-is-an-example-key-do-not-use-in-production-ok",
    ] {
        assert_eq!(
            SecretKey::parse(placeholder).unwrap_err(),
            KeyError::Placeholder,
            "{placeholder}"
        );
    }
    // Short: os.urandom(24)-sized, and 31 bytes.
    assert_eq!(
        SecretKey::from_bytes(&[
            0x5a, 0x13, 0x99, 0xc4, 0x01, 0x7e, 0xb2, 0x48, 0xd0, 0x2f, 0x66, 0x8b, 0x35, 0xe9,
            0x70, 0x1c, 0xa7, 0x54, 0x0d, 0xfe, 0x82, 0x3b, 0xc9, 0x61
        ])
        .unwrap_err(),
        KeyError::TooShort { len: 24 }
    );
    assert_eq!(
        SecretKey::parse("Qm9vLp3xZ7rT1wVb8nKd2sFh6jGc0yA").unwrap_err(),
        KeyError::TooShort { len: 31 }
    );
    // Too little variety.
    for weak in [
        "a".repeat(64),
        "0".repeat(32),
        "01".repeat(32),
        "12345678901234567890123456789012".to_string(),
        "qwertyuiopqwertyuiopqwertyuiopqwertyuiop".to_string(),
        "abcdefghijklmnopqrstuvwxyzabcdefghijkl".to_string(),
        "\0".repeat(32),
    ] {
        assert!(
            matches!(SecretKey::parse(&weak), Err(KeyError::LowVariety { .. })),
            "{weak:?}"
        );
    }
    // 32 bytes from the OS are fine, and the messages never contain the key.
    let weak = "Zx81kQv0pL2m";
    let message = SecretKey::parse(weak).unwrap_err().to_string();
    assert!(!message.contains(weak) && message.contains("countersign keygen"));
    // A ring refuses the same key twice.
    let k = TestKey::generate();
    assert!(matches!(
        KeyRing::new(k.key.clone(), vec![k.key.clone()]),
        Err(KeyError::Duplicate { .. })
    ));
}

/// The human reasons name what a developer needs and never echo unbounded token content.
#[test]
fn reasons_are_actionable_and_bounded() {
    let f = fx();
    let header = json!({"alg": "HS256", "kid": "x".repeat(5000)}).to_string();
    let e = f.header_result(&header).unwrap_err();
    let shown = e.to_string();
    assert!(shown.contains("not in the ring"), "{shown}");
    assert!(shown.len() < 200, "{shown}");
    assert!(
        JwtError::AlgorithmNotAccepted {
            alg: "HS512".into()
        }
        .to_string()
        .contains("HS512")
    );
    assert!(JwtError::Expired { ago: 252 }.is_expired());
    assert!(!JwtError::InvalidSignature { tried: 1 }.is_expired());
}
