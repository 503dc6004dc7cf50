//! EdDSA and ES256 cost, measured against ring's raw verify and sign in the same run.
//!
//! `cargo bench -p countersign --bench signed` signs one token per algorithm with
//! `jwt::issue_signed` (claims `sub`, `username`, `role`, `iat`, `exp`, `jti`; header with
//! `kid`), then times, for each algorithm:
//!
//! - ring's raw verify of that token's signature over its signing input (an
//!   `UnparsedPublicKey`, as our verifier uses) — the floor;
//! - our `jwt::verify_any` of the whole token (a one-key `PublicKeys`);
//! - jsonwebtoken 11's `decode` of the same token, with a ring-backed provider
//!   (`tests/it/ring_provider.rs`: same curve code, so the difference is its framing);
//! - ring's raw sign of the signing input with a parsed key pair — the floor for signing;
//! - our `jwt::encode_signed` (ready claims) and `jwt::issue_signed` (claims, fresh `jti`);
//! - jsonwebtoken's `encode` (which parses its PKCS#8 key on every call, by design).
//!
//! Two figures each, both from this run: criterion's mean (read back from its estimates
//! file; "not run" when filtered out) and the median of an interleaved pass taking every
//! contender in turn, so that other work on the machine slows all alike. Targets
//! (issue 11): verify ≤ 1.3× raw verify, sign ≤ 1.3× raw sign.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use countersign::clock::{Clock as _, SystemClock, UnixTime};
use countersign::jwt::{self, Algorithm, Issuance, PublicKeys, Signer, Subject, Validation};
use countersign::signing::SigningKey;
use criterion::Criterion;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};

#[path = "../tests/it/ring_provider.rs"]
mod ring_provider;

/// The claims as a jsonwebtoken user would declare them.
#[derive(Debug, Serialize, Deserialize)]
struct PeerClaims {
    sub: String,
    username: String,
    role: String,
    iat: i64,
    exp: i64,
    jti: String,
}

fn subject() -> Subject {
    Subject {
        sub: Some("1042".into()),
        username: Some("john_doe".into()),
        role: Some("admin".into()),
        extra: Default::default(),
    }
}

/// Ring's key pair for raw signing.
enum RawPair {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
}

/// One algorithm's token and keys, in every form the contenders take.
struct Fixture {
    alg: Algorithm,
    signer: Signer,
    public: PublicKeys,
    raw_public: Vec<u8>,
    raw_pair: RawPair,
    token: String,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
    now: UnixTime,
    claims: jwt::Claims,
    peer_claims: PeerClaims,
    peer_decoding: jsonwebtoken::DecodingKey,
    peer_encoding: jsonwebtoken::EncodingKey,
    peer_header: jsonwebtoken::Header,
}

fn pkcs8(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("our PEM is base64")
}

fn fixture(alg: Algorithm) -> Fixture {
    let (key, pem) = SigningKey::generate(alg).expect("the OS random source works");
    let der = pkcs8(&pem);
    let public = PublicKeys::new(vec![key.public().clone()]).expect("one key");
    let jwk = key.public().to_jwk();
    let x = jwk["x"].as_str().expect("x").to_owned();
    let (raw_pair, peer_decoding, peer_encoding, jwt_alg) = match alg {
        Algorithm::EdDSA => (
            RawPair::Ed(Ed25519KeyPair::from_pkcs8(&der).expect("our key")),
            jsonwebtoken::DecodingKey::from_ed_components(&x).expect("x"),
            jsonwebtoken::EncodingKey::from_ed_der(&der),
            jsonwebtoken::Algorithm::EdDSA,
        ),
        _ => (
            RawPair::Ec(
                EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &der,
                    &SystemRandom::new(),
                )
                .expect("our key"),
            ),
            jsonwebtoken::DecodingKey::from_ec_components(&x, jwk["y"].as_str().expect("y"))
                .expect("x, y"),
            jsonwebtoken::EncodingKey::from_ec_der(&der),
            jsonwebtoken::Algorithm::ES256,
        ),
    };
    let mut raw_public = Vec::new();
    {
        use base64::Engine as _;
        let d = |s: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .expect("b64")
        };
        if alg == Algorithm::ES256 {
            raw_public.push(4);
            raw_public.extend(d(&x));
            raw_public.extend(d(jwk["y"].as_str().expect("y")));
        } else {
            raw_public.extend(d(&x));
        }
    }
    let kid = key.kid().to_owned();
    let signer = Signer::new(key);
    let now = SystemClock.now();
    let issuance = Issuance {
        ttl_secs: 3_600,
        ..Issuance::default()
    };
    let issued = jwt::issue_signed(&signer, &issuance, subject(), now).expect("signs");
    let token = issued.token;
    let dot = token.rfind('.').expect("a compact JWS");
    let signing_input = token.as_bytes()[..dot].to_vec();
    let signature = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token[dot + 1..])
            .expect("b64")
    };
    let c = issued.claims;
    let peer_claims = PeerClaims {
        sub: c.sub.clone().unwrap_or_default(),
        username: c.username.clone().unwrap_or_default(),
        role: c.role.clone().unwrap_or_default(),
        iat: c.iat.map_or(0, UnixTime::secs),
        exp: c.exp.secs(),
        jti: c.jti.clone().unwrap_or_default(),
    };
    let mut peer_header = jsonwebtoken::Header::new(jwt_alg);
    peer_header.kid = Some(kid);
    Fixture {
        alg,
        signer,
        public,
        raw_public,
        raw_pair,
        token,
        signing_input,
        signature,
        now,
        claims: c,
        peer_claims,
        peer_decoding,
        peer_encoding,
        peer_header,
    }
}

