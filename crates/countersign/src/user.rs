//! Users: ids, names, roles.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::password::PasswordHash;

/// A user's stable id (the JWT `sub`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for UserId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// Why a username or role was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// A username outside the allowed form.
    #[error(
        "a username is 1 to 64 characters: letters, digits and . _ - @, starting with a letter or digit"
    )]
    Username,
    /// A role outside the allowed form.
    #[error(
        "a role is 1 to 32 characters: lowercase letters, digits, _ and -, starting with a letter"
    )]
    Role,
}

/// A username: 1 to 64 of `[A-Za-z0-9._@-]`, starting with a letter or digit. Names are
/// compared exactly (case-sensitive), as the seeds do.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// Parse a username.
    ///
    /// # Errors
    /// [`NameError::Username`] when it does not fit the form.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let ok = (1..=64).contains(&s.len())
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::Username)
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A role: the seeds' `role` claim (`user`, `admin`, …).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Role(String);

impl Role {
    /// The default role of a new account.
    pub fn user() -> Self {
        Self("user".to_owned())
    }

    /// The administrator role.
    pub fn admin() -> Self {
        Self("admin".to_owned())
    }

    /// Parse a role.
    ///
    /// # Errors
    /// [`NameError::Role`] when it does not fit the form.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let ok = (1..=32).contains(&s.len())
            && s.as_bytes()[0].is_ascii_lowercase()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::Role)
        }
    }

    /// The role's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored user.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// Stable id.
    pub id: UserId,
    /// Unique name.
    pub username: Username,
    /// Role.
    pub role: Role,
    /// The argon2id PHC string.
    pub password_hash: PasswordHash,
    /// When the account was made.
    pub created_at: UnixTime,
    /// A disabled account cannot log in or refresh (`countersign user disable`); its
    /// sessions and tokens were ended when it was disabled.
    pub disabled: bool,
}

/// A user to create.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// Unique name.
    pub username: Username,
    /// Role.
    pub role: Role,
    /// The argon2id PHC string.
    pub password_hash: PasswordHash,
    /// When the account is made.
    pub created_at: UnixTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in [
            "john_doe",
            "a",
            "alice@example.org",
            "x.y-z",
            &"a".repeat(64),
        ] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "_x",
            "-x",
            "a b",
            "ä",
            "<script>",
            &"a".repeat(65),
            "a/b",
        ] {
            assert_eq!(Username::parse(bad), Err(NameError::Username), "{bad}");
        }
    }

    #[test]
    fn roles() {
        for ok in ["user", "admin", "read-only", "r2_d2"] {
            assert!(Role::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Admin", "1x", "a b", &"a".repeat(33)] {
            assert_eq!(Role::parse(bad), Err(NameError::Role), "{bad}");
        }
    }
}
