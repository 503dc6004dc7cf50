//! Passwords and accounts: login, registration, account changes.

use super::{AccountError, Auth, LoginError};
use crate::b64;
use crate::clock::UnixTime;
use crate::password::{Password, PasswordError};
use crate::store::StoreError;
use crate::user::{NewUser, Role, User, UserId, Username};

/// How many locks serialize login attempts (by account, striped).
pub(super) const LOGIN_STRIPES: usize = 64;

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
    /// # Errors
    /// [`LoginError`].
    pub async fn login(
        &self,
        username: &str,
        password: Password,
        address: &str,
    ) -> Result<User, LoginError> {
        let now = self.now();
        let policy = self.config.throttle;
        let account_key = throttle_key("acct", username);
        let address_key = throttle_key("addr", address);
        // Attempts on one account run one at a time (per instance): check, verify, count.
        // Otherwise a burst of parallel guesses would all pass a count of zero and the
        // hashing queue, not the policy, would bound them. Correct logins just queue.
        let _turn = self.login_turn(&account_key).lock().await;
        let (acct, acct_end) = self.store.peek(&account_key, now).await?;
        let (addr, addr_end) = self.store.peek(&address_key, now).await?;
        if acct >= policy.per_account || addr >= policy.per_address {
            let end = if acct >= policy.per_account {
                acct_end
            } else {
                addr_end
            };
            return Err(LoginError::Throttled {
                retry_after: (end.secs() - now.secs()).max(1),
            });
        }
        let user = match Username::parse(username) {
            Ok(name) => self.users.user_by_name(name.as_str()).await?,
            Err(_) => None,
        };
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        let verdict = match self.pool.verify(password.clone(), hash).await {
            Ok(v) => v,
            Err(PasswordError::Busy) => return Err(LoginError::Busy),
            Err(_) => return Err(LoginError::Invalid),
        };
        match user {
            Some(user) if verdict.matches => {
                self.store.clear(&account_key).await?;
                if verdict.needs_rehash
                    && let Ok(hash) = self.pool.hash(password).await
                {
                    // Only while the stored hash is still the one just verified: a password
                    // changed meanwhile is never overwritten by the old one's rehash.
                    self.users
                        .replace_password_hash(user.id, &user.password_hash, &hash)
                        .await?;
                }
                Ok(user)
            }
            _ => {
                self.store
                    .hit(&account_key, policy.window_secs, now)
                    .await?;
                self.store
                    .hit(&address_key, policy.window_secs, now)
                    .await?;
                Err(LoginError::Invalid)
            }
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

    /// End every session, refresh family and access token of a user. Returns how many
    /// sessions ended.
    ///
    /// # Errors
    /// When a store fails.
    pub async fn logout_everywhere(&self, user: UserId) -> Result<u64, StoreError> {
        // Tokens issued in this second are revoked too: `iat` has whole seconds.
        let mark = self.now().add_secs(1);
        self.store.revoke_issued_before(user, mark).await?;
        self.issued_before.put(user, Some(mark));
        self.store.revoke_user_families(user).await?;
        // Flask session cookies signed before now are refused by the bridge from now on.
        crate::flask::bridge::record_logout(self, user).await?;
        let listed = self.store.list_user_sessions(user, UnixTime(0)).await?;
        let n = self.store.delete_user_sessions(user).await?;
        for r in listed {
            self.sessions.forget(&r.key);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
