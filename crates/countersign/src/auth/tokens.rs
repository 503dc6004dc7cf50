//! Token pairs, refresh rotation, revocation and bearer verification.

use zeroize::Zeroizing;

use super::{Auth, Authentication, BearerError, Method, Principal, RefreshError, TokenPair};
use crate::clock::UnixTime;
use crate::invalidation::Invalidation;
use crate::jwt::Claims;
use crate::mfa::Amr;
use crate::refresh::{RefreshFamily, RefreshToken, RotateOutcome};
use crate::session::SessionRecord;
use crate::store::StoreError;
use crate::user::User;

impl Auth {
    /// Issue an access token and start a refresh family for `user`.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn issue_tokens(&self, user: &User) -> Result<TokenPair, StoreError> {
        let authn = Authentication::password(self.now());
        self.issue_tokens_with(user, authn).await
    }

    /// [`Auth::issue_tokens`] for a login proved by `authn`: every access token of the
    /// family, refreshed ones too, carries its `amr` and `auth_time`.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn issue_tokens_with(
        &self,
        user: &User,
        authn: Authentication,
    ) -> Result<TokenPair, StoreError> {
        let now = self.now();
        // Read and sign before the family is created: nothing that can fail comes after it.
        let mark = self.store.issued_before(user.id).await?;
        let access_token = self.access_token(user, authn, mark, now)?;
        let mut family = RefreshFamily::new(user.id, &self.config.refresh, now);
        family.amr = authn.amr;
        family.auth_time = authn.auth_time;
        let refresh = RefreshToken::generate();
        let hash = self.keys.load().refresh.hash(&refresh);
        self.store.create_family(&family, &hash).await?;
        Ok(self.pair(access_token, &refresh))
    }

    /// The access token half of a pair, given the user's logout-everywhere `mark` (read
    /// before anything was committed; see [`Auth::refresh`]). `iat` is never earlier than
    /// the mark, so a login in the same second as a logout-everywhere is not revoked by it
    /// (marks are `now + 1`: `iat` has whole seconds). Signed with the asymmetric key when
    /// one is set, else HS256. Called before anything is committed: an ES256 signature
    /// needs the OS random source, and its (never expected) failure is a 503 like a store
    /// outage, leaving nothing half done.
    fn access_token(
        &self,
        user: &User,
        authn: Authentication,
        mark: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<String, StoreError> {
        let mut claims = Claims::new(now.add_secs(self.config.issuance.ttl_secs));
        claims.sub = Some(user.id.to_string());
        claims.username = Some(user.username.as_str().to_owned());
        claims.role = Some(user.role.as_str().to_owned());
        claims.iat = Some(mark.map_or(now, |m| m.max(now)));
        claims.jti = Some(crate::random::token_id());
        claims.iss.clone_from(&self.config.issuance.issuer);
        claims.aud = self.config.issuance.audience.iter().cloned().collect();
        claims.extra.insert(
            "amr".to_owned(),
            authn.amr.names().map(serde_json::Value::from).collect(),
        );
        claims
            .extra
            .insert("auth_time".to_owned(), authn.auth_time.secs().into());
        self.token_keys
            .load()
            .encode_access(&self.keys.load().ring, &mut claims)
            .map_err(crate::store::unavailable)
    }

    /// A pair of a signed access token and the new refresh token.
    fn pair(&self, access_token: String, refresh: &RefreshToken) -> TokenPair {
        TokenPair {
            access_token,
            expires_in: self.config.issuance.ttl_secs,
            refresh_token: Zeroizing::new(refresh.to_text()),
        }
    }

    /// Exchange a refresh token for a new pair, retiring it. A retired token presented
    /// again revokes its family; a token whose user is gone or disabled is refused and its
    /// family revoked.
    ///
    /// Every store read happens before the rotation commits: once the presented token is
    /// retired, the client holds nothing else, so a failure after that point would turn its
    /// retry into a "reuse" that revokes the family. A failed read leaves the token as it
    /// was, and the client can retry with it.
    ///
    /// # Errors
    /// [`RefreshError`].
    pub async fn refresh(&self, presented: &str) -> Result<TokenPair, RefreshError> {
        let token = RefreshToken::parse(presented).ok_or(RefreshError::Invalid)?;
        let now = self.now();
        let next = RefreshToken::generate();
        let (candidates, next_hash) = {
            let keys = self.keys.load();
            (keys.refresh.candidates(&token), keys.refresh.hash(&next))
        };
        // `None`: unknown, ended, revoked or already retired. The rotation says which (and
        // revokes the family of a retired one), and nothing more is read.
        let ready = match self.store.peek_family(&candidates, now).await? {
            Some(family) => {
                let user = self.users.user_by_id(family.user_id).await?;
                let Some(user) = user.filter(|u| !u.disabled) else {
                    // The user is gone or disabled: nobody may use this family again.
                    self.store.revoke_family(&family.id).await?;
                    return Err(RefreshError::Invalid);
                };
                let mark = self.store.issued_before(user.id).await?;
                let authn = Authentication {
                    amr: family.amr,
                    auth_time: family.auth_time,
                };
                Some((family.id, self.access_token(&user, authn, mark, now)?))
            }
            None => None,
        };
        let outcome = self
            .store
            .rotate(&candidates, &next_hash, self.config.refresh.idle_secs, now)
            .await?;
        match outcome {
            RotateOutcome::Rotated { family } => match ready {
                Some((id, access_token)) if id == family.id => Ok(self.pair(access_token, &next)),
                // Not live when peeked, yet rotated: a token never becomes live again, so
                // this needs a store that contradicts itself. Refuse rather than sign
                // without the reads.
                _ => Err(RefreshError::Invalid),
            },
            RotateOutcome::Reused { .. } => Err(RefreshError::Reused),
            RotateOutcome::Invalid => Err(RefreshError::Invalid),
        }
    }

    /// Revoke a token (RFC 7009): a refresh token ends its family; an access token (whose
    /// signature verifies) has its `jti` denied until it expires. Unknown tokens are not an
    /// error, as RFC 7009 §2.2 requires.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn revoke(&self, token: &str) -> Result<(), StoreError> {
        if let Some(refresh) = RefreshToken::parse(token) {
            let candidates = self.keys.load().refresh.candidates(&refresh);
            self.store.revoke_by_token(&candidates).await?;
            return Ok(());
        }
        let verified = {
            let keys = self.keys.load();
            self.token_keys
                .load()
                .verify(&keys.ring, &self.config.validation, token, self.now())
        };
        if let Ok(v) = verified
            && let Some(jti) = v.claims.jti
        {
            self.store.deny_jti(&jti, v.claims.exp).await?;
            self.denied.put(jti.clone(), true, self.gate.ticket());
            self.announce(&[Invalidation::Jti(jti)]).await;
        }
        Ok(())
    }

    /// Verify a bearer token: the JWT (signature first, then claims), then revocation (the
    /// `jti` denylist and the user's logout-everywhere mark).
    ///
    /// # Errors
    /// [`BearerError`].
    pub async fn verify_bearer(&self, token: &str) -> Result<Principal, BearerError> {
        let now = self.now();
        let claims = {
            let keys = self.keys.load();
            self.token_keys
                .load()
                .verify(&keys.ring, &self.config.validation, token, now)?
                .claims
        };
        self.principal_from_claims(claims, now).await
    }

    async fn principal_from_claims(
        &self,
        claims: Claims,
        now: UnixTime,
    ) -> Result<Principal, BearerError> {
        let user_id = claims.sub.as_deref().and_then(|s| s.parse().ok());
        if let Some(jti) = &claims.jti {
            let denied = match self.denied.get(jti) {
                Some(d) => d,
                None => {
                    let ticket = self.gate.ticket();
                    let d = self.store.is_jti_denied(jti, now).await?;
                    self.denied.put(jti.clone(), d, ticket);
                    d
                }
            };
            if denied {
                return Err(BearerError::Revoked);
            }
        }
        if let Some(id) = user_id {
            let mark = match self.issued_before.get(&id) {
                Some(m) => m,
                None => {
                    let ticket = self.gate.ticket();
                    let m = self.store.issued_before(id).await?;
                    self.issued_before.put(id, m, ticket);
                    m
                }
            };
            if let Some(mark) = mark
                && claims.iat.is_none_or(|iat| iat < mark)
            {
                return Err(BearerError::Revoked);
            }
        }
        let username = claims
            .username
            .or_else(|| claims.sub.clone())
            .ok_or(BearerError::NoSubject)?;
        // The signature was checked before any claim was read, so these are the issuer's.
        let amr = match claims.extra.get("amr") {
            Some(serde_json::Value::Array(names)) => {
                Amr::from_names(names.iter().filter_map(serde_json::Value::as_str))
            }
            _ => Amr::empty(),
        };
        let auth_time = claims
            .extra
            .get("auth_time")
            .and_then(serde_json::Value::as_i64)
            .map(UnixTime);
        Ok(Principal {
            user_id,
            username,
            role: claims.role.unwrap_or_default(),
            method: Method::Bearer {
                jti: claims.jti,
                exp: claims.exp,
            },
            amr,
            auth_time,
        })
    }

    /// The principal of a live session.
    pub fn principal_from_session(record: &SessionRecord) -> Principal {
        Principal {
            user_id: Some(record.user_id),
            username: record.username.as_str().to_owned(),
            role: record.role.as_str().to_owned(),
            method: Method::Session {
                key: record.key.clone(),
                csrf_token: record.csrf_token.clone(),
            },
            amr: record.amr,
            auth_time: Some(record.auth_time),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testkit::*;

    #[tokio::test]
    async fn bearer_refresh_rotation_and_reuse() {
        let f = fixture();
        let a = alice(&f).await;
        let pair = f.auth.issue_tokens(&a).await.unwrap();
        let p = f.auth.verify_bearer(&pair.access_token).await.unwrap();
        assert_eq!(p.username, "alice");
        assert_eq!(p.user_id, Some(a.id));
        assert_eq!(pair.expires_in, 15 * 60);

        let next = f.auth.refresh(&pair.refresh_token).await.unwrap();
        assert!(f.auth.verify_bearer(&next.access_token).await.is_ok());
        // The retired token again: reuse, and the family's live token dies too.
        assert!(matches!(
            f.auth.refresh(&pair.refresh_token).await,
            Err(RefreshError::Reused)
        ));
        assert!(matches!(
            f.auth.refresh(&next.refresh_token).await,
            Err(RefreshError::Invalid)
        ));
        assert!(matches!(
            f.auth.refresh("garbage").await,
            Err(RefreshError::Invalid)
        ));
    }

    #[tokio::test]
    async fn a_failed_read_during_refresh_leaves_the_token_usable() {
        for op in ["peek_family", "user_by_id", "issued_before", "rotate"] {
            let (auth, store) = failing_fixture();
            let a = auth
                .create_user("alice", Password::new(PW), Role::user())
                .await
                .unwrap();
            let pair = auth.issue_tokens(&a).await.unwrap();

            store.fail(op);
            let e = auth.refresh(&pair.refresh_token).await.unwrap_err();
            assert!(
                matches!(&e, RefreshError::Store(s) if s.is_unavailable()),
                "{op}: {e:?}"
            );

            // The client retries with the same token: not a reuse, the family lives on.
            store.recover();
            let next = auth
                .refresh(&pair.refresh_token)
                .await
                .unwrap_or_else(|e| panic!("{op}: the retry failed: {e:?}"));
            assert!(auth.verify_bearer(&next.access_token).await.is_ok(), "{op}");
            assert!(auth.refresh(&next.refresh_token).await.is_ok(), "{op}");
        }
    }

    #[tokio::test]
    async fn a_failed_read_during_issue_creates_no_family() {
        let (auth, store) = failing_fixture();
        let a = auth
            .create_user("alice", Password::new(PW), Role::user())
            .await
            .unwrap();
        store.fail("issued_before");
        let e = auth.issue_tokens(&a).await.unwrap_err();
        assert!(e.is_unavailable(), "{e:?}");
        store.recover();
        // Long after any family would have ended, the sweep finds none to remove.
        assert_eq!(
            store
                .inner()
                .sweep_families(T0.add_secs(1 << 30))
                .await
                .unwrap(),
            0
        );
        let pair = auth.issue_tokens(&a).await.unwrap();
        assert!(auth.refresh(&pair.refresh_token).await.is_ok());
    }

    #[tokio::test]
    async fn refresh_for_a_removed_user_is_refused_and_ends_the_family() {
        let (auth, store) = failing_fixture();
        let a = auth
            .create_user("alice", Password::new(PW), Role::user())
            .await
            .unwrap();
        let pair = auth.issue_tokens(&a).await.unwrap();
        // Removed behind the service's back (e.g. by hand in the database): its families
        // are still there.
        assert!(store.inner().delete_user(a.id).await.unwrap());

        // Ending the family failed: refused, and nothing changed.
        store.fail("revoke_family");
        let e = auth.refresh(&pair.refresh_token).await.unwrap_err();
        assert!(
            matches!(&e, RefreshError::Store(s) if s.is_unavailable()),
            "{e:?}"
        );
        store.recover();
        assert!(matches!(
            auth.refresh(&pair.refresh_token).await,
            Err(RefreshError::Invalid)
        ));
        // The family is revoked (not merely left with a retired token): presenting the
        // token again is still plainly invalid, never a "reuse".
        let candidates = auth
            .keys
            .load()
            .refresh
            .candidates(&RefreshToken::parse(&pair.refresh_token).unwrap());
        assert_eq!(store.peek_family(&candidates, T0).await.unwrap(), None);
        assert!(matches!(
            auth.refresh(&pair.refresh_token).await,
            Err(RefreshError::Invalid)
        ));
    }

    #[tokio::test]
    async fn access_token_expires_and_revokes() {
        let f = fixture();
        let a = alice(&f).await;
        let pair = f.auth.issue_tokens(&a).await.unwrap();
        f.auth.revoke(&pair.access_token).await.unwrap();
        assert!(matches!(
            f.auth.verify_bearer(&pair.access_token).await,
            Err(BearerError::Revoked)
        ));
        let pair = f.auth.issue_tokens(&a).await.unwrap();
        f.clock.advance(15 * 60 + 30);
        let e = f.auth.verify_bearer(&pair.access_token).await.unwrap_err();
        assert!(matches!(&e, BearerError::Jwt(j) if j.is_expired()), "{e:?}");
        // Revoking a refresh token ends its family; unknown tokens are fine (RFC 7009).
        f.auth.revoke(&pair.refresh_token).await.unwrap();
        assert!(matches!(
            f.auth.refresh(&pair.refresh_token).await,
            Err(RefreshError::Invalid)
        ));
        f.auth.revoke("not a token").await.unwrap();
    }
}
