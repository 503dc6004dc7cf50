//! The one-time setup link that creates the first administrator in a browser.
//!
//! While the user table is empty, `countersign serve` asks [`Auth::open_setup`] for a
//! secret and prints it once on the operator's console, as `http://ADDR/setup?token=…`,
//! the way self-hosted tools hand over their first login. [`SetupToken`] is all the
//! process keeps of it:
//!
//! - the token is 256 bits from the OS CSPRNG, as 43 base64url characters;
//! - only its HMAC-SHA256 is kept, under a key drawn from the OS for this one purpose and
//!   never derived from the key ring: rotating the ring on SIGHUP must not break the link,
//!   and the link never needs to outlive the process;
//! - a presented token is checked by computing its MAC and comparing the two in constant
//!   time;
//! - it expires [`SETUP_TOKEN_LIFETIME_SECS`] after it was issued (time is a parameter);
//! - it is used once: [`SetupToken::claim`] takes it atomically, so of two concurrent
//!   submissions exactly one goes on to create the account. A claim whose account cannot
//!   be made (a full hashing queue, a store error) gives the token back; one that succeeds
//!   closes it for good;
//! - it also closes for good as soon as a user is seen, however that user was made
//!   (`countersign user add` while the server runs, another instance's link).
//!
//! The token lives in one process. With several instances each prints its own link, which
//! works only on the instance that printed it; whichever is used first makes the admin, and
//! the others close when they next look. A user added at the very moment a link is being
//! used (by the CLI, or on another instance) can make two accounts: both are ones the
//! operator asked for.
//!
//! [`Auth::open_setup`]: crate::auth::Auth::open_setup

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use zeroize::Zeroizing;

use crate::auth::AccountError;
use crate::b64;
use crate::clock::UnixTime;
use crate::keys::Subkey;
use crate::store::StoreError;

/// How long a setup link is valid after it was issued: one hour.
pub const SETUP_TOKEN_LIFETIME_SECS: i64 = 60 * 60;

/// The MAC's domain label.
const LABEL: &[u8] = b"countersign/setup-token";

const OPEN: u8 = 0;
const CLAIMED: u8 = 1;
const CLOSED: u8 = 2;

/// Why the first administrator could not be made through the setup link.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The link is not (or no longer) valid: a wrong token, an expired or used one, a
    /// submission racing another that holds the token, or a user already exists. One kind
    /// on purpose: the answer does not tell a stranger which.
    #[error("the setup link is not valid: wrong, expired or used, or an account exists")]
    Closed,
    /// The account could not be made (a bad name, a password the policy refuses, a full
    /// hashing queue, a store error). The token was given back.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The operating system's random source failed (when opening the link).
    #[error("the operating system's random source failed")]
    Random(#[source] getrandom::Error),
}

impl From<StoreError> for SetupError {
    fn from(e: StoreError) -> Self {
        Self::Account(AccountError::Store(e))
    }
}

/// The token as printed, once. Redacted in `Debug`, zeroized on drop.
pub struct SetupSecret(Zeroizing<String>);

impl SetupSecret {
    /// The token's text (43 base64url characters), to put in the link.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SetupSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SetupSecret([redacted])")
    }
}

/// What the process keeps of a setup token: its MAC, its deadline and whether it is still
/// open. See the [module docs](self).
pub struct SetupToken {
    key: Subkey,
    tag: [u8; 32],
    expires_at: UnixTime,
    state: AtomicU8,
}

