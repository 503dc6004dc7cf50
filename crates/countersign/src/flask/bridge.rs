//! The Flask bridge: a browser arriving with a valid Flask session cookie (signed with
//! the same `SECRET_KEY`, or one of `SECRET_KEY_FALLBACKS`) is signed in to a countersign
//! session once; a countersign login can write a Flask cookie back for the old app
//! running beside it; and a logout makes every Flask cookie signed before it useless here.
//!
//! # Order of checks
//! Size, shape, signature (constant time, every key of the ring), age against `max_age`,
//! payload, the user key: all before any store lookup ([`super::cookie`]). Then the user
//! (by name or id), then the user's logout cutoff, then a new session.
//!
//! # No replay after logout
//! A Flask cookie cannot be revoked: it is valid until it expires. So each logout (and
//! logout everywhere, a password or role change, a removal) records a per-user cutoff, and
//! a cookie signed before it (at a whole second, as itsdangerous signs: a cookie signed in
//! the second of the logout is refused too) is refused for the exchange. The cutoff lives
//! in the revocation store's denylist under `flask-logout:<user id>`, kept for
//! [`CUTOFF_HORIZON_SECS`] (longer than any cookie may live, see
//! [`MAX_MAX_AGE_SECS`]). The old Flask app itself still accepts such a cookie until it
//! expires: that limit, and how to shorten it, is in `docs/flask.md`.

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::cookie::{CookieError, DEFAULT_MAX_AGE_SECS, DEFAULT_SALT};
use crate::auth::Auth;
use crate::clock::UnixTime;
use crate::session::SessionRecord;
use crate::store::StoreError;
use crate::user::{User, UserId, Username};

/// The longest `max_age` accepted: 400 days, the longest browsers keep a cookie.
pub const MAX_MAX_AGE_SECS: i64 = 400 * 24 * 3600;

/// How long a logout cutoff is kept: past it, every cookie it refuses has expired anyway.
pub const CUTOFF_HORIZON_SECS: i64 = MAX_MAX_AGE_SECS;

/// Which session key names the user, and how it is looked up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserKey {
    /// `session["username"]`, the seeds' key: a username.
    #[default]
    Username,
    /// `session["user_id"]`: a user id (keep the old ids at import).
    UserId,
    /// `session["_user_id"]`, Flask-Login's key: a user id as text.
    FlaskLogin,
}

impl UserKey {
    /// The session dictionary's key.
    pub fn key(self) -> &'static str {
        match self {
            Self::Username => "username",
            Self::UserId => "user_id",
            Self::FlaskLogin => "_user_id",
        }
    }

    /// Parse the setting: `username`, `user_id` or `_user_id`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "username" => Some(Self::Username),
            "user_id" => Some(Self::UserId),
            "_user_id" => Some(Self::FlaskLogin),
            _ => None,
        }
    }
}

/// The bridge's settings (`[flask]` in the server's settings file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlaskBridge {
    /// The Flask app's `SESSION_COOKIE_NAME` (default `session`).
    pub cookie_name: String,
    /// Which session key names the user (default `username`).
    pub user_key: UserKey,
    /// The Flask app's `PERMANENT_SESSION_LIFETIME`, seconds (default 31 days, at most
    /// [`MAX_MAX_AGE_SECS`]).
    pub max_age_secs: i64,
    /// The signing salt (Flask's default `cookie-session`).
    pub salt: String,
    /// Whether a countersign login also sets a Flask session cookie, and logout clears it.
    pub write: bool,
}

impl Default for FlaskBridge {
    fn default() -> Self {
        Self {
            cookie_name: "session".to_owned(),
            user_key: UserKey::Username,
            max_age_secs: DEFAULT_MAX_AGE_SECS,
            salt: DEFAULT_SALT.to_owned(),
            write: false,
        }
    }
}

