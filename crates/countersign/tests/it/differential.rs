//! Differential test against jsonwebtoken 11: whatever we accept, it accepts.
//!
//! Tokens are generated (valid ones, and ones with every kind of defect, then possibly a
//! byte mutated), and both verifiers are run on each with the same key, algorithm, leeway
//! and issuer/audience, `nbf` checking on. jsonwebtoken reads its own wall clock, so the
//! tokens' times are relative to the real current time, and each comparison is retried
//! when the wall clock's second changed during it (see [`stable`]), so both verifiers
//! always judge at the same second.
//!
//! Where we refuse what jsonwebtoken accepts, the reason must be one of [`STRICTER`]: the
//! table of intended differences, each with its reason. A refusal outside the table fails
//! the test, and so does any token we accept and jsonwebtoken refuses.

use countersign::clock::UnixTime;
use countersign::jwt::{self, Claims, Issuance, JwtError, Subject, Validation};
use countersign::keys::KeyRing;
use jsonwebtoken::{Algorithm, DecodingKey};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{Value, json};

use crate::util::{TestKey, b64, forge, sign_segments, unb64, wall_clock_now};

const LEEWAY: i64 = 30;

/// One intended difference: a token we refuse and jsonwebtoken 11 accepts.
struct Difference {
    /// The rule, as the tests and docs name it.
    rule: &'static str,
    /// Why we are stricter.
    why: &'static str,
    /// Whether our error (and the payload jsonwebtoken decoded) is this difference.
    applies: fn(&JwtError, &Value) -> bool,
}

/// Every case where we are stricter than jsonwebtoken 11, and why.
const STRICTER: &[Difference] = &[
    Difference {
        rule: "crit header",
        why: "RFC 7515 §4.1.11: a recipient must refuse a token whose `crit` lists an \
              extension it does not process; we process none, so any `crit` is refused. \
              jsonwebtoken parses `crit` and ignores it.",
        applies: |e, _| matches!(e, JwtError::ForbiddenHeader { name: "crit" }),
    },
    Difference {
        rule: "b64, zip, jku, x5u, jwk, x5c headers",
        why: "They change how the payload is read (b64: RFC 7797, zip) or point at keys \
              (jku, x5u, jwk, x5c) that a verifier pinned to its own ring must never fetch \
              or trust; jsonwebtoken parses them and ignores them.",
        applies: |e, _| matches!(e, JwtError::ForbiddenHeader { name } if *name != "crit"),
    },
    Difference {
        rule: "typ other than JWT / at+jwt",
        why: "Explicit typing (RFC 8725 §3.11) keeps other JOSE objects signed with the same \
              key from passing as access tokens; jsonwebtoken does not look at `typ`.",
        applies: |e, _| matches!(e, JwtError::UnsupportedType { .. }),
    },
    Difference {
        rule: "kid naming no key of the ring",
        why: "A `kid` selects the one key to try; one that names no key is refused even if \
              the MAC would match. jsonwebtoken ignores `kid` and tries the key it is given.",
        applies: |e, _| matches!(e, JwtError::UnknownKey { .. }),
    },
    Difference {
        rule: "duplicate member names",
        why: "RFC 7515 §5.2 allows refusing them, and a parser that keeps the last and one \
              that keeps the first read two different tokens from the same bytes; \
              jsonwebtoken (serde_json) keeps the last for any name it does not validate.",
        applies: |e, _| matches!(e, JwtError::DuplicateMember { .. }),
    },
    Difference {
        rule: "iat in the future",
        why: "A token issued after now (beyond the leeway) comes from a wrong clock or a \
              forger; jsonwebtoken does not check `iat` at all.",
        applies: |e, _| matches!(e, JwtError::IssuedInFuture { .. }),
    },
    Difference {
        rule: "iat of the wrong type or out of range",
        why: "`iat` is a NumericDate (RFC 7519 §4.1.6) and is checked when present; \
              jsonwebtoken ignores it.",
        applies: |e, _| {
            matches!(
                e,
                JwtError::InvalidClaim { name: "iat", .. }
                    | JwtError::ClaimOutOfRange { name: "iat" }
            )
        },
    },
    Difference {
        rule: "exactly at exp + leeway",
        why: "RFC 7519 §4.1.4: the token must not be accepted on or after `exp`; with the \
              leeway, now = exp + leeway is expired. jsonwebtoken accepts that second.",
        applies: |e, _| matches!(e, JwtError::Expired { ago } if *ago == LEEWAY),
    },
    Difference {
        rule: "fractional nbf in the last second",
        why: "We round a fractional `nbf` up, so `now < nbf` holds exactly; jsonwebtoken \
              rounds to the nearest second and accepts up to half a second early.",
        applies: |e, p| {
            matches!(e, JwtError::NotYetValid { in_secs } if *in_secs == LEEWAY + 1)
                && p.get("nbf").is_some_and(Value::is_f64)
        },
    },
    Difference {
        rule: "times beyond year 9999",
        why: "NumericDates past 9999-12-31 are refused rather than risk overflow in \
              deadline arithmetic; jsonwebtoken accepts any u64.",
        applies: |e, _| matches!(e, JwtError::ClaimOutOfRange { .. }),
    },
    Difference {
        rule: "registered string claims of the wrong type (iss as an array included)",
        why: "`sub`, `username`, `role`, `jti` and `iss` are typed fields (RFC 7519 §4.1: \
              `iss` is a single StringOrURI); jsonwebtoken ignores a mistyped claim it is not \
              asked to check, and accepts `iss` as an array.",
        applies: |e, _| {
            matches!(
                e,
                JwtError::InvalidClaim {
                    name: "sub" | "username" | "role" | "jti" | "iss",
                    ..
                }
            )
        },
    },
    Difference {
        rule: "aud null, empty, or not strings",
        why: "`aud` is a string or a non-empty array of strings (RFC 7519 §4.1.3); \
              jsonwebtoken treats a mistyped `aud` as absent.",
        applies: |e, _| matches!(e, JwtError::InvalidClaim { name: "aud", .. }),
    },
    Difference {
        rule: "issuer configured, token without iss",
        why: "A configured issuer is required; jsonwebtoken checks `iss` only when present \
              unless it is also listed in `required_spec_claims`.",
        applies: |e, p| {
            matches!(e, JwtError::WrongIssuer { found: None }) && p.get("iss").is_none()
        },
    },
    Difference {
        rule: "audience configured, token without aud",
        why: "A configured audience is required; jsonwebtoken checks `aud` only when present \
              unless it is also listed in `required_spec_claims`.",
        applies: |e, p| matches!(e, JwtError::WrongAudience) && p.get("aud").is_none(),
    },
    Difference {
        rule: "size limit",
        why: "Tokens over 8 KiB are refused before any parsing; jsonwebtoken has no limit.",
        applies: |e, _| matches!(e, JwtError::TooLarge { .. }),
    },
];