impl fmt::Debug for SetupToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state.load(Ordering::Acquire) {
            OPEN => "open",
            CLAIMED => "claimed",
            _ => "closed",
        };
        f.debug_struct("SetupToken")
            .field("expires_at", &self.expires_at)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl SetupToken {
    /// A new token issued at `now`, and its secret to print.
    ///
    /// # Errors
    /// When the operating system's random source fails.
    pub fn issue(now: UnixTime) -> Result<(Self, SetupSecret), getrandom::Error> {
        let key = Subkey::random()?;
        let mut raw = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut *raw)?;
        let secret = Zeroizing::new(b64::encode(&*raw));
        let tag = key.mac(&[LABEL, secret.as_bytes()]);
        let token = Self {
            key,
            tag,
            expires_at: now.add_secs(SETUP_TOKEN_LIFETIME_SECS),
            state: AtomicU8::new(OPEN),
        };
        Ok((token, SetupSecret(secret)))
    }

    /// When the token stops being valid.
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }

    /// Whether `presented` is this token: its MAC compared in constant time.
    fn matches(&self, presented: &str) -> bool {
        self.key.verify(&[LABEL, presented.as_bytes()], &self.tag)
    }

    /// Whether `presented` is this token, unexpired at `now` and still open (neither
    /// claimed nor closed).
    pub fn check(&self, presented: &str, now: UnixTime) -> bool {
        self.matches(presented)
            && now < self.expires_at
            && self.state.load(Ordering::Acquire) == OPEN
    }

    /// Take the token for one submission: `Some` for exactly one caller while it is open,
    /// unexpired at `now` and `presented` matches. Dropping the claim gives the token back;
    /// [`SetupClaim::complete`] closes it.
    pub fn claim(&self, presented: &str, now: UnixTime) -> Option<SetupClaim<'_>> {
        if !(self.matches(presented) && now < self.expires_at) {
            return None;
        }
        self.state
            .compare_exchange(OPEN, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        Some(SetupClaim { token: self })
    }

    /// Close the token for good (a user exists).
    pub fn close(&self) {
        self.state.store(CLOSED, Ordering::Release);
    }

    /// Whether the token is closed for good.
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) == CLOSED
    }
}

/// A submission's hold on the token (see [`SetupToken::claim`]).
#[derive(Debug)]
#[must_use = "dropping a claim gives the token back"]
pub struct SetupClaim<'a> {
    token: &'a SetupToken,
}

impl SetupClaim<'_> {
    /// The account was made: close the token for good.
    pub fn complete(self) {
        self.token.close();
    }
}

