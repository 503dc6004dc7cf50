//! Second factors: enrolment, the challenge between a password and a session, the code
//! check (TOTP or recovery code), step-up, reset.
//!
//! # The challenge
//! A password that matches for a user with a confirmed factor gives an [`MfaChallenge`],
//! not a session: an opaque value sealed under the key ring ([`Purpose::MfaChallenge`],
//! ChaCha20-Poly1305) naming the user, the methods proved so far and a random nonce,
//! valid five minutes. It grants nothing by itself: nothing but
//! [`Auth::complete_mfa`] (and the passkey step) opens it. Each code tried against it
//! is one attempt under the login throttle of the user's name and the client's address;
//! the first success consumes it (a counter in the session store, so on every instance),
//! and any later use is [`MfaError::Expired`]. A web page keeps it in an `HttpOnly`
//! cookie, which binds it to the browser; an API client gets it in the 401 body.
//!
//! [`Purpose::MfaChallenge`]: crate::keys::Purpose::MfaChallenge

use zeroize::Zeroizing;

use super::{Auth, Authentication, LoginError, MfaError};
use crate::b64;
use crate::mfa::recovery::{RecoveryCodes, RecoveryHash};
use crate::mfa::totp::{self, TotpSecret};
use crate::mfa::{Amr, Factor, FactorId, FactorKind, RecoveryCodeRecord};
use crate::store::{StoreError, unavailable};
use crate::user::{User, UserId};

/// How long a challenge lasts (five minutes).
pub const MFA_CHALLENGE_TTL_SECS: i64 = 300;

/// The associated data of sealed challenges.
const CHALLENGE_AAD: &[u8] = b"countersign/mfa-challenge/v1";

/// The throttle counter a used challenge's nonce is counted under, so it is used once.
const ONCE_PREFIX: &str = "mfa-once:";

/// A user's confirmed second factors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MfaMethods {
    /// An authenticator app is enrolled.
    pub totp: bool,
    /// How many passkeys.
    pub passkeys: usize,
    /// How many recovery codes are left unused.
    pub recovery_codes_left: usize,
}

impl MfaMethods {
    /// Whether any second factor is enrolled (recovery codes alone do not count: they
    /// back a factor up).
    pub fn is_enrolled(&self) -> bool {
        self.totp || self.passkeys > 0
    }

    /// The method names a client may offer: `totp`, `webauthn`, `recovery`.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::with_capacity(3);
        if self.totp {
            names.push("totp");
        }
        if self.passkeys > 0 {
            names.push("webauthn");
        }
        if self.recovery_codes_left > 0 {
            names.push("recovery");
        }
        names
    }
}

/// A half-finished login: the sealed challenge and what the user can answer it with.
#[derive(Clone)]
pub struct MfaChallenge {
    /// The opaque challenge (base64url).
    pub token: Zeroizing<String>,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The user's methods.
    pub methods: MfaMethods,
}

impl std::fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaChallenge")
            .field("expires_in", &self.expires_in)
            .field("methods", &self.methods)
            .finish_non_exhaustive()
    }
}

/// A TOTP enrolment waiting for its first code.
#[derive(Clone)]
pub struct TotpEnrolment {
    /// The `otpauth://totp/…` URI (holds the secret).
    pub otpauth_uri: Zeroizing<String>,
    /// The secret in base32, for typing in.
    pub secret: Zeroizing<String>,
    /// The URI as an SVG QR code.
    pub qr_svg: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment([redacted])")
    }
}

/// An opened challenge.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub user_id: UserId,
    /// What the first step proved.
    pub amr: Amr,
    nonce: [u8; 16],
}

/// The associated data of a sealed TOTP secret: bound to its user and factor.
fn totp_aad(user: UserId, id: &FactorId) -> Vec<u8> {
    format!("countersign/totp/{}/{}", user.0, id.as_str()).into_bytes()
}

