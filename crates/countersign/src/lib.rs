//! countersign: the authentication engine.
//!
//! - [`keys`]: secret keys that refuse to be weak, the key ring with rotation, purpose
//!   subkeys.
//! - [`jwt`]: strict HS256 JWT issue and verify, interoperable with PyJWT; EdDSA and ES256
//!   with [`signing`] keys, published as a JWK Set.
//! - [`clock`]: time as a parameter.
//! - [`user`], [`password`]: accounts, argon2id on a bounded pool.
//! - [`session`], [`refresh`]: server-side sessions and refresh-token families.
//! - [`auth`]: the service a web layer calls (login, sessions, tokens, revocation).
//! - [`flask`]: importing a Flask app's users and reading its session cookie.
//! - [`setup`]: the one-time link that creates the first administrator.
//! - [`store`]: the storage traits; [`memory`] implements them in process; [`redact`]: store
//!   URLs without their secrets. `testing` (feature of that name): a store wrapper that
//!   fails operations on demand, for tests. [`sweep`]: removing what has expired, one trait
//!   and one background loop for every store.
//!
//! No HTTP and no database driver live here: the web and storage crates depend on this
//! one, never the reverse.
#![warn(missing_docs)]

pub mod auth;
mod b64;
pub mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod flask;
pub mod jwt;
pub mod keys;
pub mod memory;
pub mod password;
pub mod random;
pub mod redact;
pub mod refresh;
pub mod session;
pub mod setup;
pub mod signing;
pub mod store;
pub mod sweep;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod user;
