//! Who a request is: the principal, how it authenticated, and a token pair.

use std::fmt;

use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::mfa::Amr;
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
    /// How the user proved who they are (RFC 8176 `amr`): empty for a token made
    /// elsewhere without the claim.
    pub amr: Amr,
    /// When they last did (`auth_time`), if known.
    pub auth_time: Option<UnixTime>,
}

impl Principal {
    /// Whether the principal has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.role == role
    }

    /// Whether the login used a second factor (`amr` holds `mfa`).
    pub fn is_mfa(&self) -> bool {
        self.amr.is_mfa()
    }

    /// Whether the user proved who they are at most `max_age_secs` before `now`.
    pub fn authenticated_within(&self, max_age_secs: i64, now: UnixTime) -> bool {
        self.auth_time
            .is_some_and(|t| now.secs() - t.secs() <= max_age_secs)
    }
}

/// How and when a user proved who they are, carried by a session or a token family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authentication {
    /// The methods (RFC 8176).
    pub amr: Amr,
    /// When.
    pub auth_time: UnixTime,
}

impl Authentication {
    /// A password alone, at `now`.
    pub fn password(now: UnixTime) -> Self {
        Self {
            amr: Amr::PWD,
            auth_time: now,
        }
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
