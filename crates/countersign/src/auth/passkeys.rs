//! Passkeys on the service: registration (several per user, named, renamed, removed), the
//! second step of a login after a password, a passwordless login with a discoverable
//! credential, and step-up for a signed-in user. [`crate::mfa::passkey`] says what is
//! stored and how the ceremony state travels.
//!
//! Every assertion is one attempt under the login throttle of its user's name and the
//! client's address, as a password or a code is; an assertion of a credential nobody
//! registered counts against the address (and the credential id). After each accepted
//! assertion the stored credential's signature counter, backup state and last use are
//! updated; a counter that did not grow (when either side is not zero) is refused, logged
//! and recorded on the passkey, where the security page shows it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Uuid, WebauthnError,
};

use super::{Auth, Authentication, LoginError, MfaError};
use crate::b64;
use crate::clock::UnixTime;
use crate::mfa::passkey::{
    MAX_PASSKEYS_PER_USER, PASSKEY_CEREMONY_TTL_SECS, PasskeyCeremony, PasskeyConfig, PasskeyError,
    PasskeyRecord, PasskeySummary, checked_name,
};
use crate::mfa::recovery::RecoveryCodes;
use crate::mfa::{Amr, Factor, FactorId, FactorKind};
use crate::store::{StoreError, unavailable};
use crate::user::{User, UserId};

#[cfg(test)]
mod tests;

/// The longest sealed state accepted back (a registration's state with the most passkeys
/// excluded stays far below).
const MAX_STATE_CHARS: usize = 64 * 1024;

/// The throttle counter a used ceremony state's nonce is counted under.
const ONCE_PREFIX: &str = "passkey-once:";

/// Which ceremony a sealed state belongs to (bound into its associated data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ceremony {
    Register,
    SecondFactor,
    Login,
    Verify,
}

impl Ceremony {
    fn name(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::SecondFactor => "second-factor",
            Self::Login => "login",
            Self::Verify => "verify",
        }
    }

    fn aad(self) -> Vec<u8> {
        format!("countersign/passkey-state/v1/{}", self.name()).into_bytes()
    }
}

/// What is sealed: whose ceremony, until when, a nonce for single use, the library's state.
#[derive(Serialize, Deserialize)]
struct Sealed<T> {
    user: Option<i64>,
    exp: i64,
    nonce: String,
    state: T,
}

/// A registration's state: the library's, and the user handle it gave the authenticator.
#[derive(Serialize, Deserialize)]
struct Registration {
    reg: PasskeyRegistration,
    handle: Uuid,
}

impl From<LoginError> for PasskeyError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Throttled { retry_after } => Self::Throttled { retry_after },
            LoginError::Store(e) => Self::Store(e),
            LoginError::Busy => Self::Throttled { retry_after: 1 },
            _ => Self::Invalid,
        }
    }
}

impl From<MfaError> for PasskeyError {
    fn from(e: MfaError) -> Self {
        match e {
            MfaError::Throttled { retry_after } => Self::Throttled { retry_after },
            MfaError::Store(e) => Self::Store(e),
            MfaError::Invalid => Self::Invalid,
            _ => Self::Expired,
        }
    }
}

/// A finished registration.
#[derive(Debug)]
pub struct PasskeyRegistered {
    /// The new passkey.
    pub passkey: PasskeySummary,
    /// When it is the user's first second factor: a new set of recovery codes, to show
    /// once (as a TOTP enrolment gives).
    pub recovery_codes: Option<RecoveryCodes>,
}

fn parse<T: DeserializeOwned>(json: &str) -> Result<T, PasskeyError> {
    serde_json::from_str(json).map_err(|e| PasskeyError::Malformed(e.to_string()))
}

fn options(value: &impl Serialize) -> Result<serde_json::Value, PasskeyError> {
    serde_json::to_value(value).map_err(|e| PasskeyError::Store(unavailable(e)))
}

fn started(e: WebauthnError) -> PasskeyError {
    PasskeyError::Store(unavailable(e))
}

/// The factor id of a credential id.
fn factor_id(credential_id: &[u8]) -> FactorId {
    FactorId(b64::encode(credential_id))
}

/// The `amr` value of a key: `swk` when it may be synced, else `hwk`.
fn key_amr(backup_eligible: bool) -> Amr {
    if backup_eligible { Amr::SWK } else { Amr::HWK }
}