impl Auth {
    /// A user's confirmed second factors.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn mfa_methods(&self, user: UserId) -> Result<MfaMethods, StoreError> {
        let factors = self.users.user_factors(user).await?;
        let codes = self.users.recovery_codes(user).await?;
        Ok(MfaMethods {
            totp: factors
                .iter()
                .any(|f| f.kind == FactorKind::Totp && f.confirmed),
            passkeys: factors
                .iter()
                .filter(|f| f.kind == FactorKind::Passkey && f.confirmed)
                .count(),
            recovery_codes_left: codes.iter().filter(|c| c.used_at.is_none()).count(),
        })
    }

    /// A user's factors (confirmed or pending), oldest first, for the security page.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn factors(&self, user: UserId) -> Result<Vec<Factor>, StoreError> {
        self.users.user_factors(user).await
    }

    /// A user's recovery codes: when made, which were used and when.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn recovery_code_status(
        &self,
        user: UserId,
    ) -> Result<Vec<RecoveryCodeRecord>, StoreError> {
        self.users.recovery_codes(user).await
    }

    /// After the first step (`amr` so far) of `user`'s login: a challenge if the user has
    /// a second factor, `None` if the first step is the whole login.
    ///
    /// # Errors
    /// When the store or the OS random source fails.
    pub async fn mfa_challenge(
        &self,
        user: &User,
        amr: Amr,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        let methods = self.mfa_methods(user.id).await?;
        if !methods.is_enrolled() {
            return Ok(None);
        }
        let now = self.now();
        let nonce: [u8; 16] = crate::random::bytes();
        let mut plain = Zeroizing::new(Vec::with_capacity(41));
        plain.extend_from_slice(&user.id.0.to_be_bytes());
        plain.push(amr.bits());
        plain.extend_from_slice(&now.secs().to_be_bytes());
        plain.extend_from_slice(&now.add_secs(MFA_CHALLENGE_TTL_SECS).secs().to_be_bytes());
        plain.extend_from_slice(&nonce);
        let sealed = self
            .keys
            .load()
            .challenges
            .seal(CHALLENGE_AAD, &plain)
            .map_err(unavailable)?;
        Ok(Some(MfaChallenge {
            token: Zeroizing::new(b64::encode(&sealed)),
            expires_in: MFA_CHALLENGE_TTL_SECS,
            methods,
        }))
    }

    /// The methods the user of a challenge can answer it with, while it is good (for the
    /// second-factor page). It does not use the challenge nor count as an attempt.
    ///
    /// # Errors
    /// [`MfaError::Expired`] for a bad, expired or used challenge, or one whose user is
    /// gone or disabled; [`MfaError::Store`].
    pub async fn challenge_methods(&self, challenge: &str) -> Result<MfaMethods, MfaError> {
        let pending = self.open_challenge(challenge).await?;
        let user = self.challenge_user(&pending).await?;
        Ok(self.mfa_methods(user.id).await?)
    }

    /// Open a challenge: its user and first step, if it is ours, unexpired and unused.
    pub(crate) async fn open_challenge(&self, token: &str) -> Result<Pending, MfaError> {
        if token.len() > 512 {
            return Err(MfaError::Expired);
        }
        let mut sealed = vec![0u8; token.len() * 3 / 4 + 3];
        let n = b64::decode_into(token.as_bytes(), &mut sealed).map_err(|_| MfaError::Expired)?;
        sealed.truncate(n);
        let opened = self
            .keys
            .load()
            .challenges
            .open(CHALLENGE_AAD, &sealed)
            .ok_or(MfaError::Expired)?;
        let p = Zeroizing::new(opened.plaintext);
        if p.len() != 41 {
            return Err(MfaError::Expired);
        }
        let int = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&p[at..at + 8]);
            i64::from_be_bytes(b)
        };
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&p[25..41]);
        let pending = Pending {
            user_id: UserId(int(0)),
            // Bytes 9..17 hold when the first step was proved; the login's `auth_time` is
            // when it completes.
            amr: Amr::from_bits(p[8]),
            nonce,
        };
        let now = self.now();
        if now.secs() >= int(17) {
            return Err(MfaError::Expired);
        }
        let (uses, _) = self.store.peek(&once_key(&pending.nonce), now).await?;
        if uses > 0 {
            return Err(MfaError::Expired);
        }
        Ok(pending)
    }

    /// Mark a challenge used; false if another request used it first (on any instance).
    pub(crate) async fn consume_challenge(&self, pending: &Pending) -> Result<bool, StoreError> {
        let now = self.now();
        let (uses, _) = self
            .store
            .hit(&once_key(&pending.nonce), MFA_CHALLENGE_TTL_SECS + 60, now)
            .await?;
        Ok(uses == 1)
    }

    /// The user a challenge names, if still allowed to log in.
    pub(crate) async fn challenge_user(&self, pending: &Pending) -> Result<User, MfaError> {
        match self.users.user_by_id(pending.user_id).await? {
            Some(user) if !user.disabled => Ok(user),
            _ => Err(MfaError::Expired),
        }
    }

    /// Finish a login with a code: a TOTP code or a recovery code. Returns the user and
    /// how they authenticated (the first step's methods with `otp`, hence `mfa`), for
    /// [`Auth::start_session_with`] or [`Auth::issue_tokens_with`].
    ///
    /// # Errors
    /// [`MfaError::Expired`] for a bad, expired or used challenge (start again),
    /// [`MfaError::Invalid`] for a wrong or replayed code (try again),
    /// [`MfaError::Throttled`] past the login throttle.
    pub async fn complete_mfa(
        &self,
        challenge: &str,
        code: &str,
        address: &str,
    ) -> Result<(User, Authentication), MfaError> {
        let pending = self.open_challenge(challenge).await?;
        let user = self.challenge_user(&pending).await?;
        let amr = self.check_code(&user, code, address).await?;
        if !self.consume_challenge(&pending).await? {
            return Err(MfaError::Expired);
        }
        Ok((
            user,
            Authentication {
                amr: pending.amr.with(amr),
                auth_time: self.now(),
            },
        ))
    }

    /// Step-up: a signed-in user proves a second factor again (before a sensitive
    /// change). Returns the methods the code proved (`otp`), throttled like a login.
    ///
    /// # Errors
    /// As [`Auth::complete_mfa`], without `Expired`.
    pub async fn verify_code(
        &self,
        user: &User,
        code: &str,
        address: &str,
    ) -> Result<Amr, MfaError> {
        self.check_code(user, code, address).await
    }

    /// One throttled attempt of a code against a user's TOTP factor or recovery codes.
    async fn check_code(&self, user: &User, code: &str, address: &str) -> Result<Amr, MfaError> {
        // A TOTP code is six digits (spaces and dashes aside); anything else may be a
        // recovery code, which can hold six digits among its letters.
        if totp::is_code_shaped(code) {
            // Checked first (an HMAC and, if it matches, its step used up), then counted
            // with its outcome in one store operation: half the round trips of reserving
            // before and settling after, for the same limit on guesses honoured.
            let matched = self.totp_matches(user, code).await?;
            let verdict = self
                .throttled_decided(
                    super::accounts::Guess::Code,
                    user.username.as_str(),
                    address,
                    matched.then_some(Amr::OTP),
                )
                .await?;
            return verdict.ok_or(MfaError::Invalid);
        }
        // A recovery code is used up when it matches, so it is checked only once its
        // attempt is admitted: a throttled user must not lose one.
        let verdict = self
            .throttled(
                super::accounts::Guess::Code,
                user.username.as_str(),
                address,
                async {
                    self.recovery_matches(user, code)
                        .await
                        .map_err(LoginError::from)
                },
            )
            .await?;
        verdict.ok_or(MfaError::Invalid)
    }

    /// Whether `code` is a current TOTP code of `user` not used before; a match is
    /// recorded (its step used up) before this returns.
    async fn totp_matches(&self, user: &User, code: &str) -> Result<bool, StoreError> {
        let now = self.now();
        for factor in self.users.user_factors(user.id).await? {
            if factor.kind != FactorKind::Totp || !factor.confirmed {
                continue;
            }
            let Some(secret) = self.open_totp(&factor).await? else {
                continue;
            };
            if let Some(step) = secret.check(code, now)
                && self
                    .users
                    .advance_factor(user.id, &factor.id, step, now)
                    .await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether `code` is an unused recovery code of `user`; a match is used up before
    /// this returns.
    async fn recovery_matches(&self, user: &User, code: &str) -> Result<Option<Amr>, StoreError> {
        let now = self.now();
        let Some(hash) = RecoveryHash::of_typed(code) else {
            return Ok(None);
        };
        if self.users.use_recovery_code(user.id, &hash, now).await? {
            let left = self
                .users
                .recovery_codes(user.id)
                .await?
                .iter()
                .filter(|c| c.used_at.is_none())
                .count();
            tracing::warn!(
                user = user.username.as_str(),
                recovery_codes_left = left,
                "a recovery code was used"
            );
            return Ok(Some(Amr::OTP));
        }
        Ok(None)
    }

    /// A TOTP factor's secret, resealed under the current key if it was sealed under a
    /// fallback one (so pruning old keys later does not lose it). `None` if it does not
    /// open (sealed under a key no longer in the ring: the user must enrol again).
    async fn open_totp(&self, factor: &Factor) -> Result<Option<TotpSecret>, StoreError> {
        let aad = totp_aad(factor.user_id, &factor.id);
        let keys = self.keys.load();
        let Some(opened) = keys.mfa_secrets.open(&aad, &factor.data) else {
            tracing::warn!(
                factor = factor.id.as_str(),
                "a TOTP secret does not open under any key of the ring"
            );
            return Ok(None);
        };
        let secret = TotpSecret::from_bytes(&opened.plaintext);
        if opened.stale {
            let mut resealed = factor.clone();
            resealed.data = keys
                .mfa_secrets
                .seal(&aad, secret.expose())
                .map_err(unavailable)?;
            self.users.update_factor(&resealed).await?;
        }
        Ok(Some(secret))
    }

    /// Start a TOTP enrolment: a fresh secret, stored sealed and pending until a first
    /// code confirms it ([`Auth::confirm_totp`]). A pending enrolment is replaced.
    ///
    /// # Errors
    /// [`MfaError::AlreadyEnrolled`] while a confirmed TOTP exists.
    pub async fn begin_totp(&self, user: &User, issuer: &str) -> Result<TotpEnrolment, MfaError> {
        let factors = self.users.user_factors(user.id).await?;
        if factors
            .iter()
            .any(|f| f.kind == FactorKind::Totp && f.confirmed)
        {
            return Err(MfaError::AlreadyEnrolled);
        }
        for f in factors.iter().filter(|f| f.kind == FactorKind::Totp) {
            self.users.remove_factor(user.id, &f.id).await?;
        }
        let secret = TotpSecret::generate().map_err(unavailable)?;
        let issuer: String = issuer.chars().filter(|c| *c != ':').collect();
        let uri = secret
            .otpauth_uri(&issuer, user.username.as_str())
            .map_err(unavailable)?;
        let qr_svg = totp::qr_svg(&uri).map_err(unavailable)?;
        let id = FactorId::generate();
        let data = self
            .keys
            .load()
            .mfa_secrets
            .seal(&totp_aad(user.id, &id), secret.expose())
            .map_err(unavailable)?;
        let factor = Factor {
            id,
            user_id: user.id,
            kind: FactorKind::Totp,
            name: "Authenticator app".to_owned(),
            data,
            counter: 0,
            confirmed: false,
            created_at: self.now(),
            last_used_at: None,
        };
        self.users.add_factor(&factor).await?;
        Ok(TotpEnrolment {
            otpauth_uri: uri,
            secret: secret.to_base32(),
            qr_svg,
        })
    }

    /// Confirm a pending TOTP enrolment with a first code (throttled like a login). On
    /// success the factor counts, and a new set of recovery codes replaces any old one:
    /// show them once.
    ///
    /// # Errors
    /// [`MfaError::NotPending`] without a pending enrolment, [`MfaError::Invalid`] for a
    /// wrong code.
    pub async fn confirm_totp(
        &self,
        user: &User,
        code: &str,
        address: &str,
    ) -> Result<RecoveryCodes, MfaError> {
        let factors = self.users.user_factors(user.id).await?;
        let Some(pending) = factors
            .into_iter()
            .find(|f| f.kind == FactorKind::Totp && !f.confirmed)
        else {
            return Err(MfaError::NotPending);
        };
        let confirmed = self
            .throttled(
                super::accounts::Guess::Code,
                user.username.as_str(),
                address,
                async {
                    let now = self.now();
                    let Some(secret) = self.open_totp(&pending).await? else {
                        return Ok(None);
                    };
                    let Some(step) = secret.check(code, now) else {
                        return Ok(None);
                    };
                    if !self
                        .users
                        .advance_factor(user.id, &pending.id, step, now)
                        .await?
                    {
                        return Ok(None);
                    }
                    let mut done = pending.clone();
                    done.confirmed = true;
                    done.last_used_at = Some(now);
                    Ok(Some(self.users.update_factor(&done).await?))
                },
            )
            .await?;
        match confirmed {
            Some(true) => Ok(self.regenerate_recovery_codes(user.id).await?),
            Some(false) => Err(MfaError::NotPending),
            None => Err(MfaError::Invalid),
        }
    }

    /// Remove a factor of a user (TOTP or passkey). When it was the last one, the
    /// recovery codes go too (they back up factors that no longer exist). Returns whether
    /// it existed.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn remove_factor(&self, user: UserId, id: &FactorId) -> Result<bool, StoreError> {
        let removed = self.users.remove_factor(user, id).await?;
        if removed && !self.mfa_methods(user).await?.is_enrolled() {
            self.users
                .replace_recovery_codes(user, &[], self.now())
                .await?;
        }
        Ok(removed)
    }

    /// Remove the user's TOTP factor (confirmed or pending). Returns whether one existed.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn remove_totp(&self, user: UserId) -> Result<bool, StoreError> {
        let mut removed = false;
        for f in self.users.user_factors(user).await? {
            if f.kind == FactorKind::Totp {
                removed |= self.remove_factor(user, &f.id).await?;
            }
        }
        Ok(removed)
    }

    /// A new set of recovery codes, replacing the old (used or not). Show them once.
    ///
    /// # Errors
    /// When the store or the OS random source fails.
    pub async fn regenerate_recovery_codes(
        &self,
        user: UserId,
    ) -> Result<RecoveryCodes, StoreError> {
        let codes = RecoveryCodes::generate().map_err(unavailable)?;
        self.users
            .replace_recovery_codes(user, &codes.hashes, self.now())
            .await?;
        Ok(codes)
    }

    /// Remove every second factor and recovery code of a user and end all their sessions
    /// and tokens (`countersign user mfa reset`). Returns how many factors went.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn reset_mfa(&self, user: UserId) -> Result<u64, StoreError> {
        let removed = self.users.remove_user_factors(user).await?;
        self.logout_everywhere(user).await?;
        tracing::warn!(user = user.0, factors = removed, "second factors reset");
        Ok(removed)
    }
}

