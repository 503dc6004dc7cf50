//! Passwords and accounts: login, registration, account changes.

use std::time::Duration;

use super::{AccountError, Auth, LoginError, ThrottlePolicy};
use crate::attempts::{AttemptLimit, Reservation, Settlement};
use crate::b64;
use crate::clock::UnixTime;
use crate::invalidation::Invalidation;
use crate::password::{Password, PasswordError};
use crate::store::StoreError;
use crate::user::{NewUser, Role, User, UserId, Username};

/// How long a login waits, in all, for a place held by attempts in flight on its account
/// or address before it is answered as throttled.
const FULL_WAIT: Duration = Duration::from_secs(5);

/// The pause between two reservations while every place is in flight.
const FULL_PAUSE: Duration = Duration::from_millis(20);

/// What an attempt under the login throttle guesses, which picks the account's counter.
/// A code has its own, so that the right password (which clears the password counter)
/// never gives someone who knows it a fresh budget of guesses at the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Guess {
    /// A password, or a passkey (counted with passwords: it cannot be guessed).
    Password,
    /// A one-time code: TOTP or a recovery code.
    Code,
}

impl Guess {
    const fn account_kind(self) -> &'static str {
        match self {
            Self::Password => "acct",
            Self::Code => "code",
        }
    }
}

/// The counters one attempt counts on: its account's (of its [`Guess`]) and its address's.
struct AttemptKeys {
    account: String,
    address: String,
}

impl AttemptKeys {
    fn new(guess: Guess, username: &str, address: &str) -> Self {
        Self {
            account: throttle_key(guess.account_kind(), username),
            address: throttle_key("addr", address),
        }
    }

    /// The account's limit and the address's, under `policy`.
    fn limits(&self, policy: &ThrottlePolicy) -> [AttemptLimit<'_>; 2] {
        [
            AttemptLimit {
                key: &self.account,
                max: policy.per_account,
            },
            AttemptLimit {
                key: &self.address,
                max: policy.per_address,
            },
        ]
    }
}

/// A throttle counter's key: the kind and a hash of the value, so a submitted username of
/// any length or content makes a short, fixed-shape key in every store.
fn throttle_key(kind: &str, value: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(value.as_bytes());
    let mut key = String::with_capacity(kind.len() + 23);
    key.push_str(kind);
    key.push(':');
    b64::encode_into(&digest[..16], &mut key);
    key
}

impl Auth {
    /// Check a username and password, throttled per account and per client address.
    /// Unknown users cost one dummy verify, so the answer and its timing are the same as
    /// for a wrong password.
    ///
    /// The attempt is reserved in the store, under both limits at once, before anything
    /// is read or hashed ([`crate::attempts`]): one atomic step per attempt, the same on
    /// every instance sharing the store, so no more guesses are evaluated per window than
    /// the limit. Past it, even the right password is refused until the window ends. While
    /// every remaining place is taken by attempts in flight, this waits (up to 5 s) for
    /// them to settle. Unknown names are counted like known ones; a success clears the
    /// account's counter and does not count against the address.
    ///
    /// # Errors
    /// [`LoginError`].
    pub async fn login(
        &self,
        username: &str,
        password: Password,
        address: &str,
    ) -> Result<User, LoginError> {
        self.throttled(
            Guess::Password,
            username,
            address,
            self.check_password(username, password),
        )
        .await?
        .ok_or(LoginError::Invalid)
    }

