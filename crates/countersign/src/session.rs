//! Server-side sessions: ids, signed cookie values, records, idle and absolute expiry.
//!
//! A session has a secret 256-bit [`SessionToken`]. The cookie carries
//! `<token>.<mac>`, the MAC made with the [`Purpose::SessionCookie`] subkey; a cookie whose
//! MAC fails is refused before any store lookup. The store never sees the token: records
//! are keyed by [`SessionKey`], the SHA-256 of the token, so a leaked database (or a
//! session list shown to its owner) yields nothing that can be put in a cookie.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::b64;
use crate::clock::UnixTime;
use crate::keys::{KeyRing, Purpose, Subkey};
use crate::mfa::Amr;
use crate::user::{Role, UserId, Username};

/// The secret part of a session: 32 random bytes. Redacted, zeroized.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SessionToken([u8; 32]);

impl SessionToken {
    /// A fresh random token.
    pub fn generate() -> Self {
        Self(crate::random::bytes())
    }

    /// The store key for this token.
    pub fn key(&self) -> SessionKey {
        SessionKey(b64::encode(&Sha256::digest(self.0)))
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken([redacted])")
    }
}

/// A session's public id: base64url SHA-256 of its token (43 characters). Safe to show
/// to the session's owner and to log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SessionKey(String);

impl SessionKey {
    /// Parse a key as given back by a client (e.g. `DELETE /api/sessions/{id}`).
    pub fn parse(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        (s.len() == 43 && matches!(b64::decode_into(s.as_bytes(), &mut out), Ok(32)))
            .then(|| Self(s.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Signs and checks session cookie values with every key of a ring (sign with the
/// current key's subkey, accept any, so a rotation logs nobody out).
pub struct CookieSigner {
    subkeys: Vec<Subkey>,
}

impl fmt::Debug for CookieSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieSigner([redacted])")
    }
}

impl CookieSigner {
    /// A signer for `ring`.
    pub fn new(ring: &KeyRing) -> Self {
        Self {
            subkeys: ring.subkeys(Purpose::SessionCookie),
        }
    }

    /// The cookie value `<token>.<mac>` (87 characters).
    pub fn sign(&self, token: &SessionToken) -> String {
        let mac = self.subkeys[0].mac(&[&token.0]);
        let mut out = b64::encode(&token.0);
        out.push('.');
        b64::encode_into(&mac, &mut out);
        out
    }

    /// The token in a cookie value, if its MAC matches a key of the ring. Nothing else is
    /// looked at before the MAC matches; comparisons are constant-time.
    pub fn open(&self, value: &str) -> Option<SessionToken> {
        let (id, mac) = value.split_once('.')?;
        let mut token = SessionToken([0u8; 32]);
        let mut tag = [0u8; 32];
        if id.len() != 43 || mac.len() != 43 {
            return None;
        }
        if b64::decode_into(id.as_bytes(), &mut token.0) != Ok(32)
            || b64::decode_into(mac.as_bytes(), &mut tag) != Ok(32)
        {
            return None;
        }
        self.subkeys
            .iter()
            .any(|k| k.verify(&[&token.0], &tag))
            .then_some(token)
    }
}

/// Session lifetimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Idle timeout, seconds (default 30 min).
    pub idle_secs: i64,
    /// Absolute lifetime, seconds (default 12 h).
    pub absolute_secs: i64,
    /// "Last seen" is written at most this often (default 60 s).
    pub touch_every_secs: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_secs: 30 * 60,
            absolute_secs: 12 * 60 * 60,
            touch_every_secs: 60,
        }
    }
}

/// A stored session. `Debug` leaves out the CSRF token.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Public id (hash of the token).
    pub key: SessionKey,
    /// Whose session.
    pub user_id: UserId,
    /// The user's name when the session began.
    pub username: Username,
    /// The user's role when the session began (a role change ends the user's sessions).
    pub role: Role,
    /// When it began.
    pub created_at: UnixTime,
    /// When it was last used (written at most once per `touch_every_secs`).
    pub last_seen: UnixTime,
    /// Ends here unless used again: `min(last_seen + idle, absolute_deadline)`.
    pub idle_deadline: UnixTime,
    /// Ends here whatever happens.
    pub absolute_deadline: UnixTime,
    /// The synchronizer CSRF token for this session (43 base64url characters).
    pub csrf_token: String,
    /// The client's User-Agent at login (truncated), for the session list.
    pub user_agent: String,
    /// The client's address at login, for the session list.
    pub ip: String,
    /// How the user authenticated (RFC 8176 `amr`): `pwd` alone, or with a second factor
    /// and `mfa`.
    pub amr: Amr,
    /// When the user last proved who they are (RFC 9068 / OIDC `auth_time`): the login,
    /// or a later step-up. [`crate::auth::Auth::session`] callers ask it for freshness.
    pub auth_time: UnixTime,
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("key", &self.key)
            .field("user_id", &self.user_id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .field("last_seen", &self.last_seen)
            .field("idle_deadline", &self.idle_deadline)
            .field("absolute_deadline", &self.absolute_deadline)
            .field("csrf_token", &"[redacted]")
            .field("user_agent", &self.user_agent)
            .field("ip", &self.ip)
            .field("amr", &self.amr)
            .field("auth_time", &self.auth_time)
            .finish()
    }
}

