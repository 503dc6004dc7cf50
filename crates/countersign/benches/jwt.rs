//! HS256 cost, measured against the bare HMAC in the same run.
//!
//! `cargo bench -p countersign` runs every group on one token made by `jwt::issue`
//! (claims `sub`, `username`, `role`, `iat`, `exp`, `jti`; header with `kid`), then prints
//! each measurement as a multiple of the bare HMAC-SHA256 over that token's signing input:
//! a pre-keyed `Hmac<Sha256>` state cloned per call, which is what our verifier does before
//! anything else and the floor no HS256 implementation can go below.
//!
//! The table gives two figures for each, both from this run: criterion's own mean, read
//! back from `<criterion dir>/<group>/<id>/new/estimates.json` (a benchmark filtered out
//! of this run shows as "not run" rather than an old figure), and the median of an
//! interleaved pass that takes every contender in turn for 1,000 rounds of ~100 µs, so
//! that other work on the machine slows all of them alike. Targets (issue 2): verify ≤
//! 2.5× and issue ≤ 3× the bare HMAC; jsonwebtoken's decode ≥ 4× our verify.
//!
//! `issue` includes building its `Subject` (three short strings), as a caller does.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use countersign::clock::{Clock as _, SystemClock, UnixTime};
use countersign::jwt::{self, Issuance, Subject, Validation};
use countersign::keys::{KeyRing, SecretKey};
use criterion::Criterion;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

#[path = "../tests/it/ring_provider.rs"]
mod ring_provider;

/// A fixed, benchmark-only key (64 bytes that pass the strength rules).
const KEY: &[u8; 64] = b"bench-only-key:Vq3Lx9TzR1mK7pWc4hYs0dNf8gJb2uXe6aQo5iZt-kEvMnBrY";

/// The claims as jsonwebtoken sees them: the same fields, owned, as a typical
/// `#[derive(Deserialize)]` user would write.
#[derive(Debug, Serialize, Deserialize)]
struct PeerClaims {
    sub: String,
    username: String,
    role: String,
    iat: i64,
    exp: i64,
    jti: String,
}

struct Fixture {
    ring: KeyRing,
    token: String,
    signing_input: Vec<u8>,
    now: UnixTime,
    peer_claims: PeerClaims,
}

fn subject() -> Subject {
    Subject {
        sub: Some("1042".into()),
        username: Some("john_doe".into()),
        role: Some("admin".into()),
        extra: Default::default(),
    }
}

fn fixture() -> Fixture {
    let key = SecretKey::from_bytes(KEY).expect("the bench key passes the strength rules");
    let ring = KeyRing::single(key);
    // Real time, so that jsonwebtoken (which reads the wall clock) accepts the token too.
    let now = SystemClock.now();
    let issuance = Issuance {
        ttl_secs: 3_600,
        ..Issuance::default()
    };
    let issued = jwt::issue(&ring, &issuance, subject(), now).expect("no reserved claims");
    let token = issued.token;
    let dot = token.rfind('.').expect("a compact JWS");
    let signing_input = token.as_bytes()[..dot].to_vec();
    let c = issued.claims;
    let peer_claims = PeerClaims {
        sub: c.sub.clone().unwrap_or_default(),
        username: c.username.clone().unwrap_or_default(),
        role: c.role.clone().unwrap_or_default(),
        iat: c.iat.map_or(0, UnixTime::secs),
        exp: c.exp.secs(),
        jti: c.jti.clone().unwrap_or_default(),
    };
    Fixture {
        ring,
        token,
        signing_input,
        now,
        peer_claims,
    }
}

/// One thing measured: its criterion group and id, how the table names it, and the call.
struct Contender<'a> {
    group: &'static str,
    id: &'static str,
    label: &'static str,
    run: Box<dyn FnMut() + 'a>,
}

fn contenders(f: &Fixture) -> Vec<Contender<'_>> {
    let keyed = Hmac::<Sha256>::new_from_slice(KEY).expect("HMAC takes any key length");
    let ring_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, KEY);
    let validation = Validation::default();
    let peer_decoding = jsonwebtoken::DecodingKey::from_secret(KEY);
    let peer_validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    let issuance = Issuance {
        ttl_secs: 3_600,
        ..Issuance::default()
    };
    let claims = jwt::verify(&f.ring, &validation, &f.token, f.now)
        .expect("the fixture token verifies")
        .claims;
    let peer_encoding = jsonwebtoken::EncodingKey::from_secret(KEY);
    let mut peer_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    peer_header.kid = Some(f.ring.current_kid().as_str().to_owned());
    vec![
        Contender {
            group: "hmac",
            id: "hmac_sha2",
            label: "bare HMAC-SHA256 (hmac+sha2, keyed state cloned)",
            run: Box::new(move || {
                let mut mac = keyed.clone();
                mac.update(black_box(&f.signing_input));
                black_box(mac.finalize().into_bytes());
            }),
        },
        Contender {
            group: "hmac",
            id: "ring",
            label: "ring 0.17 hmac::sign (same input)",
            run: Box::new(move || {
                black_box(ring::hmac::sign(&ring_key, black_box(&f.signing_input)));
            }),
        },
        Contender {
            group: "verify",
            id: "countersign",
            label: "countersign jwt::verify",
            run: Box::new(move || {
                let _ = black_box(jwt::verify(
                    &f.ring,
                    &validation,
                    black_box(&f.token),
                    f.now,
                ));
            }),
        },
        Contender {
            group: "verify",
            id: "jsonwebtoken",
            label: "jsonwebtoken 11 decode (HS256 Validation)",
            run: Box::new(move || {
                let _ = black_box(jsonwebtoken::decode::<PeerClaims>(
                    black_box(&f.token),
                    &peer_decoding,
                    &peer_validation,
                ));
            }),
        },
        Contender {
            group: "issue",
            id: "countersign_issue",
            label: "countersign jwt::issue (claims, fresh jti, token)",
            run: Box::new(move || {
                let _ = black_box(jwt::issue(&f.ring, &issuance, black_box(subject()), f.now));
            }),
        },
        Contender {
            group: "issue",
            id: "countersign_encode",
            label: "countersign jwt::encode (token from ready claims)",
            run: Box::new(move || {
                black_box(jwt::encode(&f.ring, black_box(&claims)));
            }),
        },
        Contender {
            group: "issue",
            id: "jsonwebtoken_encode",
            label: "jsonwebtoken 11 encode",
            run: Box::new(move || {
                let _ = black_box(jsonwebtoken::encode(
                    &peer_header,
                    black_box(&f.peer_claims),
                    &peer_encoding,
                ));
            }),
        },
    ]
}