impl Drop for SetupClaim<'_> {
    fn drop(&mut self) {
        // Give the token back, unless it was closed meanwhile (completed, or a user seen).
        let _ =
            self.token
                .state
                .compare_exchange(CLAIMED, OPEN, Ordering::AcqRel, Ordering::Acquire);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    const T0: UnixTime = UnixTime(1_800_000_000);

    #[test]
    fn the_secret_is_256_random_bits_and_only_a_mac_is_kept() {
        let (token, secret) = SetupToken::issue(T0).unwrap();
        let text = secret.expose();
        assert_eq!(text.len(), 43);
        let mut raw = [0u8; 32];
        assert_eq!(b64::decode_into(text.as_bytes(), &mut raw), Ok(32));
        let (_, other) = SetupToken::issue(T0).unwrap();
        assert_ne!(other.expose(), text);
        // Neither the token nor its bytes are kept; Debug shows neither.
        assert_ne!(token.tag, raw);
        assert_eq!(format!("{secret:?}"), "SetupSecret([redacted])");
        let debug = format!("{token:?}");
        assert!(!debug.contains(text), "{debug}");
        assert!(debug.contains("open"), "{debug}");
    }

    #[test]
    fn only_the_exact_token_matches() {
        let (token, secret) = SetupToken::issue(T0).unwrap();
        let text = secret.expose();
        assert!(token.check(text, T0));
        let mut flipped = text.to_owned().into_bytes();
        flipped[42] = if flipped[42] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let longer = format!("{text}A");
        let (_, other) = SetupToken::issue(T0).unwrap();
        for wrong in ["", &text[..42], &flipped, &longer, other.expose()] {
            assert!(!token.check(wrong, T0), "{wrong:?}");
            assert!(token.claim(wrong, T0).is_none(), "{wrong:?}");
        }
        // Wrong guesses change nothing.
        assert!(token.check(text, T0));
    }

    #[test]
    fn it_expires_one_hour_after_issue() {
        let (token, secret) = SetupToken::issue(T0).unwrap();
        let end = T0.add_secs(SETUP_TOKEN_LIFETIME_SECS);
        assert_eq!(token.expires_at(), end);
        assert!(token.check(secret.expose(), end.add_secs(-1)));
        assert!(!token.check(secret.expose(), end));
        assert!(token.claim(secret.expose(), end).is_none());
        assert!(token.claim(secret.expose(), end.add_secs(-1)).is_some());
    }

    #[test]
    fn a_completed_claim_closes_it_and_a_dropped_one_gives_it_back() {
        let (token, secret) = SetupToken::issue(T0).unwrap();
        let text = secret.expose();
        let claim = token.claim(text, T0).unwrap();
        // Held: neither checked nor claimed by anyone else.
        assert!(!token.check(text, T0));
        assert!(token.claim(text, T0).is_none());
        drop(claim);
        assert!(token.check(text, T0));
        token.claim(text, T0).unwrap().complete();
        assert!(token.is_closed());
        assert!(!token.check(text, T0));
        assert!(token.claim(text, T0).is_none());
    }

    #[test]
    fn closing_while_claimed_is_not_undone_by_the_claim() {
        let (token, secret) = SetupToken::issue(T0).unwrap();
        let claim = token.claim(secret.expose(), T0).unwrap();
        token.close();
        drop(claim);
        assert!(token.is_closed());
        assert!(token.claim(secret.expose(), T0).is_none());
    }

    #[test]
    fn of_many_concurrent_claims_exactly_one_wins() {
        let (token, secret) = SetupToken::issue(T0).unwrap();
        let token = Arc::new(token);
        let text: Arc<str> = secret.expose().into();
        let winners = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (token, text, winners, barrier) = (
                    Arc::clone(&token),
                    Arc::clone(&text),
                    Arc::clone(&winners),
                    Arc::clone(&barrier),
                );
                std::thread::spawn(move || {
                    barrier.wait();
                    if let Some(claim) = token.claim(&text, T0) {
                        winners.fetch_add(1, Ordering::SeqCst);
                        claim.complete();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(winners.load(Ordering::SeqCst), 1);
        assert!(token.is_closed());
    }

    // ----- through the engine -----

    mod engine {
        use std::sync::Arc;
        use std::time::Duration;

        use crate::auth::{AccountError, Auth, AuthConfig};
        use crate::clock::ManualClock;
        use crate::keys::{KeyRing, SecretKey};
        use crate::memory::MemoryStore;
        use crate::password::{HashParams, Hasher, HashingPool, Password, PasswordError};
        use crate::setup::{SETUP_TOKEN_LIFETIME_SECS, SetupError};
        use crate::user::Role;

        use super::T0;

        const PW: &str = "correct horse battery";

        fn engine() -> (Arc<Auth>, ManualClock) {
            let clock = ManualClock::new(T0);
            let store = Arc::new(MemoryStore::new());
            let params = HashParams {
                m_cost_kib: 64,
                t_cost: 1,
                p_cost: 1,
            };
            let pool = HashingPool::new(Hasher::new(params).unwrap(), 2, 64).unwrap();
            let config = AuthConfig {
                cache_ttl: Duration::ZERO,
                ..AuthConfig::default()
            };
            let auth = Auth::new(
                KeyRing::single(SecretKey::generate(32).unwrap().0),
                config,
                store.clone(),
                store,
                pool,
                Arc::new(clock.clone()),
            );
            (Arc::new(auth), clock)
        }

        #[tokio::test]
        async fn opens_once_and_only_without_users() {
            let (auth, _) = engine();
            let secret = auth.open_setup().await.unwrap().unwrap();
            assert!(auth.open_setup().await.unwrap().is_none(), "printed once");
            assert!(auth.setup_allowed(secret.expose()).await.unwrap());
            assert!(!auth.setup_allowed("nope").await.unwrap());

            let (auth, _) = engine();
            auth.create_user("alice", Password::new(PW), Role::user())
                .await
                .unwrap();
            assert!(auth.open_setup().await.unwrap().is_none());
            assert!(!auth.setup_allowed("anything").await.unwrap());
        }

        #[tokio::test]
        async fn creates_one_admin_then_closes() {
            let (auth, _) = engine();
            let secret = auth.open_setup().await.unwrap().unwrap();
            let user = auth
                .create_first_admin(secret.expose(), "root", Password::new(PW))
                .await
                .unwrap();
            assert_eq!(
                (user.username.as_str(), &user.role),
                ("root", &Role::admin())
            );
            assert!(!auth.setup_allowed(secret.expose()).await.unwrap());
            let again = auth
                .create_first_admin(secret.expose(), "other", Password::new(PW))
                .await;
            assert!(matches!(again, Err(SetupError::Closed)), "{again:?}");
            assert_eq!(auth.users().list_users().await.unwrap().len(), 1);
        }

        #[tokio::test]
        async fn bad_input_keeps_the_link_and_a_bad_token_is_checked_first() {
            let (auth, _) = engine();
            let secret = auth.open_setup().await.unwrap().unwrap();
            let short = auth
                .create_first_admin(secret.expose(), "root", Password::new("short"))
                .await;
            assert!(
                matches!(
                    short,
                    Err(SetupError::Account(AccountError::Password(
                        PasswordError::TooShort
                    )))
                ),
                "{short:?}"
            );
            let name = auth
                .create_first_admin(secret.expose(), "no spaces", Password::new(PW))
                .await;
            assert!(
                matches!(name, Err(SetupError::Account(AccountError::Name(_)))),
                "{name:?}"
            );
            // A wrong token says nothing about the input.
            let wrong = auth
                .create_first_admin("wrong", "no spaces", Password::new("short"))
                .await;
            assert!(matches!(wrong, Err(SetupError::Closed)), "{wrong:?}");
            assert!(auth.setup_allowed(secret.expose()).await.unwrap());
            auth.create_first_admin(secret.expose(), "root", Password::new(PW))
                .await
                .unwrap();
        }

        #[tokio::test]
        async fn expires_after_an_hour() {
            let (auth, clock) = engine();
            let secret = auth.open_setup().await.unwrap().unwrap();
            clock.advance(SETUP_TOKEN_LIFETIME_SECS - 1);
            assert!(auth.setup_allowed(secret.expose()).await.unwrap());
            clock.advance(1);
            assert!(!auth.setup_allowed(secret.expose()).await.unwrap());
            let late = auth
                .create_first_admin(secret.expose(), "root", Password::new(PW))
                .await;
            assert!(matches!(late, Err(SetupError::Closed)), "{late:?}");
            assert!(auth.users().list_users().await.unwrap().is_empty());
        }

        #[tokio::test]
        async fn a_user_made_elsewhere_closes_it_for_good() {
            let (auth, _) = engine();
            let secret = auth.open_setup().await.unwrap().unwrap();
            let alice = auth
                .create_user("alice", Password::new(PW), Role::user())
                .await
                .unwrap();
            let r = auth
                .create_first_admin(secret.expose(), "root", Password::new(PW))
                .await;
            assert!(matches!(r, Err(SetupError::Closed)), "{r:?}");
            // Closed for good: removing the user does not bring the link back.
            auth.remove_user(alice.id).await.unwrap();
            assert!(!auth.setup_allowed(secret.expose()).await.unwrap());
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_submissions_make_exactly_one_admin() {
            let (auth, _) = engine();
            let secret = auth.open_setup().await.unwrap().unwrap();
            let token: Arc<str> = secret.expose().into();
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    let (auth, token) = (Arc::clone(&auth), Arc::clone(&token));
                    tokio::spawn(async move {
                        auth.create_first_admin(&token, &format!("admin{i}"), Password::new(PW))
                            .await
                    })
                })
                .collect();
            let mut made = 0;
            for task in tasks {
                match task.await.unwrap() {
                    Ok(_) => made += 1,
                    Err(SetupError::Closed) => {}
                    Err(e) => panic!("{e:?}"),
                }
            }
            assert_eq!(made, 1);
            let users = auth.users().list_users().await.unwrap();
            assert_eq!(users.len(), 1);
            assert_eq!(users[0].role, Role::admin());
        }
    }
}
