//! Push invalidation: every instance sharing a session store hears of every revocation, and
//! drops what its hot-path cache holds about it.
//!
//! The service publishes a message through the session store's [`Broadcast`] (Redis
//! `PUBLISH`, PostgreSQL `NOTIFY`) after each revocation it stores: a session ended, a
//! user's logout-everywhere mark moved (logout everywhere, a password or role change, a
//! removed or disabled account), an access token's `jti` denied. Refresh tokens need no
//! message: every refresh reads the store. A listener (in the storage crate) delivers each
//! message to a [`Receiver`], the service, which forgets the entries it names.
//!
//! Delivery is at most once, so a listener that is not connected — starting, or its
//! connection lost — says so ([`Receiver::unsubscribed`]) and the service then reads the
//! store for every request until the listener is back ([`Receiver::subscribed`]), when the
//! cache starts empty. The cache's TTL stays as a backstop for losses nobody notices (a
//! network that drops packets silently).
//!
//! # Wire format
//! A message is UTF-8 lines: `s:<session key>`, `u:<user id>` (the user's mark moved),
//! `j:<jti>`, or `*` (forget everything). A line that is none of these is read as `*`:
//! a message this version cannot read costs cache entries, never correctness. Messages are
//! at most [`MAX_MESSAGE`] bytes (PostgreSQL's `NOTIFY` takes under 8000); more items make
//! more messages.

use crate::session::SessionKey;
use crate::user::UserId;

/// The session store's channel, where messages are published: the store owns it.
pub use crate::store::Broadcast;

/// The largest message [`encode`] makes, bytes.
pub const MAX_MESSAGE: usize = 7_000;

/// Something cached that changed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalidation {
    /// A session ended (or its record changed).
    Session(SessionKey),
    /// A user's logout-everywhere mark moved: tokens issued before it are revoked.
    User(UserId),
    /// An access token's `jti` was denied.
    Jti(String),
    /// Forget everything.
    Everything,
}

impl Invalidation {
    fn line(&self) -> String {
        match self {
            Self::Session(key) => format!("s:{}", key.as_str()),
            Self::User(id) => format!("u:{id}"),
            // A `jti` is any string; one that would break the framing forgets everything.
            Self::Jti(jti) if !jti.contains(['\n', '\r']) && jti.len() < MAX_MESSAGE / 2 => {
                format!("j:{jti}")
            }
            Self::Jti(_) | Self::Everything => "*".to_owned(),
        }
    }

    fn parse(line: &str) -> Self {
        let parsed = match line.split_once(':') {
            Some(("s", key)) => SessionKey::parse(key).map(Self::Session),
            Some(("u", id)) => id.parse().ok().map(Self::User),
            Some(("j", jti)) => Some(Self::Jti(jti.to_owned())),
            _ => None,
        };
        parsed.unwrap_or(Self::Everything)
    }
}

/// `items` as messages of at most [`MAX_MESSAGE`] bytes (none for no items).
pub fn encode(items: &[Invalidation]) -> Vec<String> {
    let mut messages = Vec::new();
    let mut current = String::new();
    for item in items {
        let line = item.line();
        if !current.is_empty() && current.len() + 1 + line.len() > MAX_MESSAGE {
            messages.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        messages.push(current);
    }
    messages
}

/// The items of a message (an empty one names nothing).
pub fn decode(message: &str) -> Vec<Invalidation> {
    message
        .lines()
        .filter(|l| !l.is_empty())
        .map(Invalidation::parse)
        .collect()
}

/// Where a listener delivers: the service ([`crate::auth::Auth`] implements it).
pub trait Receiver: Send + Sync + 'static {
    /// The listener is subscribed: from now on every message reaches
    /// [`received`](Self::received). Called again after every reconnection.
    fn subscribed(&self);
    /// The listener is not subscribed (its connection is lost): messages may be missed
    /// until [`subscribed`](Self::subscribed).
    fn unsubscribed(&self);
    /// A message arrived.
    fn received(&self, message: &str);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionToken;

    #[test]
    fn round_trip_and_framing() {
        let key = SessionToken::generate().key();
        let items = vec![
            Invalidation::Session(key.clone()),
            Invalidation::User(UserId(-7)),
            Invalidation::Jti("abc-123".into()),
            Invalidation::Everything,
            Invalidation::Jti("evil\nu:1".into()),
        ];
        let messages = encode(&items);
        assert_eq!(messages.len(), 1);
        assert_eq!(
            decode(&messages[0]),
            vec![
                Invalidation::Session(key),
                Invalidation::User(UserId(-7)),
                Invalidation::Jti("abc-123".into()),
                Invalidation::Everything,
                Invalidation::Everything,
            ]
        );
        assert!(encode(&[]).is_empty());
        // What this version cannot read forgets everything.
        for garbage in ["x:1", "u:notanumber", "s:", "hello"] {
            assert_eq!(decode(garbage), vec![Invalidation::Everything], "{garbage}");
        }
    }

    #[test]
    fn many_items_make_several_messages_under_the_bound() {
        let items: Vec<_> = (0..2_000)
            .map(|_| Invalidation::Session(SessionToken::generate().key()))
            .collect();
        let messages = encode(&items);
        assert!(messages.len() > 1);
        assert!(messages.iter().all(|m| m.len() <= MAX_MESSAGE));
        let back: Vec<_> = messages.iter().flat_map(|m| decode(m)).collect();
        assert_eq!(back, items);
    }
}
