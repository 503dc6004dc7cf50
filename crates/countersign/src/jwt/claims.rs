//! The claims of a token: typed registered claims, the seeds' `username` and `role`, and
//! every other claim kept as it came.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
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

impl Claims {
    /// Append the claims as compact JSON to `out`: the same text as their [`Serialize`]
    /// implementation through `serde_json`, written without the serializer's per-fragment
    /// calls (this is most of what issuing a token costs besides the MAC).
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        let mut sep = b'{';
        let mut name = |out: &mut Vec<u8>, name: &str| {
            out.push(sep);
            sep = b',';
            push_json_str(out, name);
            out.push(b':');
        };
        let strings = [
            ("sub", &self.sub),
            ("username", &self.username),
            ("role", &self.role),
        ];
        for (n, v) in strings {
            if let Some(v) = v {
                name(out, n);
                push_json_str(out, v);
            }
        }
        for (n, v) in [
            ("iat", self.iat),
            ("nbf", self.nbf),
            ("exp", Some(self.exp)),
        ] {
            if let Some(v) = v {
                name(out, n);
                push_int(out, v.0);
            }
        }
        for (n, v) in [("jti", &self.jti), ("iss", &self.iss)] {
            if let Some(v) = v {
                name(out, n);
                push_json_str(out, v);
            }
        }
        match self.aud.as_slice() {
            [] => {}
            [one] => {
                name(out, "aud");
                push_json_str(out, one);
            }
            many => {
                name(out, "aud");
                let mut inner = b'[';
                for a in many {
                    out.push(inner);
                    inner = b',';
                    push_json_str(out, a);
                }
                out.push(b']');
            }
        }
        for (k, v) in &self.extra {
            if !REGISTERED.contains(&k.as_str()) {
                name(out, k);
                // Writing a `Value` to a `Vec` cannot fail: its keys are strings and its
                // numbers finite.
                serde_json::to_writer(&mut *out, v)
                    .unwrap_or_else(|_| unreachable!("a Value always serializes"));
            }
        }
        if sep == b'{' {
            out.push(b'{');
        }
        out.push(b'}');
    }
}

/// A JSON string: copied as is when nothing in it needs escaping, else escaped by
/// `serde_json` (so the text is the same either way).
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        serde_json::to_writer(&mut *out, s)
            .unwrap_or_else(|_| unreachable!("a str always serializes"));
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

fn push_int(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut m = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// A registered claim's value as parsed, before its type is checked (so that a wrong type
/// gets its own error kind, and only once the whole payload has parsed: a syntax error or
/// a duplicate name later in the payload wins over a wrong type earlier). Strings borrow
/// from the decoded payload when they hold no escapes; nothing else is kept but its kind.
enum Raw<'de> {
    /// A string.
    Str(Cow<'de, str>),
    /// An integer that fits `i64`.
    Int(i64),
    /// A positive integer past `i64::MAX`.
    BigUint,
    /// A number with a fraction or exponent (finite: serde_json refuses the rest).
    Float(f64),
    /// An array whose elements are all strings (`aud`).
    Strings(Vec<Cow<'de, str>>),
    /// Anything else: `true`, `false`, `null`, an object, a mixed array. Parsed strictly
    /// (duplicate names refused at every depth), then dropped.
    Other,
}

/// Parses one registered claim's value into a [`Raw`].
#[derive(Clone, Copy)]
struct RawSeed<'a>(&'a DupSlot);

impl<'de> DeserializeSeed<'de> for RawSeed<'_> {
    type Value = Raw<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RawSeed<'_> {
    type Value = Raw<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Raw::Other)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Raw::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Raw::BigUint, Raw::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Raw::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Raw::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Raw::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Raw::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Raw::Other)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Raw::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut strings = Some(Vec::new());
        while let Some(item) = seq.next_element_seed(self)? {
            match (item, &mut strings) {
                (Raw::Str(s), Some(all)) => all.push(s),
                _ => strings = None,
            }
        }
        Ok(strings.map_or(Raw::Other, Raw::Strings))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        StrictValue(self.0).visit_map(map).map(|_| Raw::Other)
    }
}

/// The claims as parsed, before their types are checked.
#[derive(Default)]
struct RawClaims<'de> {
    sub: Option<Raw<'de>>,
    username: Option<Raw<'de>>,
    role: Option<Raw<'de>>,
    exp: Option<Raw<'de>>,
    nbf: Option<Raw<'de>>,
    iat: Option<Raw<'de>>,
    jti: Option<Raw<'de>>,
    iss: Option<Raw<'de>>,
    aud: Option<Raw<'de>>,
    extra: Map<String, Value>,
}