fn once_key(nonce: &[u8; 16]) -> String {
    let mut key = String::from(ONCE_PREFIX);
    b64::encode_into(nonce, &mut key);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testkit::*;
    use crate::clock::UnixTime;

    fn code(enrolment: &TotpEnrolment, at: UnixTime) -> String {
        TotpSecret::from_base32(&enrolment.secret)
            .unwrap()
            .code_at(6, u64::try_from(at.secs()).unwrap())
            .unwrap()
    }

    /// Alice with a confirmed TOTP factor; the enrolment and her recovery codes.
    async fn enrolled(f: &Fixture) -> (User, TotpEnrolment, RecoveryCodes) {
        let a = alice(f).await;
        let e = f.auth.begin_totp(&a, "countersign").await.unwrap();
        let codes = f
            .auth
            .confirm_totp(&a, &code(&e, f.auth.now()), "127.0.0.1")
            .await
            .unwrap();
        (a, e, codes)
    }

    #[tokio::test]
    async fn enrolment_counts_only_once_confirmed() {
        let f = fixture();
        let a = alice(&f).await;
        let e = f.auth.begin_totp(&a, "count:ersign").await.unwrap();
        assert!(
            e.otpauth_uri
                .starts_with("otpauth://totp/countersign:alice?")
        );
        assert!(e.qr_svg.starts_with("<?xml") || e.qr_svg.starts_with("<svg"));
        assert!(!f.auth.mfa_methods(a.id).await.unwrap().is_enrolled());
        assert!(f.auth.mfa_challenge(&a, Amr::PWD).await.unwrap().is_none());
        // The stored secret is sealed: its bytes are not the secret's.
        let stored = f.auth.factors(a.id).await.unwrap();
        let secret = TotpSecret::from_base32(&e.secret).unwrap();
        assert!(
            !stored[0]
                .data
                .windows(secret.expose().len())
                .any(|w| w == secret.expose())
        );
        let wrong = if code(&e, f.auth.now()) == "000000" {
            "111111"
        } else {
            "000000"
        };
        assert!(matches!(
            f.auth.confirm_totp(&a, wrong, "ip").await,
            Err(MfaError::Invalid)
        ));
        let codes = f
            .auth
            .confirm_totp(&a, &code(&e, f.auth.now()), "ip")
            .await
            .unwrap();
        assert_eq!(codes.codes.len(), 10);
        let methods = f.auth.mfa_methods(a.id).await.unwrap();
        assert!(methods.totp && methods.is_enrolled());
        assert_eq!(methods.names(), ["totp", "recovery"]);
        assert!(matches!(
            f.auth.begin_totp(&a, "countersign").await,
            Err(MfaError::AlreadyEnrolled)
        ));
    }

    #[tokio::test]
    async fn a_challenge_and_a_code_make_an_mfa_login_once() {
        let f = fixture();
        let (a, e, _) = enrolled(&f).await;
        f.clock.advance(30);
        let ch = f.auth.mfa_challenge(&a, Amr::PWD).await.unwrap().unwrap();
        assert_eq!(ch.methods.names(), ["totp", "recovery"]);
        assert!(!format!("{ch:?}").contains(ch.token.as_str()));
        // A challenge is not a session, nor a bearer token.
        assert!(f.auth.session(&ch.token).await.is_err());
        assert!(f.auth.verify_bearer(&ch.token).await.is_err());
        let now = f.auth.now();
        let (user, authn) = f
            .auth
            .complete_mfa(&ch.token, &code(&e, now), "ip")
            .await
            .unwrap();
        assert_eq!(user.id, a.id);
        assert_eq!(authn.amr.to_text(), "pwd otp mfa");
        // Used once: the same challenge again is expired, even with another valid code.
        f.clock.advance(30);
        let later = code(&e, f.auth.now());
        assert!(matches!(
            f.auth.complete_mfa(&ch.token, &later, "ip").await,
            Err(MfaError::Expired)
        ));
        // The session and tokens carry amr and auth_time.
        let (cookie, _) = f
            .auth
            .start_session_with(&user, authn, "ua", "ip")
            .await
            .unwrap();
        let p = Auth::principal_from_session(&f.auth.session(&cookie).await.unwrap());
        assert!(p.is_mfa() && p.authenticated_within(0, authn.auth_time));
        let pair = f.auth.issue_tokens_with(&user, authn).await.unwrap();
        let p = f.auth.verify_bearer(&pair.access_token).await.unwrap();
        assert_eq!(p.amr, authn.amr);
        assert_eq!(p.auth_time, Some(authn.auth_time));
        f.clock.advance(60);
        let refreshed = f.auth.refresh(&pair.refresh_token).await.unwrap();
        let p = f.auth.verify_bearer(&refreshed.access_token).await.unwrap();
        assert_eq!((p.amr, p.auth_time), (authn.amr, Some(authn.auth_time)));
        // A plain password login says so.
        let plain = f.auth.issue_tokens(&user).await.unwrap();
        let p = f.auth.verify_bearer(&plain.access_token).await.unwrap();
        assert_eq!(p.amr.to_text(), "pwd");
        assert!(!p.is_mfa());
    }

    #[tokio::test]
    async fn a_totp_step_is_accepted_once() {
        let f = fixture();
        let (a, e, _) = enrolled(&f).await;
        // The confirming code's step is used: the same code cannot log in.
        let used = code(&e, f.auth.now());
        let ch = f.auth.mfa_challenge(&a, Amr::PWD).await.unwrap().unwrap();
        assert!(matches!(
            f.auth.complete_mfa(&ch.token, &used, "ip").await,
            Err(MfaError::Invalid)
        ));
        f.clock.advance(30);
        let next = code(&e, f.auth.now());
        f.auth.complete_mfa(&ch.token, &next, "ip").await.unwrap();
        let ch = f.auth.mfa_challenge(&a, Amr::PWD).await.unwrap().unwrap();
        assert!(matches!(
            f.auth.complete_mfa(&ch.token, &next, "ip").await,
            Err(MfaError::Invalid)
        ));
        // A code from before the last accepted step is refused too.
        assert!(matches!(
            f.auth.verify_code(&a, &used, "ip").await,
            Err(MfaError::Invalid)
        ));
    }

    #[tokio::test]
    async fn recovery_codes_work_once() {
        let f = fixture();
        let (a, _, codes) = enrolled(&f).await;
        let ch = f.auth.mfa_challenge(&a, Amr::PWD).await.unwrap().unwrap();
        let typed = codes.codes[3].to_uppercase();
        let (_, authn) = f.auth.complete_mfa(&ch.token, &typed, "ip").await.unwrap();
        assert!(authn.amr.is_mfa());
        let ch = f.auth.mfa_challenge(&a, Amr::PWD).await.unwrap().unwrap();
        assert!(matches!(
            f.auth.complete_mfa(&ch.token, &typed, "ip").await,
            Err(MfaError::Invalid)
        ));
        let status = f.auth.recovery_code_status(a.id).await.unwrap();
        assert_eq!(status.iter().filter(|c| c.used_at.is_some()).count(), 1);
        assert_eq!(
            f.auth.mfa_methods(a.id).await.unwrap().recovery_codes_left,
            9
        );
        // Regenerating replaces the whole set.
        let fresh = f.auth.regenerate_recovery_codes(a.id).await.unwrap();
        assert!(matches!(
            f.auth.verify_code(&a, &codes.codes[0], "ip").await,
            Err(MfaError::Invalid)
        ));
        assert_eq!(
            f.auth.verify_code(&a, &fresh.codes[0], "ip").await.unwrap(),
            Amr::OTP
        );
    }

    #[tokio::test]
    async fn a_recovery_code_with_six_digits_is_still_a_recovery_code() {
        let f = fixture();
        let (a, _, _) = enrolled(&f).await;
        // About one code in eight has exactly six digits among its sixteen characters.
        let mut found = None;
        for _ in 0..100 {
            let set = f.auth.regenerate_recovery_codes(a.id).await.unwrap();
            found = set
                .codes
                .iter()
                .find(|c| c.chars().filter(char::is_ascii_digit).count() == 6)
                .map(|c| c.to_string());
            if found.is_some() {
                break;
            }
        }
        let code = found.expect("no code with six digits in 1000");
        assert_eq!(f.auth.verify_code(&a, &code, "ip").await.unwrap(), Amr::OTP);
    }

    #[tokio::test]
    async fn challenges_expire_and_do_not_survive_tampering() {
        let f = fixture();
        let (a, e, _) = enrolled(&f).await;
        let ch = f.auth.mfa_challenge(&a, Amr::PWD).await.unwrap().unwrap();
        let mut bad = ch.token.to_string();
        let last = bad.pop().unwrap();
        bad.push(if last == 'A' { 'B' } else { 'A' });
        for token in [bad.as_str(), "", "x", &"A".repeat(600), "!!!"] {
            assert!(matches!(
                f.auth.complete_mfa(token, "123456", "ip").await,
                Err(MfaError::Expired)
            ));
        }
        f.clock.advance(301);
        let now_code = code(&e, f.auth.now());
        assert!(matches!(
            f.auth.complete_mfa(&ch.token, &now_code, "ip").await,
            Err(MfaError::Expired)
        ));
        // A disabled user's challenge is dead.
        let ch = f.auth.mfa_challenge(&a, Amr::PWD).await.unwrap().unwrap();
        f.auth.disable_user(a.id).await.unwrap();
        assert!(matches!(
            f.auth.complete_mfa(&ch.token, &now_code, "ip").await,
            Err(MfaError::Expired)
        ));
    }

    #[tokio::test]
    async fn wrong_codes_spend_the_login_throttle() {
        let f = fixture();
        let (a, _, _) = enrolled(&f).await;
        let ch = f.auth.mfa_challenge(&a, Amr::PWD).await.unwrap().unwrap();
        let mut throttled = false;
        for _ in 0..=f.auth.config.throttle.per_account {
            match f.auth.complete_mfa(&ch.token, "000000", "ip").await {
                Err(MfaError::Invalid) => {}
                Err(MfaError::Throttled { retry_after }) => {
                    assert!(retry_after > 0);
                    throttled = true;
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(throttled);
        // Codes have their own counter: the password still gets its challenge (no oracle,
        // no fresh budget either), and the codes stay refused until the window ends.
        let user = f
            .auth
            .login("alice", Password::new(PW), "ip2")
            .await
            .expect("the password is not throttled by wrong codes");
        let ch = f
            .auth
            .mfa_challenge(&user, Amr::PWD)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(
            f.auth.complete_mfa(&ch.token, "000000", "ip2").await,
            Err(MfaError::Throttled { .. })
        ));
    }

    #[tokio::test]
    async fn a_rotated_key_reseals_secrets_and_reset_removes_everything() {
        let f = fixture();
        let (a, e, _) = enrolled(&f).await;
        let before = f.auth.factors(a.id).await.unwrap()[0].data.clone();
        let (new, _) = SecretKey::generate(32).unwrap();
        f.auth
            .set_keys(KeyRing::new(new.clone(), vec![f.key.clone()]).unwrap());
        f.clock.advance(30);
        f.auth
            .verify_code(&a, &code(&e, f.auth.now()), "ip")
            .await
            .unwrap();
        let after = f.auth.factors(a.id).await.unwrap()[0].data.clone();
        assert_ne!(before, after, "resealed under the current key");
        // The old key can now go.
        f.auth.set_keys(KeyRing::single(new));
        f.clock.advance(30);
        f.auth
            .verify_code(&a, &code(&e, f.auth.now()), "ip")
            .await
            .unwrap();
        let (cookie, _) = f.auth.start_session(&a, "ua", "ip").await.unwrap();
        assert_eq!(f.auth.reset_mfa(a.id).await.unwrap(), 1);
        assert!(!f.auth.mfa_methods(a.id).await.unwrap().is_enrolled());
        assert!(f.auth.recovery_code_status(a.id).await.unwrap().is_empty());
        assert!(f.auth.session(&cookie).await.is_err(), "sessions ended");
    }
}
