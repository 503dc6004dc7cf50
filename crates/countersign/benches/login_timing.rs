//! Login latency by outcome and stored hash format: the equal-time rule
//! ([`countersign::hash_costs`]) in figures.
//!
//! `cargo bench -p countersign --bench login_timing [-- ROUNDS]` makes a service the way
//! the server does (argon2id with OWASP's parameters, one hashing worker, an in-process
//! store, no throttling in the way), with two users: `alice`, with countersign's own
//! argon2id hash, and `bob`, imported from a Flask app with a bcrypt hash at cost 12
//! (Flask-Bcrypt's default). Then, in rounds, every case once in turn, so that other work
//! on the machine slows all alike:
//!
//! - `baseline`: one argon2id check on this thread, without the service (the floor);
//! - `argon2 ok`: `Auth::login` of alice with her password;
//! - `argon2 wrong`, `bcrypt wrong`: each user with a wrong password;
//! - `unknown`: a name that does not exist.
//!
//! It prints each case's median and its ratio to the baseline's median. Before the rule,
//! `bcrypt wrong` stood out from `unknown`; with it, every failure costs the same. The
//! source builds against the engine before the rule too (`bench/login_timing.sh` runs both).

use std::time::{Duration, Instant};

use countersign::auth::{Auth, AuthConfig};
use countersign::keys::{KeyRing, SecretKey};
use countersign::memory::MemoryStore;
use countersign::password::{Hasher, OWASP_PARAMS, Password, PasswordHash};
use countersign::store::UserStore;
use countersign::user::{NewUser, Role, Username};

const PW: &str = "correct horse battery staple";
const CASES: [&str; 5] = [
    "baseline",
    "argon2 ok",
    "argon2 wrong",
    "bcrypt wrong",
    "unknown",
];

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; the first number, if any, is the rounds.
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(15);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run(rounds));
}

async fn run(rounds: usize) {
    let store = std::sync::Arc::new(MemoryStore::new());
    let (key, _) = SecretKey::generate(32).expect("a key");
    let mut config = AuthConfig::default();
    config.throttle.per_account = u64::MAX / 2;
    config.throttle.per_address = u64::MAX / 2;
    let auth = Auth::builder(KeyRing::single(key))
        .config(config)
        .store(std::sync::Arc::clone(&store))
        .hash_params(OWASP_PARAMS)
        .hashing_workers(1)
        .build()
        .expect("the service");
    auth.create_user("alice", Password::new(PW), Role::user())
        .await
        .expect("alice");
    let bcrypt = bcrypt::hash(PW, 12).expect("a bcrypt hash");
    store
        .create_user(NewUser {
            username: Username::parse("bob").expect("a name"),
            role: Role::user(),
            password_hash: PasswordHash::from_phc(bcrypt),
            created_at: countersign::clock::UnixTime(1_800_000_000),
        })
        .await
        .expect("bob");
    let hasher = Hasher::new(OWASP_PARAMS).expect("a hasher");
    let alices = hasher.hash(&Password::new(PW)).expect("a hash");

    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); CASES.len()];
    // One warm-up round (with the rule, bob's first check also makes bcrypt a class, as
    // the server's survey does at its start), then the measured ones.
    for round in 0..=rounds {
        for (i, case) in CASES.iter().enumerate() {
            let address = format!("10.0.{}.{}", round % 250, i);
            let start = Instant::now();
            let outcome = match *case {
                "baseline" => {
                    let v = hasher.verify(&Password::new(PW), &alices).expect("a check");
                    assert!(v.matches);
                    Ok(())
                }
                "argon2 ok" => auth
                    .login("alice", Password::new(PW), &address)
                    .await
                    .map(|_| ()),
                "argon2 wrong" => auth
                    .login("alice", Password::new("not the password"), &address)
                    .await
                    .map(|_| ()),
                "bcrypt wrong" => auth
                    .login("bob", Password::new("not the password"), &address)
                    .await
                    .map(|_| ()),
                _ => auth
                    .login("nobody", Password::new(PW), &address)
                    .await
                    .map(|_| ()),
            };
            let elapsed = start.elapsed();
            assert_eq!(
                outcome.is_ok(),
                matches!(*case, "baseline" | "argon2 ok"),
                "{case}"
            );
            if round > 0 {
                times[i].push(elapsed);
            }
        }
    }
    let base = median(times[0].clone()).as_secs_f64();
    println!("login latency, median of {rounds} interleaved rounds (1 hashing worker):");
    for (case, t) in CASES.iter().zip(times) {
        let m = median(t).as_secs_f64();
        println!("{case:<14} {:>8.1} ms  {:>5.2}x", m * 1e3, m / base);
    }
}
