//! CSRF tokens: the session's and the pre-session cookie's.

use subtle::ConstantTimeEq;

use super::Auth;
use crate::b64;
use crate::session::SessionRecord;

/// How long a pre-session CSRF cookie (login and registration forms) stays good: long
/// enough for a login page left open over a working day, short enough that a stolen one
/// goes stale.
pub const PRE_SESSION_CSRF_TTL_SECS: i64 = 12 * 3600;

impl Auth {
    /// Whether `presented` is the session's CSRF token (constant time).
    pub fn check_session_csrf(&self, record: &SessionRecord, presented: &str) -> bool {
        record
            .csrf_token
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into()
    }

    /// A CSRF pair for a form shown before there is a session: the signed cookie value
    /// (`token.issued.mac`) and the token for the form. The cookie is good for
    /// [`PRE_SESSION_CSRF_TTL_SECS`] from now; show it again while it is
    /// ([`pre_session_csrf_token`](Self::pre_session_csrf_token)) so that a second tab
    /// does not break the first.
    pub fn pre_session_csrf(&self) -> (String, String) {
        let token = crate::random::opaque_token();
        let issued = self.now().secs().to_string();
        let mac =
            self.keys.load().csrf[0].mac(&[b"pre-session", token.as_bytes(), issued.as_bytes()]);
        let mut cookie = String::with_capacity(token.len() + issued.len() + 45);
        cookie.push_str(&token);
        cookie.push('.');
        cookie.push_str(&issued);
        cookie.push('.');
        b64::encode_into(&mac, &mut cookie);
        (cookie, token)
    }

    /// The form token of a pre-session cookie this server signed and that has not
    /// expired: the token to show again in a form. `None` for anything else.
    pub fn pre_session_csrf_token<'c>(&self, cookie: &'c str) -> Option<&'c str> {
        let mut fields = cookie.splitn(3, '.');
        let (token, issued, mac) = (fields.next()?, fields.next()?, fields.next()?);
        let mut tag = [0u8; 32];
        if mac.len() != 43 || b64::decode_into(mac.as_bytes(), &mut tag) != Ok(32) {
            return None;
        }
        let signed = self
            .keys
            .load()
            .csrf
            .iter()
            .any(|k| k.verify(&[b"pre-session", token.as_bytes(), issued.as_bytes()], &tag));
        if !signed {
            return None;
        }
        // Signed by us, so the time is ours: only its age is checked.
        let issued: i64 = issued.parse().ok()?;
        let age = self.now().secs().saturating_sub(issued);
        (0..PRE_SESSION_CSRF_TTL_SECS)
            .contains(&age)
            .then_some(token)
    }

    /// Whether a pre-session form token matches its signed, unexpired cookie (constant
    /// time).
    pub fn check_pre_session_csrf(&self, cookie: &str, presented: &str) -> bool {
        self.pre_session_csrf_token(cookie)
            .is_some_and(|token| bool::from(token.as_bytes().ct_eq(presented.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::testkit::*;

    #[tokio::test]
    async fn csrf_tokens() {
        let f = fixture();
        let (cookie, token) = f.auth.pre_session_csrf();
        assert!(f.auth.check_pre_session_csrf(&cookie, &token));
        assert!(!f.auth.check_pre_session_csrf(&cookie, "other"));
        let (other_cookie, _) = f.auth.pre_session_csrf();
        assert!(!f.auth.check_pre_session_csrf(&other_cookie, &token));
        let forged = format!("{token}.{}", "A".repeat(43));
        assert!(!f.auth.check_pre_session_csrf(&forged, &token));
        // The cookie is shown again while it is good, and expires.
        assert_eq!(f.auth.pre_session_csrf_token(&cookie), Some(token.as_str()));
        let (issued_token, rest) = cookie.split_once('.').unwrap();
        let (issued, mac) = rest.split_once('.').unwrap();
        let moved = format!(
            "{issued_token}.{}.{mac}",
            issued.parse::<i64>().unwrap() + 1
        );
        assert_eq!(
            f.auth.pre_session_csrf_token(&moved),
            None,
            "the time is signed"
        );
        f.clock.advance(PRE_SESSION_CSRF_TTL_SECS - 1);
        assert!(f.auth.check_pre_session_csrf(&cookie, &token));
        f.clock.advance(1);
        assert_eq!(f.auth.pre_session_csrf_token(&cookie), None);
        assert!(!f.auth.check_pre_session_csrf(&cookie, &token));
        let a = alice(&f).await;
        let (_, record) = f.auth.start_session(&a, "", "").await.unwrap();
        assert!(
            f.auth
                .check_session_csrf(&record, &record.csrf_token.clone())
        );
        assert!(!f.auth.check_session_csrf(&record, &token));
    }
}