    /// Run `check` as one attempt under the login throttle of `username` and `address`:
    /// reserved before it runs, settled by its outcome (`Some`: a success, which clears
    /// the account's counter of that [`Guess`]; `None`: a failure, counted on both). The
    /// password login and every second-factor attempt go through here, so a guess at a
    /// code costs the same budget as a guess at a password; codes are counted apart from
    /// passwords on the account, and together on the address.
    /// Count an attempt whose outcome was decided before it is counted (a TOTP code:
    /// checked in microseconds, its step used up if it matched), in one store operation
    /// ([`ThrottleStore::record_attempt`](crate::store::ThrottleStore::record_attempt))
    /// under the same limits and rules as [`Self::throttled`]. Only an admitted outcome
    /// counts: past the limit the answer is throttled whatever `outcome` says, so no more
    /// guesses per window are honoured than [`Self::throttled`] evaluates, and a right
    /// code refused here has been used up for nothing.
    pub(super) async fn throttled_decided<T>(
        &self,
        guess: Guess,
        username: &str,
        address: &str,
        outcome: Option<T>,
    ) -> Result<Option<T>, LoginError> {
        let window = self.config.throttle.attempt_window();
        let keys = AttemptKeys::new(guess, username, address);
        let [account, address] = keys.limits(&self.config.throttle);
        let settlements = if outcome.is_some() {
            [
                (account, Settlement::Cleared),
                (address, Settlement::Released),
            ]
        } else {
            [(account, Settlement::Failed), (address, Settlement::Failed)]
        };
        self.admitted(|now| self.store.record_attempt(&settlements, window, now))
            .await?;
        Ok(outcome)
    }

    /// Ask the store (`ask`, at the time it is given) until it admits the attempt or
    /// refuses it; a full attempt table is asked again every [`FULL_PAUSE`] for up to
    /// [`FULL_WAIT`].
    async fn admitted<F>(&self, ask: impl Fn(UnixTime) -> F) -> Result<(), LoginError>
    where
        F: Future<Output = Result<Reservation, StoreError>>,
    {
        let waiting_since = std::time::Instant::now();
        loop {
            let now = self.now();
            match ask(now).await? {
                Reservation::Admitted => return Ok(()),
                Reservation::Refused { until } => {
                    return Err(LoginError::Throttled {
                        retry_after: (until.secs() - now.secs()).max(1),
                    });
                }
                Reservation::Full if waiting_since.elapsed() >= FULL_WAIT => {
                    return Err(LoginError::Throttled { retry_after: 1 });
                }
                // Not `_`: a kind added to the store's answers later must be decided here.
                Reservation::Full => tokio::time::sleep(FULL_PAUSE).await,
            }
        }
    }

    pub(super) async fn throttled<T>(
        &self,
        guess: Guess,
        username: &str,
        address: &str,
        check: impl Future<Output = Result<Option<T>, LoginError>>,
    ) -> Result<Option<T>, LoginError> {
        let window = self.config.throttle.attempt_window();
        let keys = AttemptKeys::new(guess, username, address);
        let limits = keys.limits(&self.config.throttle);
        let [account, address] = limits;
        self.admitted(|now| self.store.reserve_attempt(&limits, window, now))
            .await?;
        let outcome = check.await;
        let (on_account, on_address) = match &outcome {
            Ok(Some(_)) => (Settlement::Cleared, Settlement::Released),
            Ok(None) => (Settlement::Failed, Settlement::Failed),
            // Nothing was evaluated (the pool is full, a store failed): give the places
            // back. If this fails too, the places free themselves when the lease ends.
            Err(_) => (Settlement::Released, Settlement::Released),
        };
        let settled = self
            .store
            .settle_attempt(
                &[(account, on_account), (address, on_address)],
                window,
                self.now(),
            )
            .await;
        match outcome {
            Ok(verdict) => {
                settled?;
                Ok(verdict)
            }
            Err(e) => Err(e),
        }
    }

    /// The verification behind [`Auth::login`], once the attempt is admitted: the user if
    /// the password matches, `None` for a wrong password or an unknown name. A matching
    /// password hashed with outdated parameters is rehashed.
    async fn check_password(
        &self,
        username: &str,
        password: Password,
    ) -> Result<Option<User>, LoginError> {
        let user = match Username::parse(username) {
            Ok(name) => self.users.user_by_name(name.as_str()).await?,
            Err(_) => None,
        };
        // A disabled account is refused whatever the password, so its hash is not checked:
        // the pool does what it does for an unknown name, the work of every failure
        // (a right password stops early, which would tell a guesser it was right).
        let hash = user
            .as_ref()
            .filter(|u| !u.disabled)
            .map(|u| u.password_hash.clone());
        let verdict = match self.pool.verify(password.clone(), hash).await {
            Ok(v) => v,
            Err(PasswordError::Busy) => return Err(LoginError::Busy),
            Err(_) => return Ok(None),
        };
        match user {
            // A disabled account's right password is answered like a wrong one (and counted
            // like one): nothing tells a guesser that it was right.
            Some(user) if verdict.matches && !user.disabled => {
                if verdict.needs_rehash
                    && let Ok(hash) = self.pool.hash(password).await
                {
                    // Only while the stored hash is still the one just verified: a password
                    // changed meanwhile is never overwritten by the old one's rehash.
                    self.users
                        .replace_password_hash(user.id, &user.password_hash, &hash)
                        .await?;
                }
                Ok(Some(user))
            }
            _ => Ok(None),
        }
    }

