//! countersign: the authentication engine.
//!
//! - [`keys`]: secret keys that refuse to be weak, the key ring with rotation, purpose
//!   subkeys.
//! - [`jwt`]: strict HS256 JWT issue and verify, interoperable with PyJWT.
//! - [`clock`]: time as a parameter.
//!
//! No HTTP and no database driver live here: the web and storage crates depend on this
//! one, never the reverse.
#![warn(missing_docs)]

mod b64;
pub mod clock;
pub mod jwt;
pub mod keys;
pub mod random;
