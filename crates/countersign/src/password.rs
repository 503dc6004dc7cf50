//! Passwords: policy, argon2id hashing, and the bounded pool it runs on.
//!
//! Hashing costs ~19 MiB and tens of milliseconds of CPU. It never runs on the async
//! executor: [`HashingPool`] runs it on blocking threads, at most `workers` at once, with at
//! most `max_queue` callers waiting. Past that it answers [`PasswordError::Busy`] at once
//! (the server's 503 with `Retry-After`), so a login flood cannot starve token checks.
//!
//! A failed check does the same work whether the user exists and whatever format the stored
//! hash is in (imported Flask hashes keep theirs until their first login): the pool pads
//! every failure with dummy checks, one per hash class present. See [`crate::hash_costs`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::hash_costs::Budget;
pub use crate::hash_costs::{CostClass, Survey};
pub use crate::password_hash::{HashParams, PasswordHash};
use crate::store::{StoreError, UserStore};

/// Shortest password accepted, in bytes.
pub const MIN_PASSWORD_BYTES: usize = 8;
/// Longest password accepted, in bytes (bounds hashing input).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// OWASP's argon2id parameters: 19 MiB, 2 passes, 1 lane.
pub const OWASP_PARAMS: HashParams = HashParams {
    m_cost_kib: 19 * 1024,
    t_cost: 2,
    p_cost: 1,
};

/// A password as typed. Redacted in `Debug`, zeroized on drop, compared only through
/// argon2 (whose verification is constant-time). Deserializes from a string, so request
/// bodies can hold one directly; the default is empty.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct Password(String);

impl<'de> serde::Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

impl Password {
    /// Wrap a password without checking the policy (for login: a wrong password is just
    /// wrong, whatever its length, so the answer does not reveal the policy).
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The password's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Whether nothing was typed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Check the policy for a new password: 8 to 1024 bytes, not a common password.
    ///
    /// # Errors
    /// [`PasswordError::TooShort`], [`PasswordError::TooLong`], [`PasswordError::Common`].
    pub fn check_policy(&self) -> Result<(), PasswordError> {
        let len = self.0.len();
        if len < MIN_PASSWORD_BYTES {
            return Err(PasswordError::TooShort);
        }
        if len > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        if is_common(&self.0) {
            return Err(PasswordError::Common);
        }
        Ok(())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// The most common passwords of at least 8 bytes (from public breach-corpus top lists),
/// lowercased. Shorter ones are refused by length already.
const COMMON: &[&str] = &[
    "password",
    "12345678",
    "123456789",
    "1234567890",
    "qwertyuiop",
    "password1",
    "password12",
    "password123",
    "iloveyou",
    "11111111",
    "00000000",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "welcome1",
    "welcome123",
    "abc12345",
    "abcd1234",
    "qwerty123",
    "qwerty12",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "zaq12wsx",
    "letmein1",
    "trustno1",
    "superman",
    "starwars",
    "whatever",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "admin123",
    "administrator",
    "changeme",
    "computer",
    "michelle",
    "jennifer",
    "corvette",
    "mercedes",
    "1qaz2wsx",
    "qwertyui",
    "asdfghjk",
    "asdfghjkl",
    "zxcvbnm1",
    "87654321",
    "12341234",
    "11223344",
    "123123123",
    "987654321",
    "qazwsxedc",
    "q1w2e3r4",
    "q1w2e3r4t5",
    "a1b2c3d4",
    "secret123",
    "master123",
    "dragon123",
    "monkey123",
    "shadow123",
    "liverpool",
    "chelsea1",
    "arsenal1",
    "charlie1",
    "jordan23",
    "blink182",
    "internet",
    "samsung1",
    "google123",
    "linkedin",
    "facebook",
    "babygirl1",
    "loveyou1",
    "lovely123",
    "hello123",
    "freedom1",
    "yankees1",
    "password!",
    "letmein123",
    "welcome!",
    "default1",
    "nopassword",
    "test1234",
    "testtest",
    "guest123",
    "root1234",
    "toor1234",
    "your_password",
    "yourpassword",
    "mypassword",
    "newpassword",
    "countersign",
    "john_doe123",
    "secretkey",
    "your_secret_key",
];

fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return true;
    }
    // One character repeated, or a run of consecutive characters.
    let bytes = lower.as_bytes();
    let all_same = bytes.iter().all(|b| *b == bytes[0]);
    let ascending = bytes.windows(2).all(|w| w[1] == w[0].wrapping_add(1));
    let descending = bytes.windows(2).all(|w| w[0] == w[1].wrapping_add(1));
    all_same || ascending || descending
}