/// One thing measured.
struct Contender<'a> {
    group: String,
    id: &'static str,
    label: String,
    run: Box<dyn FnMut() + 'a>,
}

fn contenders(f: &Fixture) -> Vec<Contender<'_>> {
    let a = f.alg.as_str();
    let verify_group = format!("{}_verify", a.to_ascii_lowercase());
    let sign_group = format!("{}_sign", a.to_ascii_lowercase());
    let validation = Validation::default();
    let mut peer_validation = jsonwebtoken::Validation::new(f.peer_header.alg);
    peer_validation.validate_aud = false;
    let issuance = Issuance {
        ttl_secs: 3_600,
        ..Issuance::default()
    };
    let verification: &'static dyn ring::signature::VerificationAlgorithm = match f.alg {
        Algorithm::ES256 => &ECDSA_P256_SHA256_FIXED,
        _ => &ED25519,
    };
    let rng = SystemRandom::new();
    vec![
        Contender {
            group: verify_group.clone(),
            id: "ring_raw",
            label: format!("{a}: ring raw verify (signature over the signing input)"),
            run: Box::new(move || {
                let key = UnparsedPublicKey::new(verification, &f.raw_public);
                let _ = black_box(key.verify(black_box(&f.signing_input), &f.signature));
            }),
        },
        Contender {
            group: verify_group.clone(),
            id: "countersign",
            label: format!("{a}: countersign jwt::verify_any"),
            run: Box::new(move || {
                let _ = black_box(jwt::verify_any(
                    None,
                    &f.public,
                    &validation,
                    black_box(&f.token),
                    f.now,
                ));
            }),
        },
        Contender {
            group: verify_group,
            id: "jsonwebtoken",
            label: format!("{a}: jsonwebtoken 11 decode (ring provider)"),
            run: Box::new(move || {
                let _ = black_box(jsonwebtoken::decode::<PeerClaims>(
                    black_box(&f.token),
                    &f.peer_decoding,
                    &peer_validation,
                ));
            }),
        },
        Contender {
            group: sign_group.clone(),
            id: "ring_raw",
            label: format!("{a}: ring raw sign (parsed key pair)"),
            run: Box::new(move || match &f.raw_pair {
                RawPair::Ed(pair) => {
                    black_box(pair.sign(black_box(&f.signing_input)));
                }
                RawPair::Ec(pair) => {
                    let _ = black_box(pair.sign(&rng, black_box(&f.signing_input)));
                }
            }),
        },
        Contender {
            group: sign_group.clone(),
            id: "countersign_encode",
            label: format!("{a}: countersign jwt::encode_signed (ready claims)"),
            run: Box::new(move || {
                let _ = black_box(jwt::encode_signed(&f.signer, black_box(&f.claims)));
            }),
        },
        Contender {
            group: sign_group.clone(),
            id: "countersign_issue",
            label: format!("{a}: countersign jwt::issue_signed (claims, fresh jti)"),
            run: Box::new(move || {
                let _ = black_box(jwt::issue_signed(
                    &f.signer,
                    &issuance,
                    black_box(subject()),
                    f.now,
                ));
            }),
        },
        Contender {
            group: sign_group,
            id: "jsonwebtoken_encode",
            label: format!("{a}: jsonwebtoken 11 encode (ring provider, key parsed per call)"),
            run: Box::new(move || {
                let _ = black_box(jsonwebtoken::encode(
                    &f.peer_header,
                    black_box(&f.peer_claims),
                    &f.peer_encoding,
                ));
            }),
        },
    ]
}

