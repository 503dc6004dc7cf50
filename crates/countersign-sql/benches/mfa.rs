//! What an authenticator app adds to a login, measured against the password hash in the
//! same run, on the server's default store (SQLite in a data directory, WAL,
//! `synchronous=NORMAL`) and on the in-process one.
//!
//! `cargo bench -p countersign-sql --bench mfa` makes a service as the server does (argon2id
//! with OWASP's parameters), with one user who has an authenticator app enrolled, and times
//! the parts of a login the app adds:
//!
//! - `argon2id`: one password check with OWASP's parameters, the cost every login pays
//!   and the baseline of the ratios;
//! - `no factor`: after the password, the question every login asks, for a user without
//!   a second factor (the account's factors read: none);
//! - `challenge`: the same for the enrolled user, who gets the sealed `mfa_token`
//!   (ChaCha20-Poly1305) instead of a session;
//! - `second step`: `complete_mfa` with the current code: the token opened and checked
//!   unused, the user read, the sealed secret opened, the code checked, its step stored so
//!   it is not accepted twice, the token marked used.
//!
//! Each iteration of `second step` moves the service's clock on by one 30-second step and
//! makes a fresh challenge outside the timed part, so every code is new and every token
//! unused, as in a real login. Criterion prints its own estimates; then an interleaved pass
//! (every measurement in turn, 300 rounds, so that other work on the machine slows all
//! alike) prints medians, and `added` = challenge − no factor + second step: the server
//! time an authenticator app adds to a login beyond what a login without one spends
//! (issue: < 1 ms), and its ratio to the password hash.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use countersign::auth::Auth;
use countersign::clock::{Clock as _, ManualClock, UnixTime};
use countersign::keys::{KeyRing, SecretKey};
use countersign::memory::MemoryStore;
use countersign::mfa::Amr;
use countersign::mfa::totp::TotpSecret;
use countersign::password::{Hasher, OWASP_PARAMS, Password, PasswordHash};
use countersign::user::{Role, User};
use countersign_sql::{PoolOptions, SqlStore};
use criterion::Criterion;
use tokio::runtime::Runtime;

const PW: &str = "correct horse battery staple";
const ADDRESS: &str = "192.0.2.1";
const ROUNDS: usize = 300;

/// A service with one enrolled user, on one store.
struct Case {
    name: &'static str,
    auth: Arc<Auth>,
    clock: ManualClock,
    user: User,
    /// A user without a second factor.
    plain: User,
    secret: TotpSecret,
}