/// Why a password operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// Shorter than [`MIN_PASSWORD_BYTES`].
    #[error("a password needs at least {MIN_PASSWORD_BYTES} bytes")]
    TooShort,
    /// Longer than [`MAX_PASSWORD_BYTES`].
    #[error("a password may have at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// A well-known password.
    #[error("this password is one of the most common passwords; choose another")]
    Common,
    /// The hashing queue is full: try again shortly.
    #[error("password hashing is at capacity; try again shortly")]
    Busy,
    /// The stored hash is not a valid PHC string.
    #[error("the stored password hash is malformed")]
    MalformedHash,
    /// argon2 failed (parameters out of range), or the hashing pool lost its workers.
    #[error("password hashing failed")]
    Hashing(#[source] Arc<dyn std::error::Error + Send + Sync>),
}

impl PasswordError {
    fn hashing(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Hashing(Arc::new(e))
    }
}

/// Equal when of one kind; two hashing failures are equal when they say the same.
impl PartialEq for PasswordError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Hashing(a), Self::Hashing(b)) => a.to_string() == b.to_string(),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl Eq for PasswordError {}

/// What a [`HashingPool`] is doing and has done (for metrics, and for tests that count
/// argon2 runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HashingStats {
    /// Jobs running or waiting ([`HashingPool::depth`]).
    pub depth: usize,
    /// Password checks run ([`HashingPool::verifications`]).
    pub verifications: u64,
    /// Passwords hashed ([`HashingPool::hashes`]).
    pub hashes: u64,
}

/// Why the hashing pool could not answer.
#[derive(Debug, thiserror::Error)]
enum PoolFailure {
    #[error("the hashing workers have stopped")]
    Stopped,
    #[error("a hashing job panicked")]
    Panicked,
}

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the password matched.
    pub matches: bool,
    /// Whether the stored hash used other parameters and should be replaced.
    pub needs_rehash: bool,
}

/// argon2id with fixed parameters.
#[derive(Clone)]
pub struct Hasher {
    argon: Argon2<'static>,
    params: HashParams,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("params", &self.params)
            .finish()
    }
}

impl Hasher {
    /// A hasher with these parameters.
    ///
    /// # Errors
    /// [`PasswordError::Hashing`] when argon2 refuses the parameters.
    pub fn new(params: HashParams) -> Result<Self, PasswordError> {
        let p = Params::new(params.m_cost_kib, params.t_cost, params.p_cost, None)
            .map_err(PasswordError::hashing)?;
        Ok(Self {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, p),
            params,
        })
    }

    /// The parameters it hashes with.
    pub fn params(&self) -> HashParams {
        self.params
    }

    /// Hash a password (blocking; call through [`HashingPool`] from async code).
    ///
    /// # Errors
    /// [`PasswordError::Hashing`] on an argon2 failure.
    pub fn hash(&self, password: &Password) -> Result<PasswordHash, PasswordError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .map(|h| PasswordHash::from_phc(h.to_string()))
            .map_err(PasswordError::hashing)
    }

    /// Check a password against a stored hash (blocking). The comparison inside argon2 is
    /// constant-time. A hash imported from a Flask app ([`crate::flask::hashes`]) is
    /// verified in its own format, within the cost caps, and always needs a rehash.
    ///
    /// This is one check, at the stored hash's own cost: [`HashingPool::verify`] is what
    /// makes failures cost the same whatever the format.
    ///
    /// # Errors
    /// [`PasswordError::MalformedHash`] when the stored string is neither a PHC argon2 hash
    /// nor an accepted imported hash within the caps, or its crate refused it before
    /// doing any work.
    pub fn verify(
        &self,
        password: &Password,
        hash: &PasswordHash,
    ) -> Result<Verdict, PasswordError> {
        if let Some(imported) = crate::flask::hashes::LegacyHash::recognise(hash.as_str()) {
            let imported = imported.map_err(|_| PasswordError::MalformedHash)?;
            let matches = imported
                .verify(password.as_bytes())
                .ok_or(PasswordError::MalformedHash)?;
            return Ok(Verdict {
                matches,
                needs_rehash: true,
            });
        }
        let parsed =
            argon2::PasswordHash::new(hash.as_str()).map_err(|_| PasswordError::MalformedHash)?;
        let matches = self
            .argon
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        let current = Params::try_from(&parsed).ok().map(|p| HashParams {
            m_cost_kib: p.m_cost(),
            t_cost: p.t_cost(),
            p_cost: p.p_cost(),
        });
        let needs_rehash = parsed.algorithm.as_str() != "argon2id" || current != Some(self.params);
        Ok(Verdict {
            matches,
            needs_rehash,
        })
    }
}