fn stricter(e: &JwtError, payload: &Value) -> Option<&'static Difference> {
    STRICTER.iter().find(|d| (d.applies)(e, payload))
}

/// The verifier configuration, the same for both libraries.
#[derive(Clone, Debug, Default)]
struct Config {
    issuer: Option<String>,
    audience: Option<String>,
}

impl Config {
    fn ours(&self) -> Validation {
        Validation {
            leeway_secs: LEEWAY,
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            ..Validation::default()
        }
    }

    fn theirs(&self) -> jsonwebtoken::Validation {
        let mut v = jsonwebtoken::Validation::new(Algorithm::HS256);
        v.validate_nbf = true;
        v.leeway = LEEWAY as u64;
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
        }
        if let Some(aud) = &self.audience {
            v.set_audience(&[aud]);
        }
        v
    }
}

/// What both libraries said about one token.
#[derive(Debug)]
enum Outcome {
    BothAccept,
    BothRefuse,
    /// We refuse, jsonwebtoken accepts, for this listed reason.
    Stricter(&'static str),
}

/// Run `f` with the wall clock's current second, again if the second changed meanwhile:
/// jsonwebtoken reads the clock itself, and this way it read `now` too.
fn stable<R>(mut f: impl FnMut(i64) -> R) -> R {
    loop {
        let now = wall_clock_now();
        let r = f(now);
        if wall_clock_now() == now {
            return r;
        }
    }
}

/// Run both verifiers, ours at `now`; fail on any difference that is not intended.
fn compare(key: &TestKey, config: &Config, token: &str, now: i64) -> Result<Outcome, String> {
    let ring = key.ring();
    let ours = jwt::verify(&ring, &config.ours(), token, UnixTime(now));
    crate::ring_provider::install();
    let theirs = jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(key.bytes()),
        &config.theirs(),
    );
    match (ours, theirs) {
        (Ok(ok), Ok(data)) => {
            // And they read the same claims.
            let c = &data.claims;
            if c.get("username").and_then(Value::as_str) != ok.claims.username.as_deref()
                || c.get("exp")
                    .and_then(Value::as_f64)
                    .map(|f| f.ceil() as i64)
                    != Some(ok.claims.exp.0)
            {
                return Err(format!("read differently: {c} vs {:?}", ok.claims));
            }
            Ok(Outcome::BothAccept)
        }
        (Ok(ok), Err(e)) => Err(format!(
            "we accepted a token jsonwebtoken refuses ({e:?}): {token}\nclaims: {:?}",
            ok.claims
        )),
        (Err(e), Ok(data)) => match stricter(&e, &data.claims) {
            Some(d) => Ok(Outcome::Stricter(d.rule)),
            None => Err(format!(
                "we refuse ({e:?}) what jsonwebtoken accepts, and the difference is not \
                 listed: {token}\nclaims: {}",
                data.claims
            )),
        },
        (Err(_), Err(_)) => Ok(Outcome::BothRefuse),
    }
}

