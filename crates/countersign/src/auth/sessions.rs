//! Cookie sessions: start, look up, list, end.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{Auth, Authentication, SessionError};
use crate::invalidation::Invalidation;
use crate::session::{SessionKey, SessionRecord, SessionToken};
use crate::store::StoreError;
use crate::user::{User, UserId};

impl Auth {
    /// Start a session for `user`: a fresh id (never one the client chose). Returns the
    /// cookie value and the record.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn start_session(
        &self,
        user: &User,
        user_agent: &str,
        ip: &str,
    ) -> Result<(Zeroizing<String>, SessionRecord), StoreError> {
        let authn = Authentication::password(self.now());
        self.start_session_with(user, authn, user_agent, ip).await
    }

    /// [`Auth::start_session`] for a login proved by `authn` (a second factor, a passkey,
    /// a step-up): the session carries its `amr` and `auth_time`.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn start_session_with(
        &self,
        user: &User,
        authn: Authentication,
        user_agent: &str,
        ip: &str,
    ) -> Result<(Zeroizing<String>, SessionRecord), StoreError> {
        let now = self.now();
        loop {
            let token = SessionToken::generate();
            let mut record = SessionRecord::new(
                &token,
                user.id,
                user.username.clone(),
                user.role.clone(),
                &self.config.sessions,
                now,
            );
            record.user_agent = user_agent.chars().take(256).collect();
            record.ip = ip.chars().take(64).collect();
            record.amr = authn.amr;
            record.auth_time = authn.auth_time;
            let ticket = self.gate.ticket();
            match self.store.create_session(&record).await {
                // 2^-256 odds; try a new id rather than fail.
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
                Ok(()) => {
                    let cookie = Zeroizing::new(self.keys.load().cookies.sign(&token));
                    self.sessions
                        .put(record.key.clone(), Some(Arc::new(record.clone())), ticket);
                    return Ok((cookie, record));
                }
            }
        }
    }

    /// The live session a cookie value names. The MAC is checked before any lookup;
    /// "last seen" is written when due.
    ///
    /// # Errors
    /// [`SessionError::Invalid`] for a bad, unknown, ended or expired session.
    pub async fn session(&self, cookie_value: &str) -> Result<Arc<SessionRecord>, SessionError> {
        let token = self
            .keys
            .load()
            .cookies
            .open(cookie_value)
            .ok_or(SessionError::Invalid)?;
        let key = token.key();
        let now = self.now();
        let record = match self.sessions.get(&key) {
            Some(cached) => cached,
            None => {
                let ticket = self.gate.ticket();
                let loaded = self.store.load_session(&key, now).await?.map(Arc::new);
                self.sessions.put(key.clone(), loaded.clone(), ticket);
                loaded
            }
        };
        let record = record
            .filter(|r| r.is_live(now))
            .ok_or(SessionError::Invalid)?;
        if let Some((seen, idle)) = record.touch(&self.config.sessions, now) {
            let ticket = self.gate.ticket();
            if !self.store.touch_session(&key, seen, idle).await? {
                self.sessions.put(key, None, ticket);
                return Err(SessionError::Invalid);
            }
            let mut updated = (*record).clone();
            updated.last_seen = seen;
            updated.idle_deadline = idle;
            let updated = Arc::new(updated);
            self.sessions.put(key, Some(Arc::clone(&updated)), ticket);
            return Ok(updated);
        }
        Ok(record)
    }

    /// End one session (logout), on every instance: the other instances are told to drop
    /// it from their caches. Returns whether it existed.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn end_session(&self, key: &SessionKey) -> Result<bool, StoreError> {
        self.sessions.put(key.clone(), None, self.gate.ticket());
        let existed = self.store.delete_session(key).await?;
        self.announce(&[Invalidation::Session(key.clone())]).await;
        Ok(existed)
    }

    /// A user's live sessions, newest first.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn list_sessions(&self, user: UserId) -> Result<Vec<SessionRecord>, StoreError> {
        self.store.list_user_sessions(user, self.now()).await
    }

    /// End one of a user's own sessions. False when the user has no such session (another
    /// user's session id is treated as unknown).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn revoke_session(&self, user: UserId, key: &SessionKey) -> Result<bool, StoreError> {
        let owned = self
            .store
            .list_user_sessions(user, self.now())
            .await?
            .iter()
            .any(|r| &r.key == key);
        if !owned {
            return Ok(false);
        }
        self.end_session(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testkit::*;

    #[tokio::test]
    async fn session_lifecycle() {
        let f = fixture();
        let a = alice(&f).await;
        let (cookie, record) = f.auth.start_session(&a, "ua", "1.2.3.4").await.unwrap();
        let loaded = f.auth.session(&cookie).await.unwrap();
        assert_eq!(loaded.key, record.key);
        // Idle: 30 minutes without use ends it.
        f.clock.advance(29 * 60);
        assert!(f.auth.session(&cookie).await.is_ok());
        f.clock.advance(29 * 60);
        assert!(
            f.auth.session(&cookie).await.is_ok(),
            "the touch moved the idle deadline"
        );
        f.clock.advance(31 * 60);
        assert!(matches!(
            f.auth.session(&cookie).await,
            Err(SessionError::Invalid)
        ));
    }

    #[tokio::test]
    async fn session_absolute_deadline() {
        let f = fixture();
        let a = alice(&f).await;
        let (cookie, _) = f.auth.start_session(&a, "", "").await.unwrap();
        for _ in 0..(12 * 60 / 20) - 1 {
            f.clock.advance(20 * 60);
            assert!(f.auth.session(&cookie).await.is_ok());
        }
        f.clock.advance(20 * 60);
        assert!(matches!(
            f.auth.session(&cookie).await,
            Err(SessionError::Invalid)
        ));
    }

    #[tokio::test]
    async fn logout_replay_and_tampered_cookie() {
        let f = fixture();
        let a = alice(&f).await;
        let (cookie, record) = f.auth.start_session(&a, "", "").await.unwrap();
        assert!(f.auth.end_session(&record.key).await.unwrap());
        assert!(matches!(
            f.auth.session(&cookie).await,
            Err(SessionError::Invalid)
        ));
        let mut forged = cookie.to_string();
        forged.replace_range(0..1, if forged.starts_with('A') { "B" } else { "A" });
        assert!(matches!(
            f.auth.session(&forged).await,
            Err(SessionError::Invalid)
        ));
    }

    #[tokio::test]
    async fn cached_session_sees_local_logout_at_once() {
        let f = fixture();
        let auth = Auth::new(
            KeyRing::single(f.key.clone()),
            AuthConfig::default(),
            f.store.clone(),
            f.store.clone(),
            f.auth.pool.clone(),
            Arc::new(f.clock.clone()),
        );
        let a = auth
            .create_user("bob", Password::new(PW), Role::user())
            .await
            .unwrap();
        let (cookie, record) = auth.start_session(&a, "", "").await.unwrap();
        assert!(auth.session(&cookie).await.is_ok());
        auth.end_session(&record.key).await.unwrap();
        assert!(matches!(
            auth.session(&cookie).await,
            Err(SessionError::Invalid)
        ));
    }

    #[tokio::test]
    async fn revoke_session_only_own() {
        let f = fixture();
        let a = alice(&f).await;
        let b = f
            .auth
            .create_user("bob", Password::new(PW), Role::user())
            .await
            .unwrap();
        let (_, rb) = f.auth.start_session(&b, "", "").await.unwrap();
        assert!(!f.auth.revoke_session(a.id, &rb.key).await.unwrap());
        assert_eq!(f.auth.list_sessions(b.id).await.unwrap().len(), 1);
        assert!(f.auth.revoke_session(b.id, &rb.key).await.unwrap());
        assert!(f.auth.list_sessions(b.id).await.unwrap().is_empty());
    }
}