/// Runs hashing off the async executor with bounded concurrency and a bounded queue.
///
/// The pool has its own worker threads, at the lowest CPU priority the operating system
/// gives an unprivileged thread (`SCHED_IDLE` on Linux, else nice 19): argon2 gets the CPU
/// the request handlers leave idle, so a flood of password logins slows logins (and, past the queue, answers Busy)
/// instead of slowing token and session checks.
#[derive(Clone, Debug)]
pub struct HashingPool {
    inner: Arc<PoolInner>,
}

type Job = Box<dyn FnOnce(&Hasher) + Send>;

#[derive(Debug)]
struct PoolInner {
    hasher: Hasher,
    /// Jobs for the workers; dropping it (with the last pool handle) stops them.
    jobs: std::sync::mpsc::Sender<Job>,
    /// Jobs running or waiting.
    in_flight: Arc<AtomicUsize>,
    /// Password checks that ran argon2 (the dummy ones included).
    verifications: AtomicU64,
    /// Passwords hashed (new accounts, changed passwords, rehashes).
    hashes: AtomicU64,
    limit: usize,
    /// What every failed check does (the dummy checks that stand in for the classes
    /// its own check was not of): replaced by surveys, and when a check meets a class
    /// not covered yet.
    budget: Arc<ArcSwap<Budget>>,
    /// The classes each check ran, in order (tests: which work a login did).
    #[cfg(test)]
    trace: Arc<std::sync::Mutex<Vec<Vec<CostClass>>>>,
}

impl HashingPool {
    /// A pool running at most `workers` hashes at once with at most `max_queue` waiting.
    ///
    /// Until a survey ([`HashingPool::survey`]) says otherwise, the only hash class it
    /// knows is the hasher's own argon2id.
    ///
    /// # Errors
    /// [`PasswordError::Hashing`] when a worker thread cannot be started.
    pub fn new(hasher: Hasher, workers: usize, max_queue: usize) -> Result<Self, PasswordError> {
        let budget = Budget::new(CostClass::argon2id(hasher.params()), []);
        let workers = workers.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..workers {
            let queue = Arc::clone(&queue);
            let hasher = hasher.clone();
            std::thread::Builder::new()
                .name(format!("countersign-hash-{n}"))
                .spawn(move || worker(&queue, &hasher))
                .map_err(PasswordError::hashing)?;
        }
        Ok(Self {
            inner: Arc::new(PoolInner {
                hasher,
                jobs,
                in_flight: Arc::new(AtomicUsize::new(0)),
                verifications: AtomicU64::new(0),
                hashes: AtomicU64::new(0),
                limit: workers + max_queue,
                budget: Arc::new(ArcSwap::from_pointee(budget)),
                #[cfg(test)]
                trace: Arc::default(),
            }),
        })
    }