// ---------------------------------------------------------------------------------------
// Generated tokens.

/// A member value; times are relative to the wall clock when the token is made.
#[derive(Clone, Debug)]
enum G {
    /// JSON text as is.
    Raw(&'static str),
    /// now + offset.
    Rel(i64),
    /// now + offset + quarters/4.
    RelFrac(i64, u8),
    /// The ring key's kid.
    OurKid,
    /// A string.
    Text(String),
}

impl G {
    fn render(&self, now: i64, kid: &str) -> String {
        match self {
            G::Raw(s) => (*s).to_string(),
            G::Rel(d) => (now + d).to_string(),
            G::RelFrac(d, q) => format!("{}.{}", now + d, u32::from(*q) * 25),
            G::OurKid => json!(kid).to_string(),
            G::Text(s) => json!(s).to_string(),
        }
    }
}

type Members = Vec<(String, G)>;

fn render(members: &Members, now: i64, kid: &str) -> String {
    let body: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}:{}", json!(k), v.render(now, kid)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// How the compact form is altered after signing.
#[derive(Clone, Debug)]
enum Encoding {
    Canonical,
    PadSignature,
    PadPayloadResigned,
    NonCanonicalSignature,
    StandardAlphabetPayloadResigned,
    /// Byte `index % len` replaced by `byte`.
    Mutate(usize, u8),
    /// Truncated to `index % len` bytes.
    Truncate(usize),
}

#[derive(Clone, Debug)]
struct Case {
    header: Members,
    payload: Members,
    signed_by_stranger: bool,
    config: Config,
    encoding: Encoding,
}

fn m(k: &str, v: G) -> (String, G) {
    (k.to_string(), v)
}

fn opt<T: Clone + std::fmt::Debug + 'static>(
    p_some: f64,
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop::option::weighted(p_some, s).boxed()
}