/// Every contender in turn for `rounds` rounds of ~200 µs batches; the median ns per call.
fn interleaved(contenders: &mut [Contender<'_>], rounds: usize) -> Vec<f64> {
    let batch: Vec<u32> = contenders
        .iter_mut()
        .map(|c| {
            let start = Instant::now();
            for _ in 0..100 {
                (c.run)();
            }
            let per_call = start.elapsed().as_secs_f64() / 100.0;
            (200e-6 / per_call).ceil().clamp(1.0, 1e6) as u32
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(rounds); contenders.len()];
    for _ in 0..rounds {
        for ((c, n), out) in contenders.iter_mut().zip(&batch).zip(&mut samples) {
            let start = Instant::now();
            for _ in 0..*n {
                (c.run)();
            }
            out.push(start.elapsed().as_secs_f64() * 1e9 / f64::from(*n));
        }
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}

/// Where criterion writes its estimates.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let from_metadata = std::env::var_os("CARGO").and_then(|cargo| {
        let out = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(PathBuf::from(v.get("target_directory")?.as_str()?))
    });
    from_metadata.map_or_else(
        || PathBuf::from("target/criterion"),
        |t| t.join("criterion"),
    )
}

/// Criterion's mean for `group/id` in ns, if this run wrote it.
fn estimate(dir: &Path, id: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(id).join("new").join("estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    v.get("mean")?.get("point_estimate")?.as_f64()
}

const ROUNDS: usize = 300;

fn print_table(contenders: &[Contender<'_>], medians: &[f64], since: SystemTime) {
    let dir = criterion_dir();
    let crit: Vec<Option<f64>> = contenders
        .iter()
        .map(|c| estimate(&dir, &format!("{}/{}", c.group, c.id), since))
        .collect();
    println!();
    println!(
        "criterion: mean of this run's estimates; interleaved: median of {ROUNDS} rounds taking each in turn"
    );
    println!();
    println!("| measurement | criterion mean | × raw | interleaved median | × raw |");
    println!("|---|---:|---:|---:|---:|");
    let base = |i: usize| {
        contenders
            .iter()
            .position(|c| c.group == contenders[i].group && c.id == "ring_raw")
            .expect("each group has its raw baseline")
    };
    let mut verdicts = Vec::new();
    for (i, c) in contenders.iter().enumerate() {
        let b = base(i);
        let (crit_ns, crit_x) = match (crit[i], crit[b]) {
            (Some(ns), Some(raw)) => (format!("{:.1} µs", ns / 1e3), format!("{:.2}×", ns / raw)),
            (Some(ns), None) => (format!("{:.1} µs", ns / 1e3), "–".into()),
            _ => ("not run".into(), "–".into()),
        };
        let x = medians[i] / medians[b];
        println!(
            "| {} | {crit_ns} | {crit_x} | {:.1} µs | {x:.2}× |",
            c.label,
            medians[i] / 1e3
        );
        if c.id == "countersign" || c.id == "countersign_encode" {
            verdicts.push(format!(
                "{}: {x:.2}× raw (interleaved){} — target ≤ 1.3×",
                c.label,
                match (crit[i], crit[b]) {
                    (Some(ns), Some(raw)) => format!(", {:.2}× (criterion)", ns / raw),
                    _ => String::new(),
                }
            ));
        }
    }
    println!();
    for v in verdicts {
        println!("{v}");
    }
}

fn main() {
    ring_provider::install();
    let since = SystemTime::now();
    let fixtures = [fixture(Algorithm::EdDSA), fixture(Algorithm::ES256)];
    for f in &fixtures {
        // Sanity: every verifier accepts the token before anything is timed.
        jwt::verify_any(None, &f.public, &Validation::default(), &f.token, f.now)
            .expect("ours verifies");
        let mut v = jsonwebtoken::Validation::new(f.peer_header.alg);
        v.validate_aud = false;
        jsonwebtoken::decode::<PeerClaims>(&f.token, &f.peer_decoding, &v)
            .expect("jsonwebtoken verifies ours");
        let theirs = jsonwebtoken::encode(&f.peer_header, &f.peer_claims, &f.peer_encoding)
            .expect("jsonwebtoken signs");
        jwt::verify_any(None, &f.public, &Validation::default(), &theirs, f.now)
            .expect("we verify jsonwebtoken's");
    }
    let mut contenders: Vec<Contender<'_>> = fixtures.iter().flat_map(contenders).collect();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let groups: Vec<String> = {
        let mut g: Vec<String> = contenders.iter().map(|c| c.group.clone()).collect();
        g.dedup();
        g
    };
    for group in &groups {
        let mut g = c.benchmark_group(group.as_str());
        for contender in contenders.iter_mut().filter(|c| &c.group == group) {
            g.bench_function(contender.id, |b| b.iter(|| (contender.run)()));
        }
        g.finish();
    }
    c.final_summary();
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    let profiling = args.iter().any(|a| a == "--profile-time");
    if benching && !profiling {
        let medians = interleaved(&mut contenders, ROUNDS);
        print_table(&contenders, &medians, since);
    }
}
