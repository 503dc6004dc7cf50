//! The claims of a token: typed registered claims, the seeds' `username` and `role`, and
//! every other claim kept as it came.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::JwtError;
use super::strict::{DupSlot, Key, StrictValue, duplicate};
use crate::clock::UnixTime;

/// The latest `NumericDate` accepted: 9999-12-31T23:59:59Z. Later values are refused as
/// out of range rather than risk overflow in deadline arithmetic.
pub const MAX_NUMERIC_DATE: i64 = 253_402_300_799;

/// Claim names the engine manages; [`Claims::extra`] never holds these.
pub const REGISTERED: &[&str] = &[
    "sub", "username", "role", "exp", "nbf", "iat", "jti", "iss", "aud",
];

/// A token's claims.
///
/// `exp` is required; everything else is optional so that tokens made by PyJWT with the
/// seeds' payload (`username`, `role`, `exp`) verify.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    /// Subject: the user's stable id.
    pub sub: Option<String>,
    /// The user's name (the seeds' claim).
    pub username: Option<String>,
    /// The user's role (the seeds' claim): `user`, `admin`, …
    pub role: Option<String>,
    /// Expiry.
    pub exp: UnixTime,
    /// Not before.
    pub nbf: Option<UnixTime>,
    /// Issued at.
    pub iat: Option<UnixTime>,
    /// Token id (for the denylist).
    pub jti: Option<String>,
    /// Issuer.
    pub iss: Option<String>,
    /// Audiences (a single string in the token is one element here).
    pub aud: Vec<String>,
    /// Every other claim, as it came.
    pub extra: Map<String, Value>,
}

impl Claims {
    /// Claims with only an expiry.
    pub fn new(exp: UnixTime) -> Self {
        Self {
            sub: None,
            username: None,
            role: None,
            exp,
            nbf: None,
            iat: None,
            jti: None,
            iss: None,
            aud: Vec::new(),
            extra: Map::new(),
        }
    }
}

impl Serialize for Claims {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(v) = &self.sub {
            m.serialize_entry("sub", v)?;
        }
        if let Some(v) = &self.username {
            m.serialize_entry("username", v)?;
        }
        if let Some(v) = &self.role {
            m.serialize_entry("role", v)?;
        }
        if let Some(v) = self.iat {
            m.serialize_entry("iat", &v.0)?;
        }
        if let Some(v) = self.nbf {
            m.serialize_entry("nbf", &v.0)?;
        }
        m.serialize_entry("exp", &self.exp.0)?;
        if let Some(v) = &self.jti {
            m.serialize_entry("jti", v)?;
        }
        if let Some(v) = &self.iss {
            m.serialize_entry("iss", v)?;
        }
        match self.aud.as_slice() {
            [] => {}
            [one] => m.serialize_entry("aud", one)?,
            many => m.serialize_entry("aud", many)?,
        }
        for (k, v) in &self.extra {
            if !REGISTERED.contains(&k.as_str()) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// The claims as parsed, before their types are checked (so that a wrong type gets its
/// own error kind rather than a generic parse error).
#[derive(Default)]
struct RawClaims {
    sub: Option<Value>,
    username: Option<Value>,
    role: Option<Value>,
    exp: Option<Value>,
    nbf: Option<Value>,
    iat: Option<Value>,
    jti: Option<Value>,
    iss: Option<Value>,
    aud: Option<Value>,
    extra: Map<String, Value>,
}

pub(crate) struct ClaimsSeed<'a>(pub(crate) &'a DupSlot);

impl<'de> DeserializeSeed<'de> for ClaimsSeed<'_> {
    type Value = RawClaimsOut;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

/// Opaque wrapper so `RawClaims` stays private.
pub(crate) struct RawClaimsOut(RawClaims);

impl<'de> Visitor<'de> for ClaimsSeed<'_> {
    type Value = RawClaimsOut;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawClaims::default();
        let strict = StrictValue(self.0);
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            let slot = match k.as_ref() {
                "sub" => &mut raw.sub,
                "username" => &mut raw.username,
                "role" => &mut raw.role,
                "exp" => &mut raw.exp,
                "nbf" => &mut raw.nbf,
                "iat" => &mut raw.iat,
                "jti" => &mut raw.jti,
                "iss" => &mut raw.iss,
                "aud" => &mut raw.aud,
                _ => {
                    if raw.extra.contains_key(k.as_ref()) {
                        return Err(duplicate(self.0, &k));
                    }
                    let v = map.next_value_seed(strict)?;
                    raw.extra.insert(k.into_owned(), v);
                    continue;
                }
            };
            if slot.is_some() {
                return Err(duplicate(self.0, &k));
            }
            *slot = Some(map.next_value_seed(strict)?);
        }
        Ok(RawClaimsOut(raw))
    }
}

fn string_claim(name: &'static str, v: Option<Value>) -> Result<Option<String>, JwtError> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwtError::InvalidClaim {
            name,
            expected: "a string",
        }),
    }
}

fn date_claim(name: &'static str, v: Option<Value>) -> Result<Option<UnixTime>, JwtError> {
    let Some(v) = v else { return Ok(None) };
    let Value::Number(n) = v else {
        return Err(JwtError::InvalidClaim {
            name,
            expected: "a number of seconds (NumericDate)",
        });
    };
    let secs = if let Some(i) = n.as_i64() {
        Some(i)
    } else if n.is_u64() {
        None
    } else {
        // A finite float (serde_json refuses non-finite input). Rounding up keeps every
        // comparison exact for whole-second `now`: `now < 100.5` iff `now < 101`.
        n.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && *f <= MAX_NUMERIC_DATE as f64)
            .map(|f| f.ceil() as i64)
    };
    match secs {
        Some(s) if (0..=MAX_NUMERIC_DATE).contains(&s) => Ok(Some(UnixTime(s))),
        _ => Err(JwtError::ClaimOutOfRange { name }),
    }
}

fn audience_claim(v: Option<Value>) -> Result<Vec<String>, JwtError> {
    const BAD: JwtError = JwtError::InvalidClaim {
        name: "aud",
        expected: "a string or a non-empty array of strings",
    };
    match v {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        // An empty array is present but names no one: RFC 7519 §4.1.3 says to refuse it,
        // and an empty `Vec` would read as "no aud" to `check_claims`.
        Some(Value::Array(items)) if !items.is_empty() => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => Ok(s),
                _ => Err(BAD),
            })
            .collect(),
        Some(_) => Err(BAD),
    }
}

impl RawClaimsOut {
    /// Check each registered claim's type; `exp` must be present.
    pub(crate) fn into_claims(self) -> Result<Claims, JwtError> {
        let r = self.0;
        let exp = date_claim("exp", r.exp)?.ok_or(JwtError::MissingClaim { name: "exp" })?;
        Ok(Claims {
            sub: string_claim("sub", r.sub)?,
            username: string_claim("username", r.username)?,
            role: string_claim("role", r.role)?,
            exp,
            nbf: date_claim("nbf", r.nbf)?,
            iat: date_claim("iat", r.iat)?,
            jti: string_claim("jti", r.jti)?,
            iss: string_claim("iss", r.iss)?,
            aud: audience_claim(r.aud)?,
            extra: r.extra,
        })
    }
}
