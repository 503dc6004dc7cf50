//! Why an operation of the service failed.

use crate::jwt::JwtError;
use crate::password::PasswordError;
use crate::store::StoreError;

/// Why a password login failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// Unknown user or wrong password (indistinguishable by design).
    #[error("invalid username or password")]
    Invalid,
    /// Too many failures for this account or address.
    #[error("too many failed logins; retry in {retry_after}s")]
    Throttled {
        /// Seconds until the window ends.
        retry_after: i64,
    },
    /// The hashing pool is full.
    #[error("login is at capacity; retry shortly")]
    Busy,
    /// A store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a bearer token was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// The JWT itself failed (signature, claims, …).
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// The token names no user (`username` and `sub` both absent).
    #[error("the token names no user (no username or sub claim)")]
    NoSubject,
    /// The token was revoked (its `jti` is denied, or its user logged out everywhere
    /// after it was issued).
    #[error("the token was revoked")]
    Revoked,
    /// A revocation check needed the store and it failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a session cookie was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// Bad MAC, unknown, ended or expired.
    #[error("the session is invalid or has ended")]
    Invalid,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a second-factor step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MfaError {
    /// The challenge is malformed, expired, already used, or its user is gone or
    /// disabled: start again from the password.
    #[error("the second-factor step has expired; log in again")]
    Expired,
    /// The code, recovery code or passkey did not match (or a code was used already).
    #[error("that code is not valid")]
    Invalid,
    /// Too many failures for this account or address (the login throttle).
    #[error("too many failed attempts; retry in {retry_after}s")]
    Throttled {
        /// Seconds until the window ends.
        retry_after: i64,
    },
    /// There is nothing to confirm: no enrolment was started, or it was replaced.
    #[error("no enrolment is pending")]
    NotPending,
    /// The factor is already enrolled (remove it first).
    #[error("already enrolled")]
    AlreadyEnrolled,
    /// A store failed (or the OS random source, answered the same way: retry later).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<LoginError> for MfaError {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::Throttled { retry_after } => Self::Throttled { retry_after },
            LoginError::Store(e) => Self::Store(e),
            LoginError::Invalid => Self::Invalid,
            LoginError::Busy => Self::Throttled { retry_after: 1 },
        }
    }
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// Unknown, expired or revoked token, or its user is gone.
    #[error("the refresh token is invalid")]
    Invalid,
    /// A retired token was presented again: its family is now revoked.
    #[error("the refresh token was already used; its family is revoked")]
    Reused,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an account change failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// The username is taken.
    #[error("that username is taken")]
    Taken,
    /// Too many registration attempts from this client address
    /// ([`Auth::register`](super::Auth::register)).
    #[error("too many registration attempts; retry in {retry_after}s")]
    Throttled {
        /// Seconds until the window ends.
        retry_after: i64,
    },
    /// No such user.
    #[error("no such user")]
    NoSuchUser,
    /// The username is not valid.
    #[error(transparent)]
    Name(#[from] crate::user::NameError),
    /// The password breaks the policy, or hashing is at capacity.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// A store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Self::Taken,
            e => Self::Store(e),
        }
    }
}