impl Case {
    async fn new<S>(name: &'static str, store: Arc<S>) -> Self
    where
        S: countersign::store::UserStore + countersign::store::EphemeralStore + 'static,
    {
        let clock = ManualClock::new(UnixTime(1_800_000_000));
        let (key, _) = SecretKey::generate(32).expect("a key");
        let mut config = countersign::auth::AuthConfig::default();
        config.throttle.per_account = u64::MAX / 2;
        config.throttle.per_address = u64::MAX / 2;
        let auth = Auth::builder(KeyRing::single(key))
            .config(config)
            .store(store)
            .clock(Arc::new(clock.clone()))
            .hash_params(OWASP_PARAMS)
            .build()
            .expect("the service");
        let user = auth
            .create_user("alice", Password::new(PW), Role::user())
            .await
            .expect("alice");
        let plain = auth
            .create_user("bob", Password::new(PW), Role::user())
            .await
            .expect("bob");
        let enrolment = auth.begin_totp(&user, "bench").await.expect("an enrolment");
        let secret = TotpSecret::from_base32(&enrolment.secret).expect("a base32 secret");
        let mut case = Self {
            name,
            auth,
            clock,
            user,
            plain,
            secret,
        };
        let code = case.next_code();
        case.auth
            .confirm_totp(&case.user, &code, ADDRESS)
            .await
            .expect("the enrolment confirmed");
        case
    }

    /// The clock one step on, and the code of that step.
    fn next_code(&mut self) -> String {
        self.clock.advance(30);
        let now = u64::try_from(self.clock.now().secs()).expect("a positive time");
        self.secret.code_at(6, now).expect("a code")
    }

    async fn challenge(&self) -> String {
        let c = self
            .auth
            .mfa_challenge(&self.user, Amr::PWD)
            .await
            .expect("the store")
            .expect("alice has a second factor");
        c.token.to_string()
    }

    async fn no_factor(&self) {
        let none = self
            .auth
            .mfa_challenge(&self.plain, Amr::PWD)
            .await
            .expect("the store");
        assert!(none.is_none(), "bob has no second factor");
    }

    /// One second step, timed alone.
    async fn second_step(&mut self) -> Duration {
        let code = self.next_code();
        let token = self.challenge().await;
        let start = Instant::now();
        let done = self.auth.complete_mfa(&token, &code, ADDRESS).await;
        let elapsed = start.elapsed();
        let (user, authn) = done.expect("the code is accepted");
        assert!(user.id == self.user.id && authn.amr.is_mfa());
        elapsed
    }
}

fn median(mut xs: Vec<Duration>) -> f64 {
    xs.sort();
    xs[xs.len() / 2].as_secs_f64()
}

fn main() {
    let rt = Runtime::new().expect("a runtime");
    let dir = tempfile::tempdir().expect("a data directory");
    let mut cases = rt.block_on(async {
        let sqlite = SqlStore::open_sqlite_in(dir.path().join("data"), &PoolOptions::default())
            .await
            .expect("SQLite opens");
        sqlite.migrate().await.expect("the schema");
        vec![
            Case::new("sqlite", Arc::new(sqlite)).await,
            Case::new("memory", Arc::new(MemoryStore::new())).await,
        ]
    });
    let hasher = Hasher::new(OWASP_PARAMS).expect("a hasher");
    let hash: PasswordHash = hasher.hash(&Password::new(PW)).expect("a hash");
    let check = || {
        let v = hasher.verify(&Password::new(PW), &hash).expect("a check");
        assert!(v.matches);
    };

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    {
        let mut g = c.benchmark_group("password");
        g.sample_size(10);
        g.bench_function("argon2id", |b| b.iter(check));
        g.finish();
    }
    for case in &mut cases {
        let mut g = c.benchmark_group(format!("mfa/{}", case.name));
        g.bench_function("no factor", |b| b.iter(|| rt.block_on(case.no_factor())));
        g.bench_function("challenge", |b| {
            b.iter(|| black_box(rt.block_on(case.challenge())));
        });
        g.bench_function("second step", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| rt.block_on(case.second_step())).sum());
        });
        g.finish();
    }
    c.final_summary();
    // `cargo bench` passes `--bench`; `cargo test --benches` runs each once: no table then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }

    let mut base = Vec::with_capacity(ROUNDS);
    let mut times = vec![[Vec::with_capacity(ROUNDS), Vec::new(), Vec::new()]; cases.len()];
    for _ in 0..ROUNDS {
        let start = Instant::now();
        check();
        base.push(start.elapsed());
        for (case, [none, challenge, second]) in cases.iter_mut().zip(&mut times) {
            let start = Instant::now();
            rt.block_on(case.no_factor());
            none.push(start.elapsed());
            let start = Instant::now();
            black_box(rt.block_on(case.challenge()));
            challenge.push(start.elapsed());
            second.push(rt.block_on(case.second_step()));
        }
    }
    let base = median(base);
    println!();
    println!(
        "median of {ROUNDS} interleaved rounds; ratio to one argon2id check ({:.1} ms)",
        base * 1e3
    );
    println!("| store | no factor | challenge | second step | added | added / argon2id |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (case, [none, challenge, second]) in cases.iter().zip(times) {
        let (none, challenge, second) = (median(none), median(challenge), median(second));
        let added = challenge - none + second;
        println!(
            "| {} | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {:.3}× |",
            case.name,
            none * 1e6,
            challenge * 1e6,
            second * 1e6,
            added * 1e6,
            added / base
        );
    }
}
