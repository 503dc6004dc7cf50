//! Who a request is: the principal, how it authenticated, and a token pair.

use std::fmt;

use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::session::SessionKey;
use crate::user::UserId;

/// How a request was authenticated. `Debug` leaves out the session's CSRF token.
#[derive(Clone, PartialEq, Eq)]
pub enum Method {
    /// `Authorization: Bearer` with a JWT.
    Bearer {
        /// The token's `jti`, if any.
        jti: Option<String>,
        /// The token's expiry.
        exp: UnixTime,
    },
    /// A session cookie.
    Session {
        /// The session's public id.
        key: SessionKey,
        /// The session's CSRF token.
        csrf_token: String,
    },
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bearer { jti, exp } => f
                .debug_struct("Bearer")
                .field("jti", jti)
                .field("exp", exp)
                .finish(),
            Self::Session { key, .. } => f
                .debug_struct("Session")
                .field("key", key)
                .field("csrf_token", &"[redacted]")
                .finish(),
        }
    }
}

/// The authenticated user of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user's id, when the credential names one (a PyJWT-made token may carry only
    /// `username` and `role`, as in the seeds).
    pub user_id: Option<UserId>,
    /// The user's name.
    pub username: String,
    /// The user's role.
    pub role: String,
    /// How the request authenticated.
    pub method: Method,
}

impl Principal {
    /// Whether the principal has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.role == role
    }
}

/// A new access token and refresh token.
#[derive(Clone)]
pub struct TokenPair {
    /// The JWT.
    pub access_token: String,
    /// Seconds until the JWT expires.
    pub expires_in: i64,
    /// The opaque refresh token.
    pub refresh_token: Zeroizing<String>,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}