/// Why a Flask cookie was not exchanged. The bridge ignores the cookie in every case; the
/// kind is for the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The cookie itself failed (size, signature, age, payload).
    #[error(transparent)]
    Cookie(#[from] CookieError),
    /// The session does not name a user under the configured key.
    #[error("the Flask session names no user")]
    NoUser,
    /// No such user here.
    #[error("the Flask session names an unknown user")]
    UnknownUser,
    /// The cookie was signed before the user's last logout.
    #[error("the Flask session was signed before the user logged out")]
    LoggedOut,
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who a Flask session names.
enum Named {
    Name(Username),
    Id(UserId),
}

/// A new countersign session made from a Flask cookie.
#[derive(Debug)]
pub struct Exchanged {
    /// The user.
    pub user: User,
    /// The new session cookie's value.
    pub cookie: Zeroizing<String>,
    /// The new session.
    pub record: SessionRecord,
}

/// The denylist key holding a user's logout cutoff.
fn cutoff_key(user: UserId) -> String {
    format!("flask-logout:{user}")
}

/// Record that `user` logged out now: Flask cookies signed up to this second are refused
/// for the exchange from now on. Called by [`Auth::logout_everywhere`] and by a server's
/// logout.
///
/// # Errors
/// When the store fails.
pub async fn record_logout(auth: &Auth, user: UserId) -> Result<(), StoreError> {
    // Stored as "denied until cutoff + horizon"; a cookie signed at `ts` is refused when
    // `ts + horizon` is before that, i.e. when `ts` is before the cutoff. The store expires
    // the entry when no cookie it refuses can be alive.
    let cutoff = auth.now().add_secs(1);
    auth.store()
        .deny_jti(&cutoff_key(user), cutoff.add_secs(CUTOFF_HORIZON_SECS))
        .await
}

async fn logged_out_since(
    auth: &Auth,
    user: UserId,
    signed_at: UnixTime,
) -> Result<bool, StoreError> {
    auth.store()
        .is_jti_denied(&cutoff_key(user), signed_at.add_secs(CUTOFF_HORIZON_SECS))
        .await
}

impl FlaskBridge {
    /// Who the session data names, checked without any store.
    fn named(&self, data: &Map<String, Value>) -> Result<Named, ExchangeError> {
        let value = data.get(self.user_key.key()).ok_or(ExchangeError::NoUser)?;
        match (self.user_key, value) {
            (UserKey::Username, Value::String(name)) => Username::parse(name)
                .map(Named::Name)
                .map_err(|_| ExchangeError::UnknownUser),
            (UserKey::UserId | UserKey::FlaskLogin, Value::Number(n)) => n
                .as_i64()
                .map(|n| Named::Id(UserId(n)))
                .ok_or(ExchangeError::UnknownUser),
            (UserKey::UserId | UserKey::FlaskLogin, Value::String(s)) => s
                .parse::<i64>()
                .map(|n| Named::Id(UserId(n)))
                .map_err(|_| ExchangeError::UnknownUser),
            _ => Err(ExchangeError::NoUser),
        }
    }

    /// Verify a Flask cookie value and, if it names an existing user who has not logged
    /// out since it was signed, start a countersign session for them.
    ///
    /// # Errors
    /// [`ExchangeError`]: the caller ignores the cookie (and logs the kind).
    pub async fn exchange(
        &self,
        auth: &Auth,
        cookie: &str,
        user_agent: &str,
        ip: &str,
    ) -> Result<Exchanged, ExchangeError> {
        let session =
            auth.flask_cookie_keys(&self.salt)
                .open(cookie, self.max_age_secs, auth.now())?;
        let named = self.named(&session.data)?;
        let user = match named {
            Named::Name(name) => auth.users().user_by_name(name.as_str()).await?,
            Named::Id(id) => auth.users().user_by_id(id).await?,
        }
        // A disabled account gets no session from a Flask cookie either.
        .filter(|user| !user.disabled)
        .ok_or(ExchangeError::UnknownUser)?;
        if logged_out_since(auth, user.id, session.signed_at).await? {
            return Err(ExchangeError::LoggedOut);
        }
        let (cookie, record) = auth.start_session(&user, user_agent, ip).await?;
        Ok(Exchanged {
            user,
            cookie,
            record,
        })
    }

    /// The value of a Flask session cookie naming `user`, signed now with the current key,
    /// as the Flask app would set it after its own login.
    pub fn cookie_for(&self, auth: &Auth, user: &User) -> String {
        let mut data = Map::new();
        let value = match self.user_key {
            UserKey::Username => Value::String(user.username.as_str().to_owned()),
            UserKey::UserId => Value::from(user.id.0),
            UserKey::FlaskLogin => Value::String(user.id.to_string()),
        };
        data.insert(self.user_key.key().to_owned(), value);
        auth.flask_cookie_keys(&self.salt).seal(&data, auth.now())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::AuthConfig;
    use crate::clock::ManualClock;
    use crate::flask::cookie::CookieKeys;
    use crate::keys::{KeyRing, SecretKey};
    use crate::memory::MemoryStore;
    use crate::password::{HashParams, Hasher, HashingPool, Password};
    use crate::user::Role;

    const T0: UnixTime = UnixTime(1_800_000_000);

    struct Fixture {
        auth: Auth,
        clock: ManualClock,
        key: SecretKey,
        old: SecretKey,
        alice: User,
    }

    async fn fixture() -> Fixture {
        let (key, _) = SecretKey::generate(32).unwrap();
        let (old, _) = SecretKey::generate(32).unwrap();
        let store = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(T0);
        let pool = HashingPool::new(
            Hasher::new(HashParams {
                m_cost_kib: 64,
                t_cost: 1,
                p_cost: 1,
            })
            .unwrap(),
            1,
            4,
        )
        .unwrap();
        let auth = Auth::new(
            KeyRing::new(key.clone(), vec![old.clone()]).unwrap(),
            AuthConfig::default(),
            store.clone(),
            store,
            pool,
            Arc::new(clock.clone()),
        );
        let alice = auth
            .create_user("alice", Password::new("a long password"), Role::user())
            .await
            .unwrap();
        Fixture {
            auth,
            clock,
            key,
            old,
            alice,
        }
    }

    fn flask_cookie(key: &SecretKey, data: Value, at: UnixTime) -> String {
        let Value::Object(map) = data else {
            unreachable!()
        };
        CookieKeys::derive([key.expose()], DEFAULT_SALT).seal(&map, at)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_valid_cookie_starts_a_session_once_per_logout() {
        let f = fixture().await;
        let bridge = FlaskBridge::default();
        let cookie = flask_cookie(&f.key, serde_json::json!({"username": "alice"}), T0);
        let got = bridge
            .exchange(&f.auth, &cookie, "ua", "10.0.0.1")
            .await
            .unwrap();
        assert_eq!(got.user.id, f.alice.id);
        assert!(f.auth.session(&got.cookie).await.is_ok());
        // Signed with the fallback key: accepted.
        let old = flask_cookie(&f.old, serde_json::json!({"username": "alice"}), T0);
        assert!(bridge.exchange(&f.auth, &old, "", "").await.is_ok());

        // After a logout, cookies signed up to that second are refused; later ones work.
        f.clock.advance(10);
        record_logout(&f.auth, f.alice.id).await.unwrap();
        let e = bridge.exchange(&f.auth, &cookie, "", "").await.unwrap_err();
        assert!(matches!(e, ExchangeError::LoggedOut), "{e:?}");
        let same_second = flask_cookie(
            &f.key,
            serde_json::json!({"username": "alice"}),
            f.auth.now(),
        );
        assert!(matches!(
            bridge.exchange(&f.auth, &same_second, "", "").await,
            Err(ExchangeError::LoggedOut)
        ));
        f.clock.advance(1);
        let after = bridge.cookie_for(&f.auth, &f.alice);
        assert!(bridge.exchange(&f.auth, &after, "", "").await.is_ok());
        // Logout everywhere records the cutoff too.
        f.clock.advance(5);
        f.auth.logout_everywhere(f.alice.id).await.unwrap();
        assert!(matches!(
            bridge.exchange(&f.auth, &after, "", "").await,
            Err(ExchangeError::LoggedOut)
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals() {
        let f = fixture().await;
        let bridge = FlaskBridge::default();
        let cookie = |data: Value| flask_cookie(&f.key, data, T0);
        let refused = |c: String| {
            let bridge = bridge.clone();
            let auth = &f.auth;
            async move { bridge.exchange(auth, &c, "", "").await.unwrap_err() }
        };
        assert!(matches!(
            refused(cookie(serde_json::json!({"user": "alice"}))).await,
            ExchangeError::NoUser
        ));
        assert!(matches!(
            refused(cookie(serde_json::json!({"username": 7}))).await,
            ExchangeError::NoUser
        ));
        assert!(matches!(
            refused(cookie(serde_json::json!({"username": "mallory"}))).await,
            ExchangeError::UnknownUser
        ));
        assert!(matches!(
            refused(cookie(serde_json::json!({"username": "not a name"}))).await,
            ExchangeError::UnknownUser
        ));
        let (stranger, _) = SecretKey::generate(32).unwrap();
        assert!(matches!(
            refused(flask_cookie(
                &stranger,
                serde_json::json!({"username": "alice"}),
                T0
            ))
            .await,
            ExchangeError::Cookie(CookieError::BadSignature)
        ));
        f.clock.advance(DEFAULT_MAX_AGE_SECS + 1);
        assert!(matches!(
            refused(cookie(serde_json::json!({"username": "alice"}))).await,
            ExchangeError::Cookie(CookieError::Expired)
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ids_and_written_cookies() {
        let f = fixture().await;
        for key in [UserKey::UserId, UserKey::FlaskLogin] {
            let bridge = FlaskBridge {
                user_key: key,
                ..FlaskBridge::default()
            };
            let written = bridge.cookie_for(&f.auth, &f.alice);
            let opened = f
                .auth
                .flask_cookie_keys(DEFAULT_SALT)
                .open(&written, DEFAULT_MAX_AGE_SECS, T0)
                .unwrap();
            let expected = match key {
                UserKey::UserId => Value::from(f.alice.id.0),
                _ => Value::String(f.alice.id.to_string()),
            };
            assert_eq!(opened.data.get(key.key()), Some(&expected));
            let got = bridge.exchange(&f.auth, &written, "", "").await.unwrap();
            assert_eq!(got.user.username, f.alice.username);
        }
        assert_eq!(f.auth.users().list_users().await.unwrap().len(), 1);
        assert_eq!(UserKey::parse("_user_id"), Some(UserKey::FlaskLogin));
        assert_eq!(UserKey::parse("email"), None);
    }
}