    /// How many hashing jobs are running or waiting (for metrics).
    pub fn depth(&self) -> usize {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// How many password checks have run, for unknown users too (for metrics, and for tests
    /// that a failed login costs one check whatever the reason). One check is the user's
    /// own hash and, when it fails, its padding ([`HashingPool::verify`]).
    pub fn verifications(&self) -> u64 {
        self.inner.verifications.load(Ordering::Relaxed)
    }

    /// How many passwords have been hashed on the pool (for tests that a refused request
    /// cost no hash).
    pub fn hashes(&self) -> u64 {
        self.inner.hashes.load(Ordering::Relaxed)
    }

    /// The three counters at once.
    pub fn stats(&self) -> HashingStats {
        HashingStats {
            depth: self.depth(),
            verifications: self.verifications(),
            hashes: self.hashes(),
        }
    }

    /// The hasher (for blocking callers such as the CLI).
    pub fn hasher(&self) -> &Hasher {
        &self.inner.hasher
    }

    /// The hash classes every failed check does one check of, the hasher's own among
    /// them (set by [`HashingPool::survey`]; see [`crate::hash_costs`]).
    pub fn cost_classes(&self) -> Vec<CostClass> {
        self.budget().classes().collect()
    }

    pub(crate) fn budget(&self) -> Arc<Budget> {
        self.inner.budget.load_full()
    }

    pub(crate) fn set_budget(&self, budget: Budget) {
        self.inner.budget.store(Arc::new(budget));
    }

    /// Read the stored hashes other than countersign's own current argon2id, a page of
    /// [`SURVEY_PAGE`](crate::hash_costs::SURVEY_PAGE) at a time, and make the classes found
    /// (within the caps) what every failed check pays for from now on. See the
    /// [module docs](crate::hash_costs).
    ///
    /// # Errors
    /// When the store fails; the classes then stay as they were.
    pub async fn survey(&self, users: &dyn UserStore) -> Result<Survey, StoreError> {
        let native = self.budget().native();
        let (survey, budget) =
            crate::hash_costs::survey(users, native, self.hasher().params()).await?;
        self.set_budget(budget);
        Ok(survey)
    }

    /// The classes each check ran so far, in order, and forget them.
    #[cfg(test)]
    pub(crate) fn take_trace(&self) -> Vec<Vec<CostClass>> {
        std::mem::take(&mut *self.inner.trace.lock().unwrap())
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Hasher) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let inner = &self.inner;
        if inner.in_flight.fetch_add(1, Ordering::AcqRel) >= inner.limit {
            inner.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(PasswordError::Busy);
        }
        // The slot is the job's, not the caller's: it is freed when the job has run (or
        // was skipped, or never queued), so a cancelled request cannot free its slot while
        // its argon2 work still waits in the queue.
        let slot = SlotGuard(Arc::clone(&inner.in_flight));
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |hasher| {
            // The caller went away (request cancelled): no one wants the answer, skip the
            // work.
            if done.is_closed() {
                return;
            }
            let value = job(hasher);
            // Free the slot before answering, so a caller that has its answer never sees
            // its own job still counted.
            drop(slot);
            let _ = done.send(value);
        });
        inner
            .jobs
            .send(job)
            .map_err(|_| PasswordError::hashing(PoolFailure::Stopped))?;
        result
            .await
            .map_err(|_| PasswordError::hashing(PoolFailure::Panicked))
    }

    /// Hash a password on the pool.
    ///
    /// # Errors
    /// [`PasswordError::Busy`] when the queue is full, else as [`Hasher::hash`].
    pub async fn hash(&self, password: Password) -> Result<PasswordHash, PasswordError> {
        let hash = self.run(move |h| h.hash(&password)).await?;
        self.inner.hashes.fetch_add(1, Ordering::Relaxed);
        hash
    }

    /// Check a password on the pool, with the equal-time rule ([`crate::hash_costs`]):
    /// the stored hash is checked, and if the password does not match, one dummy check of
    /// each other hash class present follows, so that every failure does the same work.
    /// `hash: None` (no such user, or one that must be refused whatever the password)
    /// runs only the dummy checks and reports no match. A match stops after its own check.
    ///
    /// A hash of a class not covered yet (imported since the last survey) adds its class
    /// for every check from then on.
    ///
    /// # Errors
    /// [`PasswordError::Busy`] when the queue is full, else as [`Hasher::verify`] (a stored
    /// hash that cannot be checked is padded like an unknown user first).
    pub async fn verify(
        &self,
        password: Password,
        hash: Option<PasswordHash>,
    ) -> Result<Verdict, PasswordError> {
        let budgets = Arc::clone(&self.inner.budget);
        #[cfg(test)]
        let trace = Arc::clone(&self.inner.trace);
        let checked = self
            .run(move |h| {
                let own = hash
                    .as_ref()
                    .map(|hash| (h.verify(&password, hash), CostClass::of(hash)));
                // The class whose work the user's own check did; none when there was no
                // check, or the stored hash could not be checked.
                let ran = match &own {
                    Some((Ok(_), class)) => *class,
                    _ => None,
                };
                let matched = matches!(&own, Some((Ok(v), _)) if v.matches);
                let mut budget = budgets.load_full();
                if let Some(class) = ran
                    && budget.lacks(class)
                {
                    budgets.rcu(|b| {
                        if b.lacks(class) {
                            Arc::new(b.with(class))
                        } else {
                            Arc::clone(b)
                        }
                    });
                    budget = budgets.load_full();
                    tracing::info!(
                        class = %class,
                        "a password hash class the last survey did not see: every failed \
                         check now does one check of it too"
                    );
                }
                let pads = if matched {
                    Vec::new()
                } else {
                    budget.pads(ran)
                };
                for (_, dummy) in &pads {
                    // The answer is known (no match); only the work matters.
                    let _ = h.verify(&password, dummy);
                }
                #[cfg(test)]
                trace.lock().unwrap().push(
                    ran.into_iter()
                        .chain(pads.iter().map(|(c, _)| *c))
                        .collect(),
                );
                own.map(|(verdict, _)| verdict)
            })
            .await?;
        self.inner.verifications.fetch_add(1, Ordering::Relaxed);
        match checked {
            Some(verdict) => verdict,
            None => Ok(Verdict {
                matches: false,
                needs_rehash: false,
            }),
        }
    }
}