impl Auth {
    /// The relying party, when passkeys are on ([`AuthConfig::passkeys`](super::AuthConfig)).
    pub fn passkey_config(&self) -> Option<&PasskeyConfig> {
        self.config.passkeys.as_ref()
    }

    fn relying_party(&self) -> Result<&PasskeyConfig, PasskeyError> {
        self.passkey_config().ok_or(PasskeyError::Disabled)
    }

    /// A user's passkeys, oldest first.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn passkeys(&self, user: UserId) -> Result<Vec<PasskeySummary>, StoreError> {
        Ok(self
            .users
            .user_factors(user)
            .await?
            .iter()
            .filter(|f| f.confirmed)
            .filter_map(PasskeySummary::of)
            .collect())
    }

    async fn passkey_records(&self, user: UserId) -> Result<Vec<PasskeyRecord>, StoreError> {
        Ok(self
            .users
            .user_factors(user)
            .await?
            .iter()
            .filter(|f| f.confirmed)
            .filter_map(PasskeyRecord::from_factor)
            .collect())
    }

    fn seal_state<T: Serialize>(
        &self,
        ceremony: Ceremony,
        user: Option<UserId>,
        state: T,
    ) -> Result<String, PasskeyError> {
        let nonce: [u8; 16] = crate::random::bytes();
        let sealed = Sealed {
            user: user.map(|u| u.0),
            exp: self.now().add_secs(PASSKEY_CEREMONY_TTL_SECS).secs(),
            nonce: b64::encode(&nonce),
            state,
        };
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(&sealed).map_err(|e| PasskeyError::Store(unavailable(e)))?,
        );
        let bytes = self
            .keys
            .load()
            .challenges
            .seal(&ceremony.aad(), &plain)
            .map_err(|e| PasskeyError::Store(unavailable(e)))?;
        Ok(b64::encode(&bytes))
    }

    /// Open a sealed state of `ceremony`, unexpired, and use it up: whose it is and the
    /// library's state. Every failure is [`PasskeyError::Expired`].
    async fn open_state<T: DeserializeOwned>(
        &self,
        ceremony: Ceremony,
        token: &str,
    ) -> Result<(Option<UserId>, T), PasskeyError> {
        if token.len() > MAX_STATE_CHARS {
            return Err(PasskeyError::Expired);
        }
        let mut sealed = vec![0u8; token.len() * 3 / 4 + 3];
        let n =
            b64::decode_into(token.as_bytes(), &mut sealed).map_err(|_| PasskeyError::Expired)?;
        sealed.truncate(n);
        let opened = self
            .keys
            .load()
            .challenges
            .open(&ceremony.aad(), &sealed)
            .ok_or(PasskeyError::Expired)?;
        let plain = zeroize::Zeroizing::new(opened.plaintext);
        let state: Sealed<T> = serde_json::from_slice(&plain).map_err(|_| PasskeyError::Expired)?;
        let now = self.now();
        if now.secs() >= state.exp {
            return Err(PasskeyError::Expired);
        }
        let (uses, _) = self
            .store
            .hit(
                &format!("{ONCE_PREFIX}{}", state.nonce),
                PASSKEY_CEREMONY_TTL_SECS + 60,
                now,
            )
            .await?;
        if uses != 1 {
            return Err(PasskeyError::Expired);
        }
        Ok((state.user.map(UserId), state.state))
    }

    /// Start registering a passkey for `user`: the options for
    /// `navigator.credentials.create()` (a discoverable credential, user verification
    /// required, the user's passkeys excluded) and the sealed state.
    ///
    /// # Errors
    /// [`PasskeyError::Disabled`] without a relying party, [`PasskeyError::TooMany`] at
    /// [`MAX_PASSKEYS_PER_USER`], or a store failure.
    pub async fn begin_passkey_registration(
        &self,
        user: &User,
    ) -> Result<PasskeyCeremony, PasskeyError> {
        let rp = self.relying_party()?;
        let records = self.passkey_records(user.id).await?;
        if records.len() >= MAX_PASSKEYS_PER_USER {
            return Err(PasskeyError::TooMany);
        }
        // One user handle for all of a user's passkeys: an authenticator then keeps one
        // credential per account here, replacing rather than piling up.
        let handle = records.first().map_or_else(Uuid::new_v4, |r| r.user_handle);
        let exclude = records
            .iter()
            .map(|r| r.passkey.cred_id().clone())
            .collect();
        let name = user.username.as_str();
        let (ccr, reg) = rp
            .webauthn()
            .start_passkey_registration(handle, name, name, Some(exclude))
            .map_err(started)?;
        let mut options = options(&ccr)?;
        // A passkey is a discoverable credential: it signs in without a username.
        let selection = &mut options["publicKey"]["authenticatorSelection"];
        selection["residentKey"] = json!("required");
        selection["requireResidentKey"] = json!(true);
        let state = self.seal_state(
            Ceremony::Register,
            Some(user.id),
            Registration { reg, handle },
        )?;
        Ok(PasskeyCeremony {
            options,
            state,
            expires_in: PASSKEY_CEREMONY_TTL_SECS,
        })
    }

    /// Finish a registration with the browser's answer (`credential`, the JSON of the
    /// `PublicKeyCredential`) and a name for the passkey.
    ///
    /// # Errors
    /// [`PasskeyError::BadName`], [`PasskeyError::Malformed`] for an answer that is not a
    /// credential, [`PasskeyError::Expired`] for a state that is not this user's, expired
    /// or used, [`PasskeyError::Invalid`] when the credential does not verify (another
    /// RP ID or origin, no user verification, a bad attestation),
    /// [`PasskeyError::AlreadyRegistered`], [`PasskeyError::TooMany`], or a store failure.
    pub async fn finish_passkey_registration(
        &self,
        user: &User,
        state: &str,
        credential: &str,
        name: &str,
    ) -> Result<PasskeyRegistered, PasskeyError> {
        let rp = self.relying_party()?;
        let name = checked_name(name)?;
        let credential: RegisterPublicKeyCredential = parse(credential)?;
        let (owner, registration): (_, Registration) =
            self.open_state(Ceremony::Register, state).await?;
        if owner != Some(user.id) {
            return Err(PasskeyError::Expired);
        }
        let passkey = rp
            .webauthn()
            .finish_passkey_registration(&credential, &registration.reg)
            .map_err(|e| {
                tracing::info!(user = %user.username, error = %e, "a passkey registration was refused");
                PasskeyError::Invalid
            })?;
        let cred = serde_json::to_value(&passkey).unwrap_or_default();
        let flag = |name: &str| cred["cred"][name].as_bool().unwrap_or(false);
        let counter = cred["cred"]["counter"].as_i64().unwrap_or(0);
        let record = PasskeyRecord {
            v: 1,
            rp_id: rp.rp_id().to_owned(),
            backup_eligible: flag("backup_eligible"),
            backup_state: flag("backup_state"),
            user_handle: registration.handle,
            counter_regressed_at: None,
            passkey,
        };
        let methods = self.mfa_methods(user.id).await?;
        if methods.passkeys >= MAX_PASSKEYS_PER_USER {
            return Err(PasskeyError::TooMany);
        }
        let factor = Factor {
            id: factor_id(record.passkey.cred_id()),
            user_id: user.id,
            kind: FactorKind::Passkey,
            name,
            data: record.to_bytes(),
            counter,
            confirmed: true,
            created_at: self.now(),
            last_used_at: None,
        };
        match self.users.add_factor(&factor).await {
            Err(StoreError::Conflict) => return Err(PasskeyError::AlreadyRegistered),
            other => other?,
        }
        tracing::info!(
            user = %user.username,
            passkey = factor.id.as_str(),
            synced = record.backup_eligible,
            "passkey registered"
        );
        let recovery_codes = if methods.is_enrolled() {
            None
        } else {
            Some(self.regenerate_recovery_codes(user.id).await?)
        };
        Ok(PasskeyRegistered {
            passkey: PasskeySummary::of(&factor)
                .unwrap_or_else(|| unreachable!("a passkey factor just made")),
            recovery_codes,
        })
    }

    /// The passkey `id` of `user`, if it is one.
    async fn own_passkey(&self, user: UserId, id: &FactorId) -> Result<Option<Factor>, StoreError> {
        Ok(self
            .users
            .factor(id)
            .await?
            .filter(|f| f.user_id == user && f.kind == FactorKind::Passkey))
    }

    /// Rename a passkey of `user`. False when the user has no such passkey.
    ///
    /// # Errors
    /// [`PasskeyError::BadName`], or a store failure.
    pub async fn rename_passkey(
        &self,
        user: UserId,
        id: &FactorId,
        name: &str,
    ) -> Result<bool, PasskeyError> {
        let name = checked_name(name)?;
        let Some(mut factor) = self.own_passkey(user, id).await? else {
            return Ok(false);
        };
        factor.name = name;
        Ok(self.users.update_factor(&factor).await?)
    }

    /// Remove a passkey of `user` (the recovery codes go with the last factor, as
    /// [`Auth::remove_factor`] says). False when the user has no such passkey.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn remove_passkey(&self, user: UserId, id: &FactorId) -> Result<bool, StoreError> {
        if self.own_passkey(user, id).await?.is_none() {
            return Ok(false);
        }
        let removed = self.remove_factor(user, id).await?;
        if removed {
            tracing::info!(user = user.0, passkey = id.as_str(), "passkey removed");
        }
        Ok(removed)
    }

    /// Options asking for one of `user`'s passkeys, and the sealed state.
    async fn begin_assertion(
        &self,
        rp: &PasskeyConfig,
        user: &User,
        ceremony: Ceremony,
    ) -> Result<PasskeyCeremony, PasskeyError> {
        let passkeys: Vec<Passkey> = self
            .passkey_records(user.id)
            .await?
            .into_iter()
            .filter(|r| r.rp_id == rp.rp_id())
            .map(|r| r.passkey)
            .collect();
        if passkeys.is_empty() {
            return Err(PasskeyError::Invalid);
        }
        let (rcr, state) = rp
            .webauthn()
            .start_passkey_authentication(&passkeys)
            .map_err(started)?;
        Ok(PasskeyCeremony {
            options: options(&rcr)?,
            state: self.seal_state(ceremony, Some(user.id), state)?,
            expires_in: PASSKEY_CEREMONY_TTL_SECS,
        })
    }

    /// The second step of a login with a passkey: the options for
    /// `navigator.credentials.get()` naming the passkeys of the challenge's user
    /// ([`Auth::mfa_challenge`]), and the sealed state.
    ///
    /// # Errors
    /// [`PasskeyError::Expired`] for a bad, expired or used challenge,
    /// [`PasskeyError::Invalid`] when the user has no passkey, [`PasskeyError::Disabled`].
    pub async fn begin_passkey_mfa(
        &self,
        challenge: &str,
    ) -> Result<PasskeyCeremony, PasskeyError> {
        let rp = self.relying_party()?;
        let pending = self.open_challenge(challenge).await?;
        let user = self.challenge_user(&pending).await?;
        self.begin_assertion(rp, &user, Ceremony::SecondFactor)
            .await
    }

    /// Finish a login's second step with the browser's assertion: the user and how they
    /// authenticated (the first step's methods with `hwk` or `swk`, hence `mfa`), for
    /// [`Auth::start_session_with`] or [`Auth::issue_tokens_with`]. The challenge is used
    /// up on success only; the state on any attempt.
    ///
    /// # Errors
    /// [`PasskeyError::Expired`] for a bad, expired or used challenge or state (start
    /// again), [`PasskeyError::Invalid`] for an assertion that does not verify,
    /// [`PasskeyError::Throttled`] past the login throttle, [`PasskeyError::Malformed`].
    pub async fn complete_mfa_passkey(
        &self,
        challenge: &str,
        state: &str,
        credential: &str,
        address: &str,
    ) -> Result<(User, Authentication), PasskeyError> {
        let rp = self.relying_party()?;
        let credential: PublicKeyCredential = parse(credential)?;
        let pending = self.open_challenge(challenge).await?;
        let user = self.challenge_user(&pending).await?;
        let (owner, state): (_, PasskeyAuthentication) =
            self.open_state(Ceremony::SecondFactor, state).await?;
        if owner != Some(user.id) {
            return Err(PasskeyError::Expired);
        }
        let key = self
            .check_assertion(rp, &user, &credential, state, address)
            .await?;
        if !self.consume_challenge(&pending).await? {
            return Err(PasskeyError::Expired);
        }
        Ok((
            user,
            Authentication {
                amr: pending.amr.with(key),
                auth_time: self.now(),
            },
        ))
    }

    /// Step-up: options asking a signed-in user for one of their passkeys again.
    ///
    /// # Errors
    /// [`PasskeyError::Invalid`] when the user has no passkey, [`PasskeyError::Disabled`].
    pub async fn begin_passkey_verification(
        &self,
        user: &User,
    ) -> Result<PasskeyCeremony, PasskeyError> {
        let rp = self.relying_party()?;
        self.begin_assertion(rp, user, Ceremony::Verify).await
    }

    /// Step-up: check a signed-in user's assertion (throttled like a login). Returns the
    /// method it proved (`hwk` or `swk`).
    ///
    /// # Errors
    /// As [`Auth::complete_mfa_passkey`].
    pub async fn verify_passkey(
        &self,
        user: &User,
        state: &str,
        credential: &str,
        address: &str,
    ) -> Result<Amr, PasskeyError> {
        let rp = self.relying_party()?;
        let credential: PublicKeyCredential = parse(credential)?;
        let (owner, state): (_, PasskeyAuthentication) =
            self.open_state(Ceremony::Verify, state).await?;
        if owner != Some(user.id) {
            return Err(PasskeyError::Expired);
        }
        self.check_assertion(rp, user, &credential, state, address)
            .await
    }

    /// One throttled attempt of an assertion by one of `user`'s passkeys.
    async fn check_assertion(
        &self,
        rp: &PasskeyConfig,
        user: &User,
        credential: &PublicKeyCredential,
        state: PasskeyAuthentication,
        address: &str,
    ) -> Result<Amr, PasskeyError> {
        let id = factor_id(&credential.raw_id);
        let verdict = self
            .throttled(
                super::accounts::Guess::Password,
                user.username.as_str(),
                address,
                async {
                    let Some(factor) = self.own_passkey(user.id, &id).await? else {
                        return Ok(None);
                    };
                    let Some(record) = self.usable(rp, user, &factor) else {
                        return Ok(None);
                    };
                    let result = rp
                        .webauthn()
                        .finish_passkey_authentication(credential, &state);
                    self.accept_assertion(user, factor, record, result).await
                },
            )
            .await?;
        verdict.map(key_amr).ok_or(PasskeyError::Invalid)
    }

    /// Start a passwordless login: options for `navigator.credentials.get()` naming no
    /// credential (the authenticator offers its discoverable ones for this RP ID), and
    /// the sealed state.
    ///
    /// # Errors
    /// [`PasskeyError::Disabled`], or a failure of the OS random source.
    pub fn begin_passkey_login(&self) -> Result<PasskeyCeremony, PasskeyError> {
        let rp = self.relying_party()?;
        let (mut rcr, state) = rp
            .webauthn()
            .start_discoverable_authentication()
            .map_err(started)?;
        // The library asks for conditional mediation (autofill); a button asks at once.
        rcr.mediation = None;
        Ok(PasskeyCeremony {
            options: options(&rcr)?,
            state: self.seal_state(Ceremony::Login, None, state)?,
            expires_in: PASSKEY_CEREMONY_TTL_SECS,
        })
    }

    /// Finish a passwordless login: the credential's user (not disabled) and how they
    /// authenticated (`hwk`/`swk` with `mfa`: a passkey verified with the user's PIN or
    /// biometric is two factors in one).
    ///
    /// # Errors
    /// [`PasskeyError::Invalid`] for an unknown credential, a disabled user or an
    /// assertion that does not verify (indistinguishable), [`PasskeyError::Expired`] for
    /// a bad, expired or used state, [`PasskeyError::Throttled`],
    /// [`PasskeyError::Malformed`].
    pub async fn finish_passkey_login(
        &self,
        state: &str,
        credential: &str,
        address: &str,
    ) -> Result<(User, Authentication), PasskeyError> {
        let rp = self.relying_party()?;
        let credential: PublicKeyCredential = parse(credential)?;
        let (_, state): (_, DiscoverableAuthentication) =
            self.open_state(Ceremony::Login, state).await?;
        let id = factor_id(&credential.raw_id);
        let factor = self
            .users
            .factor(&id)
            .await?
            .filter(|f| f.kind == FactorKind::Passkey && f.confirmed);
        let owner = match &factor {
            Some(f) => self
                .users
                .user_by_id(f.user_id)
                .await?
                .filter(|u| !u.disabled),
            None => None,
        };
        let (Some(factor), Some(user)) = (factor, owner) else {
            // Nobody's, or a disabled account's: a failure counted against the address.
            let key = format!("passkey:{}", id.as_str());
            self.throttled(super::accounts::Guess::Password, &key, address, async {
                Ok::<Option<()>, LoginError>(None)
            })
            .await?;
            return Err(PasskeyError::Invalid);
        };
        let verdict = self
            .throttled(
                super::accounts::Guess::Password,
                user.username.as_str(),
                address,
                async {
                    let Some(record) = self.usable(rp, &user, &factor) else {
                        return Ok(None);
                    };
                    // The authenticator must name the account the credential was made for.
                    let handle = credential.get_user_unique_id();
                    if handle != Some(record.user_handle.as_bytes().as_slice()) {
                        tracing::info!(
                            user = %user.username,
                            passkey = factor.id.as_str(),
                            "a passkey login named another user handle; refused"
                        );
                        return Ok(None);
                    }
                    let result = rp.webauthn().finish_discoverable_authentication_v2(
                        &credential,
                        state,
                        &record.passkey,
                    );
                    self.accept_assertion(&user, factor.clone(), record, result)
                        .await
                },
            )
            .await?;
        let backup_eligible = verdict.ok_or(PasskeyError::Invalid)?;
        Ok((
            user,
            Authentication {
                amr: Amr::verified_key(backup_eligible),
                auth_time: self.now(),
            },
        ))
    }

    /// A passkey's record, if it may sign in here: confirmed, readable, and registered for
    /// the RP ID now configured.
    fn usable(&self, rp: &PasskeyConfig, user: &User, factor: &Factor) -> Option<PasskeyRecord> {
        let record = PasskeyRecord::from_factor(factor).filter(|_| factor.confirmed)?;
        if record.rp_id != rp.rp_id() {
            tracing::warn!(
                user = %user.username,
                passkey = factor.id.as_str(),
                registered_for = record.rp_id.as_str(),
                rp_id = rp.rp_id(),
                "a passkey registered for another RP ID was refused"
            );
            return None;
        }
        Some(record)
    }

    /// After the library's verdict on an assertion: refuse it (logged), or move the
    /// signature counter forwards (atomically) and store the credential's new state.
    /// `Some(backup_eligible)` when accepted.
    async fn accept_assertion(
        &self,
        user: &User,
        factor: Factor,
        mut record: PasskeyRecord,
        result: Result<AuthenticationResult, WebauthnError>,
    ) -> Result<Option<bool>, LoginError> {
        let result = match result {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                self.counter_regressed(user, factor, record, None).await?;
                return Ok(None);
            }
            Err(e) => {
                tracing::info!(
                    user = %user.username,
                    passkey = factor.id.as_str(),
                    error = %e,
                    "a passkey assertion was refused"
                );
                return Ok(None);
            }
        };
        let now = self.now();
        let counter = i64::from(result.counter());
        if (counter > 0 || factor.counter > 0)
            && !self
                .users
                .advance_factor(user.id, &factor.id, counter, now)
                .await?
        {
            self.counter_regressed(user, factor, record, Some(counter))
                .await?;
            return Ok(None);
        }
        record.passkey.update_credential(&result);
        record.backup_state = result.backup_state();
        record.backup_eligible |= result.backup_eligible();
        let mut used = factor;
        used.data = record.to_bytes();
        used.last_used_at = Some(now);
        self.users.update_factor(&used).await?;
        Ok(Some(result.backup_eligible()))
    }

    /// A signature counter that did not grow: log it and record it on the passkey.
    async fn counter_regressed(
        &self,
        user: &User,
        factor: Factor,
        mut record: PasskeyRecord,
        presented: Option<i64>,
    ) -> Result<(), StoreError> {
        let now: UnixTime = self.now();
        tracing::warn!(
            user = %user.username,
            passkey = factor.id.as_str(),
            name = factor.name.as_str(),
            stored_counter = factor.counter,
            presented_counter = presented,
            "a passkey's signature counter went backwards: the key may have been copied; \
             the login was refused"
        );
        record.counter_regressed_at = Some(now.secs());
        let mut flagged = factor;
        flagged.data = record.to_bytes();
        self.users.update_factor(&flagged).await?;
        Ok(())
    }
}