fn header() -> impl Strategy<Value = Members> {
    let alg = prop_oneof![
        40 => Just(Some(G::Raw(r#""HS256""#))),
        1 => Just(None),
        1 => Just(Some(G::Raw(r#""none""#))),
        1 => Just(Some(G::Raw(r#""HS384""#))),
        1 => Just(Some(G::Raw(r#""RS256""#))),
        1 => Just(Some(G::Raw(r#""hs256""#))),
        1 => Just(Some(G::Raw("256"))),
    ];
    let typ = opt(
        0.6,
        prop_oneof![
            10 => Just(G::Raw(r#""JWT""#)),
            1 => Just(G::Raw(r#""at+jwt""#)),
            1 => Just(G::Raw(r#""jwt""#)),
            1 => Just(G::Raw(r#""application/jwt""#)),
            1 => Just(G::Raw(r#""JOSE""#)),
            1 => Just(G::Raw("1")),
        ],
    );
    let kid = opt(
        0.6,
        prop_oneof![
            12 => Just(G::OurKid),
            1 => Just(G::Raw(r#""../../etc/passwd""#)),
            1 => Just(G::Raw(r#""""#)),
            1 => Just(G::Raw("7")),
        ],
    );
    let extras = prop::option::weighted(
        0.15,
        prop_oneof![
            Just(m("crit", G::Raw(r#"["exp"]"#))),
            Just(m("crit", G::Raw("[]"))),
            Just(m("crit", G::Raw(r#""exp""#))),
            Just(m("b64", G::Raw("false"))),
            Just(m("zip", G::Raw(r#""DEF""#))),
            Just(m("jku", G::Raw(r#""https://attacker.example/jwks""#))),
            Just(m("x5u", G::Raw(r#""https://attacker.example/x5u""#))),
            Just(m("x5c", G::Raw(r#"["MIIB"]"#))),
            Just(m("jwk", G::Raw("{}"))),
            Just(m("cty", G::Raw(r#""JWT""#))),
            Just(m("x5t", G::Raw(r#""abc""#))),
            Just(m("custom", G::Raw(r#"{"a":[1,{"b":null}]}"#))),
        ],
    );
    let dup = opt(0.05, prop_oneof![Just("alg"), Just("typ"), Just("kid")]);
    (alg, typ, kid, extras, dup, any::<prop::sample::Index>()).prop_map(
        |(alg, typ, kid, extras, dup, at)| {
            let mut h = Members::new();
            if let Some(a) = alg {
                h.push(m("alg", a));
            }
            if let Some(t) = typ {
                h.push(m("typ", t));
            }
            if let Some(k) = kid {
                h.push(m("kid", k));
            }
            if let Some(e) = extras {
                let i = at.index(h.len() + 1);
                h.insert(i, e);
            }
            if let Some(name) = dup
                && let Some((_, v)) = h.iter().find(|(k, _)| k == name).cloned()
            {
                h.push((name.to_string(), v));
            }
            h
        },
    )
}

fn payload() -> impl Strategy<Value = Members> {
    // Offsets around each boundary (exp + leeway, nbf - leeway, iat - leeway).
    let exp = prop_oneof![
        20 => prop::sample::select(vec![-28i64, -1, 0, 28, 100, 900, 3600])
            .prop_map(|d| Some(G::Rel(d))),
        4 => prop::sample::select(vec![-3600i64, -100, -31, -30])
            .prop_map(|d| Some(G::Rel(d))),
        2 => (prop::sample::select(vec![-100i64, -31, -30, -29, 0, 100]), 1u8..4)
            .prop_map(|(d, q)| Some(G::RelFrac(d, q))),
        1 => Just(None),
        1 => Just(Some(G::Raw(r#""2000000000""#))),
        1 => Just(Some(G::Raw("null"))),
        1 => Just(Some(G::Raw("-5"))),
        1 => Just(Some(G::Raw("253402300800"))),
        1 => Just(Some(G::Raw("18446744073709551615"))),
    ];
    let nbf = opt(
        0.2,
        prop_oneof![
            4 => prop::sample::select(vec![-100i64, 0, 28, 30, 33, 100]).prop_map(G::Rel),
            2 => (prop::sample::select(vec![28i64, 29, 30, 31]), 1u8..4)
                .prop_map(|(d, q)| G::RelFrac(d, q)),
            1 => Just(G::Raw(r#""0""#)),
            1 => Just(G::Raw("253402300800")),
        ],
    );
    let iat = opt(
        0.3,
        prop_oneof![
            4 => prop::sample::select(vec![-100i64, 0, 28, 33, 100]).prop_map(G::Rel),
            1 => Just(G::Raw(r#""now""#)),
            1 => Just(G::Raw("-1")),
        ],
    );
    let iss = opt(
        0.3,
        prop_oneof![
            3 => Just(G::Raw(r#""me""#)),
            1 => Just(G::Raw(r#""other""#)),
            1 => Just(G::Raw(r#"["me"]"#)),
            1 => Just(G::Raw("1")),
        ],
    );
    let aud = opt(
        0.2,
        prop_oneof![
            5 => Just(G::Raw(r#""api""#)),
            3 => Just(G::Raw(r#"["x","api"]"#)),
            1 => Just(G::Raw(r#""other""#)),
            1 => Just(G::Raw("[]")),
            1 => Just(G::Raw("null")),
            1 => Just(G::Raw("5")),
            1 => Just(G::Raw("[5]")),
        ],
    );
    let sub = opt(
        0.4,
        prop_oneof![5 => Just(G::Raw(r#""u1""#)), 1 => Just(G::Raw("7"))],
    );
    let username = opt(0.8, "(?s).{0,12}".prop_map(G::Text));
    let role = opt(
        0.5,
        prop_oneof![5 => Just(G::Raw(r#""admin""#)), 1 => Just(G::Raw("[]"))],
    );
    let extra = prop::collection::vec(
        ("[a-z]{1,6}", "(?s).{0,8}").prop_map(|(k, v)| (k, G::Text(v))),
        0..3,
    );
    let dup = opt(0.05, prop_oneof![Just("exp"), Just("username"), Just("x")]);
    let big = prop::bool::weighted(0.02);
    (
        (exp, nbf, iat, iss, aud),
        (
            sub,
            username,
            role,
            extra,
            dup,
            big,
            any::<prop::sample::Index>(),
        ),
    )
        .prop_map(
            |((exp, nbf, iat, iss, aud), (sub, username, role, extra, dup, big, at))| {
                let mut p = Members::new();
                for (k, v) in [
                    ("sub", sub),
                    ("username", username),
                    ("role", role),
                    ("iat", iat),
                    ("nbf", nbf),
                    ("exp", exp),
                    ("iss", iss),
                    ("aud", aud),
                ] {
                    if let Some(v) = v {
                        p.push(m(k, v));
                    }
                }
                for (k, v) in extra {
                    if !p.iter().any(|(n, _)| *n == k) {
                        let i = at.index(p.len() + 1);
                        p.insert(i, (k, v));
                    }
                }
                if let Some(name) = dup {
                    let v = p
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or(G::Raw("1"));
                    if name == "x" {
                        p.push(m("x", G::Raw("1")));
                    }
                    p.push((name.to_string(), v));
                }
                if big {
                    p.push(m("pad", G::Text("x".repeat(8 * 1024))));
                }
                p
            },
        )
}

fn config() -> impl Strategy<Value = Config> {
    (
        prop::option::weighted(0.2, Just("me".to_string())),
        prop::option::weighted(0.2, Just("api".to_string())),
    )
        .prop_map(|(issuer, audience)| Config { issuer, audience })
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        60 => Just(Encoding::Canonical),
        1 => Just(Encoding::PadSignature),
        1 => Just(Encoding::PadPayloadResigned),
        1 => Just(Encoding::NonCanonicalSignature),
        1 => Just(Encoding::StandardAlphabetPayloadResigned),
        6 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Encoding::Mutate(i, b)),
        1 => any::<usize>().prop_map(Encoding::Truncate),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        header(),
        payload(),
        prop::bool::weighted(0.05),
        config(),
        encoding(),
    )
        .prop_map(
            |(header, payload, signed_by_stranger, config, encoding)| Case {
                header,
                payload,
                signed_by_stranger,
                config,
                encoding,
            },
        )
}

/// The token for `case`, or `None` when a mutation left invalid UTF-8 (not a `&str`).
fn make(case: &Case, key: &TestKey, stranger: &TestKey, now: i64) -> Option<String> {
    let kid = key.kid();
    let header = render(&case.header, now, &kid);
    let payload = render(&case.payload, now, &kid);
    let signer = if case.signed_by_stranger {
        stranger
    } else {
        key
    };
    let token = forge(signer.bytes(), header.as_bytes(), payload.as_bytes());
    let (h, rest) = token.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let token = match &case.encoding {
        Encoding::Canonical => token.clone(),
        Encoding::PadSignature => format!("{token}="),
        Encoding::PadPayloadResigned => sign_segments(signer.bytes(), h, &format!("{p}=")),
        Encoding::NonCanonicalSignature => {
            const ALPHABET: &str =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let last = s.chars().last().unwrap();
            let v = ALPHABET.find(last).unwrap();
            let bumped = ALPHABET.as_bytes()[v | 1] as char;
            format!("{h}.{p}.{}{bumped}", &s[..s.len() - 1])
        }
        Encoding::StandardAlphabetPayloadResigned => {
            let std =
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, unb64(p));
            sign_segments(signer.bytes(), h, &std)
        }
        Encoding::Mutate(i, b) => {
            let mut bytes = token.into_bytes();
            let i = i % bytes.len();
            bytes[i] = *b;
            String::from_utf8(bytes).ok()?
        }
        Encoding::Truncate(i) => token[..i % token.len()].to_string(),
    };
    Some(token)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn whatever_we_accept_jsonwebtoken_accepts(case in case()) {
        let key = TestKey::generate();
        let stranger = TestKey::generate();
        let outcome = stable(|now| {
            make(&case, &key, &stranger, now).map(|t| (compare(&key, &case.config, &t, now), t))
        });
        if let Some((outcome, token)) = outcome {
            prop_assert!(outcome.is_ok(), "{}\ntoken: {}\ncase: {:?}", outcome.unwrap_err(), token, case);
        }
    }
}

/// The generator reaches every outcome, so the property above is not vacuous.
#[test]
fn the_generator_exercises_acceptance_and_every_listed_difference() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = case();
    let key = TestKey::generate();
    let stranger = TestKey::generate();
    let (mut accepted, mut refused) = (0, 0);
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..4000 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let outcome = stable(|now| {
            make(&case, &key, &stranger, now).map(|t| compare(&key, &case.config, &t, now))
        });
        let Some(outcome) = outcome else {
            continue;
        };
        match outcome.unwrap() {
            Outcome::BothAccept => accepted += 1,
            Outcome::BothRefuse => refused += 1,
            Outcome::Stricter(rule) => *seen.entry(rule).or_insert(0) += 1,
        }
    }
    eprintln!("accepted {accepted}, refused by both {refused}, stricter: {seen:?}");
    assert!(accepted > 200, "only {accepted} accepted");
    assert!(refused > 200, "only {refused} refused");
    // The generation is deterministic (only the keys vary, which changes nothing but
    // which mutated bytes land where), so every row of the table is reached every run.
    for d in STRICTER {
        assert!(seen.contains_key(d.rule), "never reached: {}", d.rule);
    }
}

// ---------------------------------------------------------------------------------------
// The table, case by case: a concrete token for each difference, refused by us with the
// listed error and accepted by jsonwebtoken.

#[test]
fn each_intended_difference_is_real() {
    let key = TestKey::generate();
    let results = stable(|now| intended_difference_cases(&key, now));
    let mut covered = std::collections::BTreeSet::new();
    for (rule, expected, ours, theirs) in results {
        match (&ours, &expected) {
            (JwtError::TooLarge { .. }, JwtError::TooLarge { .. }) => {}
            _ => assert_eq!(ours, expected, "{rule}"),
        }
        let data = theirs.unwrap_or_else(|e| panic!("{rule}: jsonwebtoken refused: {e:?}"));
        let d = stricter(&ours, &data).unwrap_or_else(|| panic!("{rule}: not listed"));
        assert_eq!(d.rule, rule);
        assert!(!d.why.is_empty());
        covered.insert(d.rule);
    }
    for d in STRICTER {
        assert!(covered.contains(d.rule), "no concrete case for {}", d.rule);
    }
}

type CaseResult = (
    &'static str,
    JwtError,
    JwtError,
    Result<Value, jsonwebtoken::errors::Error>,
);

/// For each row of the table, a token at `now`: (rule, our expected error, our error,
/// jsonwebtoken's result).
fn intended_difference_cases(key: &TestKey, now: i64) -> Vec<CaseResult> {
    let kid = key.kid();
    let exp = now + 600;
    let h = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#);
    let p = format!(r#"{{"username":"john_doe","exp":{exp}}}"#);
    let with_header =
        |members: &str| format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}",{members}}}"#);
    let with_claims = |members: &str| format!(r#"{{"username":"john_doe","exp":{exp},{members}}}"#);
    let none = Config::default();
    let iss = Config {
        issuer: Some("me".into()),
        audience: None,
    };
    let aud = Config {
        issuer: None,
        audience: Some("api".into()),
    };
    let cases: Vec<(&'static str, String, String, &Config, JwtError)> = vec![
        (
            "crit header",
            with_header(r#""crit":["exp"]"#),
            p.clone(),
            &none,
            JwtError::ForbiddenHeader { name: "crit" },
        ),
        (
            "crit header",
            with_header(r#""crit":[]"#),
            p.clone(),
            &none,
            JwtError::ForbiddenHeader { name: "crit" },
        ),
        (
            "b64, zip, jku, x5u, jwk, x5c headers",
            with_header(r#""b64":false"#),
            p.clone(),
            &none,
            JwtError::ForbiddenHeader { name: "b64" },
        ),
        (
            "b64, zip, jku, x5u, jwk, x5c headers",
            with_header(r#""zip":"DEF""#),
            p.clone(),
            &none,
            JwtError::ForbiddenHeader { name: "zip" },
        ),
        (
            "b64, zip, jku, x5u, jwk, x5c headers",
            with_header(r#""jku":"https://a.example/k""#),
            p.clone(),
            &none,
            JwtError::ForbiddenHeader { name: "jku" },
        ),
        (
            "b64, zip, jku, x5u, jwk, x5c headers",
            with_header(r#""x5u":"https://a.example/c""#),
            p.clone(),
            &none,
            JwtError::ForbiddenHeader { name: "x5u" },
        ),
        (
            "b64, zip, jku, x5u, jwk, x5c headers",
            with_header(r#""jwk":{"kty":"oct","k":"c2VjcmV0"}"#),
            p.clone(),
            &none,
            JwtError::ForbiddenHeader { name: "jwk" },
        ),
        (
            "b64, zip, jku, x5u, jwk, x5c headers",
            with_header(r#""x5c":["MIIB"]"#),
            p.clone(),
            &none,
            JwtError::ForbiddenHeader { name: "x5c" },
        ),
        (
            "typ other than JWT / at+jwt",
            format!(r#"{{"alg":"HS256","typ":"JOSE","kid":"{kid}"}}"#),
            p.clone(),
            &none,
            JwtError::UnsupportedType { typ: "JOSE".into() },
        ),
        (
            "kid naming no key of the ring",
            r#"{"alg":"HS256","kid":"../../etc/passwd"}"#.into(),
            p.clone(),
            &none,
            JwtError::UnknownKey {
                kid: "../../etc/passwd".into(),
            },
        ),
        (
            "duplicate member names",
            h.clone(),
            format!(r#"{{"username":"john_doe","username":"admin","exp":{exp}}}"#),
            &none,
            JwtError::DuplicateMember {
                part: jwt::Part::Payload,
                name: "username".into(),
            },
        ),
        (
            "duplicate member names",
            with_header(r#""x":1,"x":2"#),
            p.clone(),
            &none,
            JwtError::DuplicateMember {
                part: jwt::Part::Header,
                name: "x".into(),
            },
        ),
        (
            "duplicate member names",
            h.clone(),
            with_claims(r#""o":{"a":1,"a":2}"#),
            &none,
            JwtError::DuplicateMember {
                part: jwt::Part::Payload,
                name: "a".into(),
            },
        ),
        (
            "iat in the future",
            h.clone(),
            with_claims(&format!(r#""iat":{}"#, now + 3600)),
            &none,
            JwtError::IssuedInFuture { ahead: 3600 },
        ),
        (
            "iat of the wrong type or out of range",
            h.clone(),
            with_claims(r#""iat":"yesterday""#),
            &none,
            JwtError::InvalidClaim {
                name: "iat",
                expected: "a number of seconds (NumericDate)",
            },
        ),
        (
            "iat of the wrong type or out of range",
            h.clone(),
            with_claims(r#""iat":-1"#),
            &none,
            JwtError::ClaimOutOfRange { name: "iat" },
        ),
        (
            "exactly at exp + leeway",
            h.clone(),
            format!(r#"{{"username":"john_doe","exp":{}}}"#, now - LEEWAY),
            &none,
            JwtError::Expired { ago: LEEWAY },
        ),
        (
            "times beyond year 9999",
            h.clone(),
            r#"{"username":"john_doe","exp":253402300800}"#.into(),
            &none,
            JwtError::ClaimOutOfRange { name: "exp" },
        ),
        (
            "times beyond year 9999",
            h.clone(),
            r#"{"username":"john_doe","exp":18446744073709551615}"#.into(),
            &none,
            JwtError::ClaimOutOfRange { name: "exp" },
        ),
        (
            "registered string claims of the wrong type (iss as an array included)",
            h.clone(),
            with_claims(r#""iss":["me"]"#),
            &iss,
            JwtError::InvalidClaim {
                name: "iss",
                expected: "a string",
            },
        ),
        (
            "registered string claims of the wrong type (iss as an array included)",
            h.clone(),
            with_claims(r#""iss":["me"]"#),
            &none,
            JwtError::InvalidClaim {
                name: "iss",
                expected: "a string",
            },
        ),
        (
            "registered string claims of the wrong type (iss as an array included)",
            h.clone(),
            with_claims(r#""sub":42"#),
            &none,
            JwtError::InvalidClaim {
                name: "sub",
                expected: "a string",
            },
        ),
        (
            "registered string claims of the wrong type (iss as an array included)",
            h.clone(),
            with_claims(r#""role":["admin"]"#),
            &none,
            JwtError::InvalidClaim {
                name: "role",
                expected: "a string",
            },
        ),
        (
            "aud null, empty, or not strings",
            h.clone(),
            with_claims(r#""aud":null"#),
            &none,
            JwtError::InvalidClaim {
                name: "aud",
                expected: "a string or a non-empty array of strings",
            },
        ),
        (
            "aud null, empty, or not strings",
            h.clone(),
            with_claims(r#""aud":[1]"#),
            &aud,
            JwtError::InvalidClaim {
                name: "aud",
                expected: "a string or a non-empty array of strings",
            },
        ),
        (
            "issuer configured, token without iss",
            h.clone(),
            p.clone(),
            &iss,
            JwtError::WrongIssuer { found: None },
        ),
        (
            "audience configured, token without aud",
            h.clone(),
            p.clone(),
            &aud,
            JwtError::WrongAudience,
        ),
        (
            "size limit",
            h.clone(),
            with_claims(&format!(r#""pad":"{}""#, "x".repeat(8 * 1024))),
            &none,
            JwtError::TooLarge {
                len: 0,
                max: jwt::DEFAULT_MAX_TOKEN_BYTES,
            },
        ),
    ];
    // The fractional nbf needs jsonwebtoken's rounding: nbf = now + leeway + 0.25.
    let frac = with_claims(&format!(r#""nbf":{}.25"#, now + LEEWAY));
    let mut cases = cases;
    cases.push((
        "fractional nbf in the last second",
        h.clone(),
        frac,
        &none,
        JwtError::NotYetValid {
            in_secs: LEEWAY + 1,
        },
    ));

    cases
        .into_iter()
        .map(|(rule, header, payload, config, expected)| {
            let token = forge(key.bytes(), header.as_bytes(), payload.as_bytes());
            let ours = jwt::verify(&key.ring(), &config.ours(), &token, UnixTime(now))
                .map(|v| v.claims)
                .expect_err(rule);
            crate::ring_provider::install();
            let theirs = jsonwebtoken::decode::<Value>(
                &token,
                &DecodingKey::from_secret(key.bytes()),
                &config.theirs(),
            )
            .map(|d| d.claims);
            (rule, expected, ours, theirs)
        })
        .collect()
}

/// Refused by both: the rules jsonwebtoken shares, so they are not in the table.
#[test]
fn shared_refusals() {
    let key = TestKey::generate();
    let now = wall_clock_now();
    let kid = key.kid();
    let h = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{kid}"}}"#);
    let none = Config::default();
    let aud = Config {
        issuer: None,
        audience: Some("api".into()),
    };
    let cases: Vec<(String, String, &Config)> = vec![
        (
            r#"{"alg":"none"}"#.into(),
            format!(r#"{{"exp":{}}}"#, now + 60),
            &none,
        ),
        (
            r#"{"alg":"HS512"}"#.into(),
            format!(r#"{{"exp":{}}}"#, now + 60),
            &none,
        ),
        (
            r#"{"alg":"HS256","kid":7}"#.to_string(),
            format!(r#"{{"exp":{}}}"#, now + 60),
            &none,
        ),
        (h.clone(), r#"{"username":"john_doe"}"#.into(), &none),
        (h.clone(), format!(r#"{{"exp":"{}"}}"#, now + 60), &none),
        (h.clone(), format!(r#"{{"exp":{}}}"#, now - 3600), &none),
        (
            h.clone(),
            format!(r#"{{"exp":{},"nbf":{}}}"#, now + 600, now + 300),
            &none,
        ),
        (
            h.clone(),
            format!(r#"{{"exp":{},"nbf":"0"}}"#, now + 600),
            &none,
        ),
        (
            h.clone(),
            format!(r#"{{"exp":{},"aud":"api"}}"#, now + 600),
            &none,
        ),
        (
            h.clone(),
            format!(r#"{{"exp":{},"aud":"web"}}"#, now + 600),
            &aud,
        ),
        (
            h.clone(),
            format!(r#"{{"exp":{},"aud":[]}}"#, now + 600),
            &none,
        ),
        (
            h.clone(),
            format!(r#"{{"exp":{},"exp":{}}}"#, now + 600, now + 600),
            &none,
        ),
        (h.clone(), "[]".into(), &none),
    ];
    for (header, payload, config) in cases {
        let token = forge(key.bytes(), header.as_bytes(), payload.as_bytes());
        // Refusals that do not depend on a boundary second: no need for `stable`.
        let ours = jwt::verify(&key.ring(), &config.ours(), &token, UnixTime(now));
        crate::ring_provider::install();
        let theirs = jsonwebtoken::decode::<Value>(
            &token,
            &DecodingKey::from_secret(key.bytes()),
            &config.theirs(),
        );
        assert!(ours.is_err(), "{header} {payload}: we accepted");
        assert!(theirs.is_err(), "{header} {payload}: jsonwebtoken accepted");
    }
    // A wrong MAC, padding and non-canonical base64.
    let good = forge(
        key.bytes(),
        h.as_bytes(),
        format!(r#"{{"exp":{}}}"#, now + 60).as_bytes(),
    );
    let (input, _) = good.rsplit_once('.').unwrap();
    for token in [
        format!("{input}.{}", b64(&[0; 32])),
        format!("{good}="),
        format!("{good}."),
    ] {
        assert!(matches!(
            stable(|now| compare(&key, &none, &token, now)),
            Ok(Outcome::BothRefuse)
        ));
        assert!(jwt::verify(&key.ring(), &none.ours(), &token, UnixTime(now)).is_err());
    }
}

/// The tokens we issue, with and without iss/aud, and PyJWT-shaped ones: both accept.
#[test]
fn our_tokens_and_pyjwt_shaped_tokens_pass_both() {
    let key = TestKey::generate();
    let old = TestKey::generate();
    let ring = KeyRing::new(key.key.clone(), vec![old.key.clone()]).unwrap();
    let now = wall_clock_now();
    for (issuance, config) in [
        (Issuance::default(), Config::default()),
        (
            Issuance {
                issuer: Some("me".into()),
                audience: Some("api".into()),
                ..Issuance::default()
            },
            Config {
                issuer: Some("me".into()),
                audience: Some("api".into()),
            },
        ),
    ] {
        let subject = Subject {
            sub: Some("42".into()),
            username: Some("jöhn \"doe\"".into()),
            role: Some("admin".into()),
            extra: serde_json::from_str(r#"{"scope":["a","b"],"n":1.5}"#).unwrap(),
        };
        let issued = jwt::issue(&ring, &issuance, subject, UnixTime(now)).unwrap();
        let outcome = stable(|now| compare(&key, &config, &issued.token, now));
        assert!(matches!(outcome, Ok(Outcome::BothAccept)), "{outcome:?}");
    }
    let mut claims = Claims::new(UnixTime(now + 3600));
    claims.username = Some("john_doe".into());
    claims.role = Some("admin".into());
    let payload = serde_json::to_vec(&claims).unwrap();
    let pyjwt = forge(key.bytes(), br#"{"alg":"HS256","typ":"JWT"}"#, &payload);
    let outcome = stable(|now| compare(&key, &Config::default(), &pyjwt, now));
    assert!(matches!(outcome, Ok(Outcome::BothAccept)), "{outcome:?}");
}