    /// Create an account (registration, `countersign user add`).
    ///
    /// # Errors
    /// [`AccountError`].
    pub async fn create_user(
        &self,
        username: &str,
        password: Password,
        role: Role,
    ) -> Result<User, AccountError> {
        let username = Username::parse(username)?;
        password.check_policy()?;
        let password_hash = self.pool.hash(password).await?;
        Ok(self
            .users
            .create_user(NewUser {
                username,
                role,
                password_hash,
                created_at: self.now(),
            })
            .await?)
    }

    /// Create an account for a visitor (open registration), throttled per client address.
    ///
    /// Every attempt counts, whatever its outcome, and the count is taken (atomically)
    /// before anything else: an attempt over
    /// [`ThrottlePolicy::registrations_per_address`](super::ThrottlePolicy::registrations_per_address)
    /// is refused before any hashing. Each
    /// attempt otherwise costs an argon2id hash, and "that username is taken" is an answer
    /// a registration form cannot avoid giving, so the throttle is what bounds both the
    /// CPU one address can spend and how fast it can probe for usernames
    /// (`docs/decisions.md`). Unlike failed logins, no lock is needed: the count is taken
    /// before the work, so a parallel burst is bounded by the policy too.
    ///
    /// # Errors
    /// [`AccountError::Throttled`], else as [`Auth::create_user`].
    pub async fn register(
        &self,
        username: &str,
        password: Password,
        role: Role,
        address: &str,
    ) -> Result<User, AccountError> {
        let now = self.now();
        let policy = self.config.throttle;
        let key = throttle_key("reg", address);
        let (attempts, end) = self.store.hit(&key, policy.window_secs, now).await?;
        if attempts > policy.registrations_per_address {
            return Err(AccountError::Throttled {
                retry_after: (end.secs() - now.secs()).max(1),
            });
        }
        self.create_user(username, password, role).await
    }