pub(crate) struct ClaimsSeed<'a>(pub(crate) &'a DupSlot);

impl<'de> DeserializeSeed<'de> for ClaimsSeed<'_> {
    type Value = RawClaimsOut<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

/// Opaque wrapper so `RawClaims` stays private.
pub(crate) struct RawClaimsOut<'de>(RawClaims<'de>);

impl<'de> Visitor<'de> for ClaimsSeed<'_> {
    type Value = RawClaimsOut<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawClaims::default();
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
                    let v = map.next_value_seed(StrictValue(self.0))?;
                    raw.extra.insert(k.into_owned(), v);
                    continue;
                }
            };
            if slot.is_some() {
                return Err(duplicate(self.0, &k));
            }
            *slot = Some(map.next_value_seed(RawSeed(self.0))?);
        }
        Ok(RawClaimsOut(raw))
    }
}

fn string_claim(name: &'static str, v: Option<Raw<'_>>) -> Result<Option<String>, JwtError> {
    match v {
        None => Ok(None),
        Some(Raw::Str(s)) => Ok(Some(s.into_owned())),
        Some(_) => Err(JwtError::InvalidClaim {
            name,
            expected: "a string",
        }),
    }
}

fn date_claim(name: &'static str, v: Option<Raw<'_>>) -> Result<Option<UnixTime>, JwtError> {
    let secs = match v {
        None => return Ok(None),
        Some(Raw::Int(i)) => Some(i),
        Some(Raw::BigUint) => None,
        // A finite float (serde_json refuses non-finite input). Rounding up keeps every
        // comparison exact for whole-second `now`: `now < 100.5` iff `now < 101`.
        Some(Raw::Float(f)) => {
            (f.is_finite() && f >= 0.0 && f <= MAX_NUMERIC_DATE as f64).then(|| f.ceil() as i64)
        }
        Some(_) => {
            return Err(JwtError::InvalidClaim {
                name,
                expected: "a number of seconds (NumericDate)",
            });
        }
    };
    match secs {
        Some(s) if (0..=MAX_NUMERIC_DATE).contains(&s) => Ok(Some(UnixTime(s))),
        _ => Err(JwtError::ClaimOutOfRange { name }),
    }
}

fn audience_claim(v: Option<Raw<'_>>) -> Result<Vec<String>, JwtError> {
    match v {
        None => Ok(Vec::new()),
        Some(Raw::Str(s)) => Ok(vec![s.into_owned()]),
        // An empty array is present but names no one: RFC 7519 §4.1.3 says to refuse it,
        // and an empty `Vec` would read as "no aud" to `check_claims`.
        Some(Raw::Strings(items)) if !items.is_empty() => {
            Ok(items.into_iter().map(Cow::into_owned).collect())
        }
        Some(_) => Err(JwtError::InvalidClaim {
            name: "aud",
            expected: "a string or a non-empty array of strings",
        }),
    }
}

impl RawClaimsOut<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9_ .-]{0,12}",
            any::<String>(),
            Just("quote\" back\\ nl\n tab\t nul\0 del\u{7f} é 💡".to_owned()),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            text().prop_map(Value::String),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
            (-1e300f64..1e300).prop_map(Value::from),
            Just(serde_json::json!({"a": [1, "b", null], "c": {"d": false}})),
        ]
    }

    prop_compose! {
        fn claims()(
            strings in proptest::collection::vec(proptest::option::of(text()), 5),
            times in (any::<i64>(), proptest::option::of(any::<i64>()), proptest::option::of(any::<i64>())),
            aud in proptest::collection::vec(text(), 0..3),
            extra in proptest::collection::btree_map(
                prop_oneof![text(), Just("exp".to_owned()), Just("sub".to_owned())],
                value(),
                0..4,
            ),
        ) -> Claims {
            Claims {
                sub: strings[0].clone(),
                username: strings[1].clone(),
                role: strings[2].clone(),
                exp: UnixTime(times.0),
                nbf: times.1.map(UnixTime),
                iat: times.2.map(UnixTime),
                jti: strings[3].clone(),
                iss: strings[4].clone(),
                aud,
                extra: extra.into_iter().collect(),
            }
        }
    }

    proptest! {
        #[test]
        fn write_json_is_the_serde_text(c in claims()) {
            let mut ours = Vec::new();
            c.write_json(&mut ours);
            let theirs = serde_json::to_vec(&c).unwrap();
            prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
        }
    }
}
