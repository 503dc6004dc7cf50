//! Reading tokens without verifying them. Nothing here may feed an authorization
//! decision: an attacker chooses every byte of an unverified token.

use serde_json::{Map, Value};

use super::compact::{decode_object, split};
use super::error::{JwtError, Part};

/// A JSON object as `serde_json` holds it.
pub type Object = Map<String, Value>;

/// The header and claims of `token`, **unverified**: no signature, no time checks.
///
/// # Errors
/// When the token is not three strict base64url segments holding JSON objects.
pub fn decode_unverified(token: &str) -> Result<(Object, Object), JwtError> {
    let (h, p, _) = split(token.as_bytes())?;
    Ok((
        decode_object(h, Part::Header)?,
        decode_object(p, Part::Payload)?,
    ))
}