/// Every contender in turn, many times over, each batch ~100 µs: when other work on the
/// machine slows some batches down, it slows all contenders alike, and the median drops
/// the batches it hit. Returns the median nanoseconds per call.
fn interleaved(contenders: &mut [Contender<'_>], rounds: usize) -> Vec<f64> {
    let batch: Vec<u32> = contenders
        .iter_mut()
        .map(|c| {
            let start = Instant::now();
            for _ in 0..1_000 {
                (c.run)();
            }
            let per_call = start.elapsed().as_secs_f64() / 1_000.0;
            (100e-6 / per_call).ceil().clamp(1.0, 1e6) as u32
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

/// Where criterion writes its estimates, found as criterion finds it.
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

/// Criterion's mean estimate for `group/bench`, in nanoseconds, if it was written by this
/// run (not an older one).
fn estimate(dir: &Path, id: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(id).join("new").join("estimates.json");
    let fresh = std::fs::metadata(&path).ok()?.modified().ok()? >= since;
    if !fresh {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    v.get("mean")?.get("point_estimate")?.as_f64()
}

fn print_table(f: &Fixture, contenders: &[Contender<'_>], medians: &[f64], since: SystemTime) {
    let dir = criterion_dir();
    let criterion: Vec<Option<f64>> = contenders
        .iter()
        .map(|c| estimate(&dir, &format!("{}/{}", c.group, c.id), since))
        .collect();
    let base_c = criterion[0];
    let base_i = medians[0];
    let header = f.token.find('.').unwrap_or(0);
    println!();
    println!(
        "token: {} bytes (header {} + payload {} + signature 43, base64url); signing input {} bytes",
        f.token.len(),
        header,
        f.signing_input.len() - header - 1,
        f.signing_input.len()
    );
    println!(
        "criterion: mean of this run's estimates; interleaved: median of {ROUNDS} rounds taking each in turn"
    );
    println!();
    println!("| measurement | criterion mean | × bare HMAC | interleaved median | × bare HMAC |");
    println!("|---|---:|---:|---:|---:|");
    for ((c, crit), med) in contenders.iter().zip(&criterion).zip(medians) {
        let (crit_ns, crit_x) = match (crit, base_c) {
            (Some(ns), Some(b)) => (format!("{ns:.0} ns"), format!("{:.2}×", ns / b)),
            (Some(ns), None) => (format!("{ns:.0} ns"), "–".into()),
            (None, _) => ("not run".into(), "–".into()),
        };
        println!(
            "| {} | {crit_ns} | {crit_x} | {med:.0} ns | {:.2}× |",
            c.label,
            med / base_i
        );
    }
    let at = |group: &str, id: &str| {
        contenders
            .iter()
            .position(|c| c.group == group && c.id == id)
            .expect("a contender of this bench")
    };
    let (verify, peer, issue) = (
        at("verify", "countersign"),
        at("verify", "jsonwebtoken"),
        at("issue", "countersign_issue"),
    );
    let ratio = |a: usize, b: usize| {
        let c = match (criterion[a], criterion[b]) {
            (Some(x), Some(y)) => format!("{:.2}×", x / y),
            _ => "–".into(),
        };
        format!(
            "{c} (criterion), {:.2}× (interleaved)",
            medians[a] / medians[b]
        )
    };
    println!();
    println!("verify / bare HMAC: {} — target ≤ 2.5×", ratio(verify, 0));
    println!("issue / bare HMAC: {} — target ≤ 3×", ratio(issue, 0));
    println!(
        "jsonwebtoken decode / our verify: {} — target ≥ 4×",
        ratio(peer, verify)
    );
}

/// Rounds of the interleaved pass.
const ROUNDS: usize = 1_000;

fn main() {
    ring_provider::install();
    let since = SystemTime::now();
    let f = fixture();
    // Sanity: every contender accepts the token before anything is timed.
    jwt::verify(&f.ring, &Validation::default(), &f.token, f.now).expect("ours verifies");
    jsonwebtoken::decode::<PeerClaims>(
        &f.token,
        &jsonwebtoken::DecodingKey::from_secret(KEY),
        &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256),
    )
    .expect("jsonwebtoken verifies ours");

    let mut contenders = contenders(&f);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    for group in ["hmac", "verify", "issue"] {
        let mut g = c.benchmark_group(group);
        for contender in contenders.iter_mut().filter(|c| c.group == group) {
            g.bench_function(contender.id, |b| b.iter(|| (contender.run)()));
        }
        g.finish();
    }
    c.final_summary();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and runs each
    // benchmark once as a smoke test: no table then. Nor under `--profile-time`.
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    let profiling = args.iter().any(|a| a == "--profile-time");
    if benching && !profiling {
        let medians = interleaved(&mut contenders, ROUNDS);
        print_table(&f, &contenders, &medians, since);
    }
}