/// Put the calling thread at the lowest priority the OS allows an unprivileged thread:
/// on Linux `SCHED_IDLE` (runs only when nothing else wants the core, weight 3 against
/// nice 19's 15), elsewhere, or where that is refused, the lowest nice value. Best effort:
/// where the OS refuses both, the worker runs at normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        if set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        )
        .is_ok()
        {
            return;
        }
    }
    let _ = thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min);
}

/// A hashing worker: lowest priority, then jobs until the pool is dropped.
fn worker(queue: &std::sync::Mutex<std::sync::mpsc::Receiver<Job>>, hasher: &Hasher) {
    lower_priority();
    loop {
        // The lock is held only to take one job, never while hashing; a poisoned lock
        // still holds a usable receiver.
        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(job) = next else { return };
        // A panicking job drops its result sender (the caller sees an error); the worker
        // lives on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(hasher)));
    }
}

struct SlotGuard(Arc<AtomicUsize>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters for tests; production uses [`OWASP_PARAMS`].
    const FAST: HashParams = HashParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    };

    #[test]
    fn refused_parameters_keep_argon2s_error_as_the_source() {
        let e = Hasher::new(HashParams {
            m_cost_kib: 1,
            ..FAST
        })
        .unwrap_err();
        assert!(matches!(e, PasswordError::Hashing(_)), "{e:?}");
        assert_eq!(e.to_string(), "password hashing failed");
        let source = std::error::Error::source(&e).unwrap();
        assert_eq!(
            source.to_string(),
            argon2::Error::MemoryTooLittle.to_string()
        );
    }

    #[test]
    fn policy() {
        assert_eq!(
            Password::new("short").check_policy(),
            Err(PasswordError::TooShort)
        );
        assert_eq!(
            Password::new("x".repeat(1025)).check_policy(),
            Err(PasswordError::TooLong)
        );
        assert_eq!(
            Password::new("Password123").check_policy(),
            Err(PasswordError::Common)
        );
        assert_eq!(
            Password::new("aaaaaaaaaa").check_policy(),
            Err(PasswordError::Common)
        );
        assert_eq!(
            Password::new("abcdefghi").check_policy(),
            Err(PasswordError::Common)
        );
        assert_eq!(
            Password::new("correct horse battery").check_policy(),
            Ok(())
        );
        assert!(!format!("{:?}", Password::new("hunter22hunter")).contains("hunter"));
    }

    #[test]
    fn deserializes_from_a_string_and_stays_redacted() {
        #[derive(serde::Deserialize, Debug)]
        struct Body {
            #[serde(default)]
            password: Password,
        }
        let body: Body = serde_json::from_str(r#"{"password":"hunter22hunter"}"#).unwrap();
        assert_eq!(body.password.as_bytes(), b"hunter22hunter");
        assert!(!format!("{body:?}").contains("hunter"));
        let empty: Body = serde_json::from_str("{}").unwrap();
        assert!(empty.password.is_empty());
        assert!(serde_json::from_str::<Body>(r#"{"password":7}"#).is_err());
    }

    #[test]
    fn hash_verify_rehash() {
        let h = Hasher::new(FAST).unwrap();
        let pw = Password::new("correct horse battery");
        let phc = h.hash(&pw).unwrap();
        assert!(phc.as_str().starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        let v = h.verify(&pw, &phc).unwrap();
        assert_eq!(
            v,
            Verdict {
                matches: true,
                needs_rehash: false
            }
        );
        let wrong = h
            .verify(&Password::new("correct horse batterY"), &phc)
            .unwrap();
        assert!(!wrong.matches);
        let stronger = Hasher::new(HashParams { t_cost: 2, ..FAST }).unwrap();
        assert!(stronger.verify(&pw, &phc).unwrap().needs_rehash);
        assert_eq!(
            h.verify(&pw, &PasswordHash::from_phc("nonsense")),
            Err(PasswordError::MalformedHash)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pool_refuses_when_full_and_dummy_never_matches() {
        let pool = HashingPool::new(Hasher::new(FAST).unwrap(), 1, 0).unwrap();
        let v = pool
            .verify(Password::new("anything at all"), None)
            .await
            .unwrap();
        assert!(!v.matches);
        // Occupy the only slot with a slow job, then a second caller is refused at once.
        let slow = HashingPool::new(
            Hasher::new(HashParams {
                m_cost_kib: 8 * 1024,
                t_cost: 8,
                p_cost: 1,
            })
            .unwrap(),
            1,
            0,
        )
        .unwrap();
        let busy = slow.clone();
        let first = tokio::spawn(async move { busy.hash(Password::new("long enough pw")).await });
        while slow.depth() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            slow.hash(Password::new("long enough pw")).await,
            Err(PasswordError::Busy)
        );
        assert!(first.await.unwrap().is_ok());
        assert_eq!(slow.depth(), 0);
    }

    /// A request cancelled while its job waits in the queue keeps its slot until a worker
    /// reaches the job, and the worker then skips it: reconnecting clients cannot queue
    /// argon2 work past the pool's limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_request_holds_its_slot_and_its_job_is_skipped() {
        use std::sync::atomic::AtomicBool;
        use std::time::Duration;

        async fn until(what: impl Fn() -> bool) {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while !what() {
                assert!(std::time::Instant::now() < deadline, "timed out");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }

        let pool = HashingPool::new(Hasher::new(FAST).unwrap(), 1, 4).unwrap();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(move |_| wait.recv().is_ok()).await }
        });
        until(|| pool.depth() == 1).await;
        let ran = Arc::new(AtomicBool::new(false));
        let queued = tokio::spawn({
            let (pool, ran) = (pool.clone(), Arc::clone(&ran));
            async move { pool.run(move |_| ran.store(true, Ordering::SeqCst)).await }
        });
        until(|| pool.depth() == 2).await;
        queued.abort();
        assert!(queued.await.unwrap_err().is_cancelled());
        assert_eq!(pool.depth(), 2, "the queued job still holds its slot");
        release.send(()).unwrap();
        assert!(busy.await.unwrap().unwrap());
        until(|| pool.depth() == 0).await;
        assert!(!ran.load(Ordering::SeqCst), "the cancelled job was run");
    }

    /// The workers run at the lowest priority, so hashing takes only CPU the request
    /// handlers leave idle.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_run_at_the_lowest_priority() {
        let pool = HashingPool::new(Hasher::new(FAST).unwrap(), 2, 4).unwrap();
        let (nice, policy) = pool
            .run(|_| {
                let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
                // Fields after the command name (which ends with ')'), from 0: nice is the
                // 16th, the scheduling policy the 38th (proc(5): fields 19 and 41).
                let after = &stat[stat.rfind(')').unwrap() + 2..];
                let field = |n: usize| after.split(' ').nth(n).unwrap().parse::<i32>().unwrap();
                (field(16), field(38))
            })
            .await
            .unwrap();
        // SCHED_IDLE (5), or, where the kernel refuses it, SCHED_OTHER at nice 19.
        assert!(
            policy == 5 || (policy == 0 && nice == 19),
            "policy {policy}, nice {nice}"
        );
        let name = pool
            .run(|_| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("countersign-hash-"));
    }
}
