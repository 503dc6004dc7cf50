//! What the hashing pool, the hash classes and the stores share: a stored hash, and the
//! argon2id parameters countersign hashes with. Re-exported by [`crate::password`].

use std::fmt;

/// argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashParams {
    /// Memory, in KiB.
    pub m_cost_kib: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

/// A PHC string (`$argon2id$v=19$m=…`). Not secret, but not for display either.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wrap a stored PHC string.
    pub fn from_phc(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The PHC string, for storage.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([redacted])")
    }
}
