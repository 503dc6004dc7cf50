//! The engine's integration tests, one binary with a module per area (STYLE.md: one
//! integration-test binary per crate keeps link times low).
//!
//! - [`rfc7515`]: the RFC 7515 appendix A.1 HS256 known-answer vector.
//! - [`asymmetric`]: EdDSA and ES256: one test per refusal, high-S accepted, PyJWT both ways.
//! - [`negative`]: one refused token per rule, asserting the exact [`JwtError`] kind.
//! - [`proptests`]: issue → verify round trips; any single-byte change is refused.
//! - [`differential`]: whatever we accept, jsonwebtoken accepts; where we are stricter,
//!   the difference is listed and intended.
//! - [`interop`]: PyJWT (the seeds' library) both ways, in the venv of `scripts/pyenv.sh`.
//!
//! [`JwtError`]: countersign::jwt::JwtError
#![allow(clippy::unwrap_used)]

mod asymmetric;
mod differential;
mod interop;
mod negative;
mod proptests;
mod rfc7515;
mod ring_provider;
mod util;
