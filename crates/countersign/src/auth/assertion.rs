//! Tokens the service signs for someone else to verify: the identity assertion a reverse
//! proxy passes to the application behind it (forward authentication).

use super::Auth;
use crate::jwt::Claims;
use crate::signing::SignError;

impl Auth {
    /// Sign `claims` with what signs access tokens: the asymmetric key when one is set
    /// (its `iss`, when configured, replaces `claims.iss`), else HS256 with the current key
    /// of the ring. The caller chooses every claim; give such tokens an `aud`, so that they
    /// are never accepted as access tokens here (bearer verification refuses an `aud` it
    /// was not configured to expect).
    ///
    /// # Errors
    /// [`SignError`] when an ES256 signature cannot get randomness from the OS.
    pub fn sign_claims(&self, claims: &mut Claims) -> Result<String, SignError> {
        self.token_keys
            .load()
            .encode(&self.keys.load().ring, claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testkit::*;
    use crate::jwt::{self, Validation};

    #[tokio::test]
    async fn assertions_verify_with_their_audience_and_are_not_access_tokens() {
        let f = fixture();
        let now = f.auth.now();
        let mut claims = Claims::new(now.add_secs(60));
        claims.sub = Some("1".to_owned());
        claims.username = Some("alice".to_owned());
        claims.iat = Some(now);
        claims.aud = vec!["https://app.example.test".to_owned()];
        let token = f.auth.sign_claims(&mut claims).unwrap();
        let ring = KeyRing::single(f.key.clone());
        let v = Validation {
            audience: Some("https://app.example.test".to_owned()),
            ..Validation::default()
        };
        let verified = jwt::verify(&ring, &v, &token, now).unwrap();
        assert_eq!(verified.claims.username.as_deref(), Some("alice"));
        assert!(matches!(
            f.auth.verify_bearer(&token).await,
            Err(crate::auth::BearerError::Jwt(jwt::JwtError::WrongAudience))
        ));
    }
}