    /// Every account, by id.
    ///
    /// # Errors
    /// When the user store fails.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        self.users.list_users().await
    }

    /// The account called `username`, if any.
    ///
    /// # Errors
    /// When the user store fails.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>, StoreError> {
        self.users.user_by_name(username).await
    }

    /// Change a password and end everything the user was signed in with.
    ///
    /// # Errors
    /// [`AccountError`].
    pub async fn change_password(
        &self,
        user: UserId,
        password: Password,
    ) -> Result<(), AccountError> {
        password.check_policy()?;
        let hash = self.pool.hash(password).await?;
        if !self.users.set_password_hash(user, &hash).await? {
            return Err(AccountError::NoSuchUser);
        }
        self.logout_everywhere(user).await?;
        Ok(())
    }

    /// Change a role; a privilege change ends the user's sessions and tokens.
    ///
    /// # Errors
    /// [`AccountError`].
    pub async fn set_role(&self, user: UserId, role: &Role) -> Result<(), AccountError> {
        if !self.users.set_role(user, role).await? {
            return Err(AccountError::NoSuchUser);
        }
        self.logout_everywhere(user).await?;
        Ok(())
    }

    /// Remove a user and end everything they were signed in with.
    ///
    /// # Errors
    /// [`AccountError`].
    pub async fn remove_user(&self, user: UserId) -> Result<(), AccountError> {
        if !self.users.delete_user(user).await? {
            return Err(AccountError::NoSuchUser);
        }
        self.logout_everywhere(user).await?;
        Ok(())
    }

    /// Disable an account: it can no longer log in (its right password is answered like a
    /// wrong one) or refresh, and every session and token it holds ends, on every instance
    /// sharing the stores (see the module docs on propagation). Disabling a disabled
    /// account ends its sessions again and is otherwise a no-op.
    ///
    /// # Errors
    /// [`AccountError::NoSuchUser`], or a store failure.
    pub async fn disable_user(&self, user: UserId) -> Result<(), AccountError> {
        if !self.users.set_disabled(user, true).await? {
            return Err(AccountError::NoSuchUser);
        }
        self.logout_everywhere(user).await?;
        Ok(())
    }

    /// Enable a disabled account again: it can log in with its password. Nothing it held
    /// before it was disabled comes back.
    ///
    /// # Errors
    /// [`AccountError::NoSuchUser`], or a store failure.
    pub async fn enable_user(&self, user: UserId) -> Result<(), AccountError> {
        if !self.users.set_disabled(user, false).await? {
            return Err(AccountError::NoSuchUser);
        }
        Ok(())
    }

    /// End every session, refresh family and access token of a user. Returns how many
    /// sessions ended.
    ///
    /// # Errors
    /// When a store fails.
    pub async fn logout_everywhere(&self, user: UserId) -> Result<u64, StoreError> {
        // Tokens issued in this second are revoked too: `iat` has whole seconds.
        let mark = self.now().add_secs(1);
        self.store.revoke_issued_before(user, mark).await?;
        self.issued_before.put(user, Some(mark), self.gate.ticket());
        // Every instance drops its cached mark now: the user's bearer tokens are refused
        // everywhere from here on, whatever fails below.
        self.announce(&[Invalidation::User(user)]).await;
        self.store.revoke_user_families(user).await?;
        // Flask session cookies signed before now are refused by the bridge from now on.
        crate::flask::bridge::record_logout(self, user).await?;
        let listed = self.store.list_user_sessions(user, UnixTime(0)).await?;
        let n = self.store.delete_user_sessions(user).await?;
        let ended: Vec<_> = listed
            .into_iter()
            .map(|r| {
                self.sessions.forget(&r.key);
                Invalidation::Session(r.key)
            })
            .collect();
        self.announce(&ended).await;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::RefreshError;
    use crate::auth::testkit::*;

    #[tokio::test]
    async fn login_success_wrong_and_unknown_look_alike() {
        let f = fixture();
        let a = alice(&f).await;
        let ok = f
            .auth
            .login("alice", Password::new(PW), "1.2.3.4")
            .await
            .unwrap();
        assert_eq!(ok.id, a.id);
        let wrong = f
            .auth
            .login("alice", Password::new("nope nope"), "1.2.3.4")
            .await;
        let unknown = f.auth.login("mallory", Password::new(PW), "1.2.3.4").await;
        let bad_name = f
            .auth
            .login("<bad name>", Password::new(PW), "1.2.3.4")
            .await;
        for e in [wrong, unknown, bad_name] {
            assert!(matches!(e, Err(LoginError::Invalid)), "{e:?}");
        }
    }

    #[tokio::test]
    async fn throttles_per_account_then_recovers() {
        let f = fixture();
        alice(&f).await;
        for _ in 0..5 {
            let e = f
                .auth
                .login("alice", Password::new("wrong pass"), "10.0.0.1")
                .await;
            assert!(matches!(e, Err(LoginError::Invalid)));
        }
        // Even the right password is refused while throttled, from any address.
        let e = f.auth.login("alice", Password::new(PW), "10.0.0.2").await;
        let Err(LoginError::Throttled { retry_after }) = e else {
            panic!("expected throttling, got {e:?}")
        };
        assert_eq!(retry_after, 15 * 60);
        f.clock.advance(15 * 60);
        assert!(
            f.auth
                .login("alice", Password::new(PW), "10.0.0.2")
                .await
                .is_ok()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_parallel_burst_gets_no_more_guesses_than_the_limit() {
        let f = fixture();
        alice(&f).await;
        let before = f.auth.pool().verifications();
        let auth = Arc::new(f.auth);
        let mut burst = tokio::task::JoinSet::new();
        for i in 0..16 {
            let auth = Arc::clone(&auth);
            burst.spawn(async move {
                auth.login(
                    "alice",
                    Password::new(format!("guess number {i}")),
                    "10.1.1.1",
                )
                .await
            });
        }
        let mut throttled = 0;
        while let Some(outcome) = burst.join_next().await {
            match outcome.unwrap() {
                Err(LoginError::Throttled { .. }) => throttled += 1,
                Err(LoginError::Invalid) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(throttled, 11);
        assert_eq!(auth.pool().verifications() - before, 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_correct_logins_all_succeed() {
        let f = fixture();
        alice(&f).await;
        let auth = Arc::new(f.auth);
        let mut logins = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let auth = Arc::clone(&auth);
            logins.spawn(async move { auth.login("alice", Password::new(PW), "10.2.2.2").await });
        }
        while let Some(outcome) = logins.join_next().await {
            assert!(outcome.unwrap().is_ok());
        }
    }

    #[tokio::test]
    async fn each_locked_window_makes_the_next_one_longer_and_a_success_resets() {
        let f = fixture();
        alice(&f).await;
        let wrong = || {
            f.auth
                .login("alice", Password::new("wrong pass"), "10.5.5.5")
        };
        let retry_after = |e: Result<User, LoginError>| match e {
            Err(LoginError::Throttled { retry_after }) => retry_after,
            other => panic!("expected throttling, got {other:?}"),
        };
        for window in [15 * 60, 30 * 60, 60 * 60] {
            for _ in 0..5 {
                assert!(matches!(wrong().await, Err(LoginError::Invalid)));
            }
            assert_eq!(retry_after(wrong().await), window);
            // The right password too, from anywhere: no oracle.
            let right = f.auth.login("alice", Password::new(PW), "10.6.6.6").await;
            assert_eq!(retry_after(right), window);
            f.clock.advance(window);
        }
        // A success clears the account's counter and its back-off.
        assert!(
            f.auth
                .login("alice", Password::new(PW), "10.5.5.5")
                .await
                .is_ok()
        );
        for _ in 0..5 {
            assert!(matches!(wrong().await, Err(LoginError::Invalid)));
        }
        assert_eq!(retry_after(wrong().await), 15 * 60);
    }

    #[tokio::test]
    async fn a_success_resets_the_account_and_spares_the_address() {
        let mut f = fixture();
        let mut config = f.auth.config.clone();
        config.throttle.per_address = 6;
        f.auth = Auth::new(
            KeyRing::single(f.key.clone()),
            config,
            f.store.clone(),
            f.store.clone(),
            f.auth.pool.clone(),
            Arc::new(f.clock.clone()),
        );
        alice(&f).await;
        let attempt = |pw: &'static str| f.auth.login("alice", Password::new(pw), "10.7.7.7");
        for _ in 0..4 {
            assert!(matches!(
                attempt("wrong pass").await,
                Err(LoginError::Invalid)
            ));
        }
        for _ in 0..10 {
            assert!(attempt(PW).await.is_ok());
        }
        // The account starts over (4 more failures would not lock it); the address has
        // counted 4 failures and no success, so 2 more reach its limit of 6.
        for _ in 0..2 {
            assert!(matches!(
                attempt("wrong pass").await,
                Err(LoginError::Invalid)
            ));
        }
        assert!(matches!(
            attempt(PW).await,
            Err(LoginError::Throttled { .. })
        ));
    }

    #[tokio::test]
    async fn unknown_names_are_counted_like_known_ones() {
        let f = fixture();
        for _ in 0..5 {
            let e = f.auth.login("nobody", Password::new(PW), "10.8.8.8").await;
            assert!(matches!(e, Err(LoginError::Invalid)), "{e:?}");
        }
        let e = f.auth.login("nobody", Password::new(PW), "10.8.8.9").await;
        assert!(matches!(e, Err(LoginError::Throttled { .. })), "{e:?}");
    }

    #[tokio::test]
    async fn nothing_evaluated_gives_the_place_back() {
        let (auth, store) = failing_fixture();
        auth.create_user("alice", Password::new(PW), Role::user())
            .await
            .unwrap();
        store.fail("user_by_name");
        for _ in 0..10 {
            let e = auth.login("alice", Password::new(PW), "10.9.0.1").await;
            assert!(matches!(e, Err(LoginError::Store(_))), "{e:?}");
        }
        store.recover();
        assert!(
            auth.login("alice", Password::new(PW), "10.9.0.1")
                .await
                .is_ok()
        );
        // A reservation that fails is a 503, never a login without the count.
        store.fail("reserve_attempt");
        let e = auth.login("alice", Password::new(PW), "10.9.0.1").await;
        assert!(matches!(e, Err(LoginError::Store(_))), "{e:?}");
        assert_eq!(store.calls("user_by_name"), 11);
    }

    #[tokio::test]
    async fn throttles_per_address_across_accounts() {
        let f = fixture();
        for i in 0..50 {
            let _ = f
                .auth
                .login(&format!("user{i}"), Password::new("wrong pass"), "10.9.9.9")
                .await;
        }
        let e = f.auth.login("someone", Password::new(PW), "10.9.9.9").await;
        assert!(matches!(e, Err(LoginError::Throttled { .. })), "{e:?}");
        let other = f.auth.login("someone", Password::new(PW), "10.9.9.8").await;
        assert!(matches!(other, Err(LoginError::Invalid)), "{other:?}");
    }

    #[tokio::test]
    async fn logout_everywhere_ends_all_but_not_the_next_login() {
        let f = fixture();
        let a = alice(&f).await;
        let pair = f.auth.issue_tokens(&a).await.unwrap();
        let (c1, _) = f.auth.start_session(&a, "", "").await.unwrap();
        let (c2, _) = f.auth.start_session(&a, "", "").await.unwrap();
        assert_eq!(f.auth.logout_everywhere(a.id).await.unwrap(), 2);
        assert!(f.auth.session(&c1).await.is_err());
        assert!(f.auth.session(&c2).await.is_err());
        assert!(matches!(
            f.auth.verify_bearer(&pair.access_token).await,
            Err(BearerError::Revoked)
        ));
        assert!(f.auth.refresh(&pair.refresh_token).await.is_err());
        // A login in the same second still works.
        let again = f.auth.issue_tokens(&a).await.unwrap();
        assert!(f.auth.verify_bearer(&again.access_token).await.is_ok());
        let (c3, _) = f.auth.start_session(&a, "", "").await.unwrap();
        assert!(f.auth.session(&c3).await.is_ok());
    }

    #[tokio::test]
    async fn account_changes_end_sessions() {
        let f = fixture();
        let a = alice(&f).await;
        let (c, _) = f.auth.start_session(&a, "", "").await.unwrap();
        f.auth
            .change_password(a.id, Password::new("a brand new pass"))
            .await
            .unwrap();
        assert!(f.auth.session(&c).await.is_err());
        assert!(f.auth.login("alice", Password::new(PW), "x").await.is_err());
        assert!(
            f.auth
                .login("alice", Password::new("a brand new pass"), "x")
                .await
                .is_ok()
        );

        let (c, _) = f.auth.start_session(&a, "", "").await.unwrap();
        f.auth.set_role(a.id, &Role::admin()).await.unwrap();
        assert!(f.auth.session(&c).await.is_err());

        let (c, _) = f.auth.start_session(&a, "", "").await.unwrap();
        f.auth.remove_user(a.id).await.unwrap();
        assert!(f.auth.session(&c).await.is_err());
        assert!(matches!(
            f.auth.remove_user(a.id).await,
            Err(AccountError::NoSuchUser)
        ));
        assert!(matches!(
            f.auth
                .create_user("x", Password::new("short"), Role::user())
                .await,
            Err(AccountError::Password(PasswordError::TooShort))
        ));
    }

    #[tokio::test]
    async fn a_disabled_account_cannot_log_in_or_refresh_until_enabled() {
        let f = fixture();
        let a = alice(&f).await;
        let pair = f.auth.issue_tokens(&a).await.unwrap();
        let (cookie, _) = f.auth.start_session(&a, "", "").await.unwrap();
        f.auth.disable_user(a.id).await.unwrap();
        assert!(f.auth.session(&cookie).await.is_err());
        assert!(matches!(
            f.auth.verify_bearer(&pair.access_token).await,
            Err(BearerError::Revoked)
        ));
        assert!(f.auth.refresh(&pair.refresh_token).await.is_err());
        let e = f.auth.login("alice", Password::new(PW), "10.10.0.1").await;
        assert!(matches!(e, Err(LoginError::Invalid)), "{e:?}");

        // A family made before the flag was read (e.g. by a login in flight) is refused
        // at refresh too.
        let stale = f.auth.issue_tokens(&a).await.unwrap();
        assert!(matches!(
            f.auth.refresh(&stale.refresh_token).await,
            Err(RefreshError::Invalid)
        ));

        f.auth.enable_user(a.id).await.unwrap();
        assert!(
            f.auth
                .login("alice", Password::new(PW), "10.10.0.1")
                .await
                .is_ok()
        );
        assert!(f.auth.session(&cookie).await.is_err(), "nothing comes back");
        assert!(matches!(
            f.auth.disable_user(UserId(9_999)).await,
            Err(AccountError::NoSuchUser)
        ));
        assert!(matches!(
            f.auth.enable_user(UserId(9_999)).await,
            Err(AccountError::NoSuchUser)
        ));
    }

    #[tokio::test]
    async fn registration_is_throttled_per_address_before_hashing() {
        let f = registration_fixture(3);
        let reg = |name: &'static str, pw: &'static str, addr: &'static str| {
            f.auth.register(name, Password::new(pw), Role::user(), addr)
        };
        // Every attempt counts: a success, a taken name, a refused password.
        assert!(reg("alice", PW, "10.3.3.3").await.is_ok());
        assert!(matches!(
            reg("alice", PW, "10.3.3.3").await,
            Err(AccountError::Taken)
        ));
        assert!(matches!(
            reg("bob", "short", "10.3.3.3").await,
            Err(AccountError::Password(PasswordError::TooShort))
        ));
        let hashes = f.auth.pool().hashes();
        let e = reg("carol", PW, "10.3.3.3").await;
        let Err(AccountError::Throttled { retry_after }) = e else {
            panic!("expected throttling, got {e:?}")
        };
        assert_eq!(retry_after, 15 * 60);
        assert_eq!(f.auth.pool().hashes(), hashes, "refused before hashing");
        assert!(f.store.user_by_name("carol").await.unwrap().is_none());
        // Another address is not affected; the CLI's create_user is never throttled.
        assert!(reg("carol", PW, "10.3.3.4").await.is_ok());
        assert!(
            f.auth
                .create_user("dave", Password::new(PW), Role::user())
                .await
                .is_ok()
        );
        // The window ends.
        f.clock.advance(15 * 60);
        assert!(reg("erin", PW, "10.3.3.3").await.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_parallel_registration_burst_gets_no_more_hashes_than_the_limit() {
        let f = registration_fixture(5);
        let before = f.auth.pool().hashes();
        let auth = Arc::new(f.auth);
        let mut burst = tokio::task::JoinSet::new();
        for i in 0..16 {
            let auth = Arc::clone(&auth);
            burst.spawn(async move {
                auth.register(
                    &format!("user{i}"),
                    Password::new(PW),
                    Role::user(),
                    "10.4.4.4",
                )
                .await
            });
        }
        let (mut created, mut throttled) = (0, 0);
        while let Some(outcome) = burst.join_next().await {
            match outcome.unwrap() {
                Ok(_) => created += 1,
                Err(AccountError::Throttled { .. }) => throttled += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((created, throttled), (5, 11));
        assert_eq!(auth.pool().hashes() - before, 5);
    }

    #[tokio::test]
    async fn duplicate_user_is_taken() {
        let f = fixture();
        alice(&f).await;
        let e = f
            .auth
            .create_user("alice", Password::new(PW), Role::user())
            .await;
        assert!(matches!(e, Err(AccountError::Taken)), "{e:?}");
    }
}
