//! The key layout. Every key starts with the configured prefix (`countersign:` by
//! default); the Lua scripts in [`crate::scripts`] build the same names from the prefix, so
//! the two must change together.
//!
//! Expiry times are the deadline named plus the grace ([`crate::RedisOptions::expiry_grace`]).
//!
//! | key | type | holds | expires |
//! |---|---|---|---|
//! | `session:<key>` | hash | a session record | at the earlier of its deadlines, moved by each touch |
//! | `user:<id>:sessions` | sorted set | the user's session keys, score = created at | at the latest absolute deadline of its members |
//! | `sessions:by_expiry` | sorted set | every session key, score = when it ends | never (trimmed by the sweep) |
//! | `family:<id>` | hash | a refresh family (deadlines, revoked flag) | at the family's absolute deadline |
//! | `family:<id>:tokens` | set | the family's token hashes | at the family's absolute deadline |
//! | `refresh:<hash>` | hash | a token's family and retired flag | at the family's absolute deadline |
//! | `user:<id>:families` | set | the user's family ids | at the latest absolute deadline of its members |
//! | `families:by_expiry` | sorted set | every family id, score = when it ends (0 once revoked) | never (trimmed by the sweep) |
//! | `jti:<jti>` | string | deny-until time | at the deny-until time |
//! | `user:<id>:issued_before` | string | the issued-before mark | never (one small key per user who logged out everywhere) |
//! | `throttle:<key>` | hash | count and window end | at the window end |
//! | `attempts:<key>` | hash | login attempts: failures, in flight, window end, back-off | one window length past the window end |

use countersign::refresh::{FamilyId, RefreshHash};
use countersign::session::SessionKey;
use countersign::user::UserId;
use sha2::{Digest, Sha256};

/// Names of the keys under one prefix.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

/// Caller-chosen parts of a key (a throttle key holds the username a client typed) longer
/// than this are replaced by their SHA-256, so a client cannot make the server store
/// arbitrarily long keys.
const MAX_PART: usize = 128;

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut out = String::with_capacity(
            self.prefix.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>(),
        );
        out.push_str(&self.prefix);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            out.push_str(p);
        }
        out
    }

    pub(crate) fn session(&self, key: &SessionKey) -> String {
        self.key(&["session", key.as_str()])
    }

    pub(crate) fn user_sessions(&self, user: UserId) -> String {
        self.key(&["user", &user.to_string(), "sessions"])
    }

    pub(crate) fn sessions_by_expiry(&self) -> String {
        self.key(&["sessions", "by_expiry"])
    }

    pub(crate) fn family(&self, id: &FamilyId) -> String {
        self.key(&["family", &id.0])
    }

    pub(crate) fn family_tokens(&self, id: &FamilyId) -> String {
        self.key(&["family", &id.0, "tokens"])
    }

    pub(crate) fn refresh(&self, hash: &RefreshHash) -> String {
        self.key(&["refresh", hash.as_str()])
    }

    pub(crate) fn user_families(&self, user: UserId) -> String {
        self.key(&["user", &user.to_string(), "families"])
    }

    pub(crate) fn families_by_expiry(&self) -> String {
        self.key(&["families", "by_expiry"])
    }

    pub(crate) fn jti(&self, jti: &str) -> String {
        self.key(&["jti", &bounded(jti)])
    }

    pub(crate) fn issued_before(&self, user: UserId) -> String {
        self.key(&["user", &user.to_string(), "issued_before"])
    }

    pub(crate) fn throttle(&self, key: &str) -> String {
        self.key(&["throttle", &bounded(key)])
    }

    pub(crate) fn attempts(&self, key: &str) -> String {
        self.key(&["attempts", &bounded(key)])
    }
}

/// `part` itself when short, else `sha256:<hex>` of it.
fn bounded(part: &str) -> std::borrow::Cow<'_, str> {
    if part.len() <= MAX_PART {
        return part.into();
    }
    let digest = Sha256::digest(part.as_bytes());
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out.into()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let k = Keys::new("cs:");
        assert_eq!(k.user_sessions(UserId(7)), "cs:user:7:sessions");
        assert_eq!(k.throttle("acct:alice"), "cs:throttle:acct:alice");
        assert_eq!(k.family_tokens(&FamilyId("f".into())), "cs:family:f:tokens");
        assert_eq!(k.issued_before(UserId(-1)), "cs:user:-1:issued_before");
    }

    #[test]
    fn long_parts_are_hashed() {
        let k = Keys::new("cs:");
        let long = "x".repeat(10_000);
        let key = k.throttle(&long);
        assert!(key.starts_with("cs:throttle:sha256:"), "{key}");
        assert_eq!(key.len(), "cs:throttle:sha256:".len() + 64);
        assert_ne!(k.throttle(&"y".repeat(10_000)), key);
        assert_eq!(
            k.jti(&"a".repeat(128)),
            format!("cs:jti:{}", "a".repeat(128))
        );
    }
}