impl SessionRecord {
    /// A new session for a user, starting at `now`.
    pub fn new(
        token: &SessionToken,
        user_id: UserId,
        username: Username,
        role: Role,
        policy: &SessionPolicy,
        now: UnixTime,
    ) -> Self {
        let absolute_deadline = now.add_secs(policy.absolute_secs);
        Self {
            key: token.key(),
            user_id,
            username,
            role,
            created_at: now,
            last_seen: now,
            idle_deadline: now.add_secs(policy.idle_secs).min(absolute_deadline),
            absolute_deadline,
            csrf_token: crate::random::opaque_token(),
            user_agent: String::new(),
            ip: String::new(),
            amr: Amr::PWD,
            auth_time: now,
        }
    }

    /// When the session ends if not used again: the earlier deadline.
    pub fn expires_at(&self) -> UnixTime {
        self.idle_deadline.min(self.absolute_deadline)
    }

    /// Whether the session is still valid at `now`.
    pub fn is_live(&self, now: UnixTime) -> bool {
        now < self.expires_at()
    }

    /// If "last seen" is due to be written at `now`, the new `(last_seen, idle_deadline)`.
    pub fn touch(&self, policy: &SessionPolicy, now: UnixTime) -> Option<(UnixTime, UnixTime)> {
        (now.secs() - self.last_seen.secs() >= policy.touch_every_secs).then(|| {
            (
                now,
                now.add_secs(policy.idle_secs).min(self.absolute_deadline),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    fn ring() -> KeyRing {
        KeyRing::single(SecretKey::generate(32).unwrap().0)
    }

    #[test]
    fn cookie_round_trip_and_tamper() {
        let ring = ring();
        let signer = CookieSigner::new(&ring);
        let token = SessionToken::generate();
        let value = signer.sign(&token);
        assert_eq!(value.len(), 87);
        assert_eq!(signer.open(&value), Some(token.clone()));
        let mut bytes = value.clone().into_bytes();
        for i in 0..bytes.len() {
            let orig = bytes[i];
            bytes[i] = if orig == b'A' { b'B' } else { b'A' };
            let s = String::from_utf8(bytes.clone()).unwrap();
            assert_eq!(signer.open(&s), None, "byte {i} changed");
            bytes[i] = orig;
        }
        assert_eq!(signer.open(""), None);
        assert_eq!(signer.open("."), None);
        assert_eq!(signer.open(&format!("{value}.x")), None);
        // Another key's cookie is refused.
        assert_eq!(CookieSigner::new(&self::ring()).open(&value), None);
    }

    #[test]
    fn rotation_keeps_cookies() {
        let (old, _) = SecretKey::generate(32).unwrap();
        let (new, _) = SecretKey::generate(32).unwrap();
        let before = CookieSigner::new(&KeyRing::single(old.clone()));
        let token = SessionToken::generate();
        let value = before.sign(&token);
        let after = CookieSigner::new(&KeyRing::new(new.clone(), vec![old]).unwrap());
        assert_eq!(after.open(&value), Some(token));
        let dropped = CookieSigner::new(&KeyRing::single(new));
        assert_eq!(dropped.open(&value), None);
    }

    #[test]
    fn cookie_mac_is_not_the_jwt_mac() {
        // A value made for one purpose is not accepted for another.
        let (key, _) = SecretKey::generate(32).unwrap();
        let t = SessionToken::generate();
        let session = key.subkey(Purpose::SessionCookie).mac(&[&t.0]);
        let csrf = key.subkey(Purpose::Csrf).mac(&[&t.0]);
        assert_ne!(session, csrf);
    }

    #[test]
    fn expiry_and_touch() {
        let policy = SessionPolicy {
            idle_secs: 100,
            absolute_secs: 250,
            touch_every_secs: 60,
        };
        let t = SessionToken::generate();
        let mut r = SessionRecord::new(
            &t,
            UserId(1),
            Username::parse("u").unwrap(),
            Role::user(),
            &policy,
            UnixTime(1000),
        );
        assert!(r.is_live(UnixTime(1099)));
        assert!(!r.is_live(UnixTime(1100)));
        assert_eq!(r.touch(&policy, UnixTime(1059)), None);
        let (seen, idle) = r.touch(&policy, UnixTime(1060)).unwrap();
        assert_eq!((seen, idle), (UnixTime(1060), UnixTime(1160)));
        r.last_seen = seen;
        r.idle_deadline = idle;
        // Idle extension never passes the absolute deadline.
        let (_, idle) = r.touch(&policy, UnixTime(1200)).unwrap();
        assert_eq!(idle, UnixTime(1250));
        assert!(!r.is_live(UnixTime(1250)));
    }

    #[test]
    fn debug_leaves_out_the_csrf_token() {
        let r = SessionRecord::new(
            &SessionToken::generate(),
            UserId(1),
            Username::parse("u").unwrap(),
            Role::user(),
            &SessionPolicy::default(),
            UnixTime(1000),
        );
        let shown = format!("{r:?}");
        assert!(!shown.contains(&r.csrf_token), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn key_parse() {
        let k = SessionToken::generate().key();
        assert_eq!(SessionKey::parse(k.as_str()), Some(k));
        assert_eq!(SessionKey::parse("nope"), None);
        assert_eq!(SessionKey::parse(&"=".repeat(43)), None);
        assert!(!format!("{:?}", SessionToken::generate()).contains('='));
    }
}
