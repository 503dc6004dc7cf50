//! JSON parsing that refuses duplicate member names at every depth.
//!
//! RFC 7515 §5.2 lets a parser either refuse duplicates or keep the last; keeping the last
//! is how two parsers come to disagree about what a token says. We refuse.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Where a duplicate name is reported, so the caller can name it in the error.
pub(crate) type DupSlot = RefCell<Option<String>>;

/// A member name, borrowed from the input when it has no escapes.
pub(crate) struct Key<'de>(pub(crate) std::borrow::Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Deserializes any JSON value into a [`Value`], refusing duplicate names in objects.
#[derive(Clone, Copy)]
pub(crate) struct StrictValue<'a>(pub(crate) &'a DupSlot);

/// Record a duplicate and produce the error that stops parsing.
pub(crate) fn duplicate<E: de::Error>(slot: &DupSlot, name: &str) -> E {
    let mut slot = slot.borrow_mut();
    if slot.is_none() {
        *slot = Some(name.chars().take(64).collect());
    }
    E::custom("duplicate member name")
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            if out.contains_key(k.as_ref()) {
                return Err(duplicate(self.0, &k));
            }
            let v = map.next_value_seed(self)?;
            out.insert(k.into_owned(), v);
        }
        Ok(Value::Object(out))
    }
}

/// Parse `bytes` as one JSON object, strictly. Returns the parse error (with the duplicate
/// name, if that was the cause) on failure.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictError> {
    let slot = DupSlot::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue(&slot)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| StrictError::from_parts(e, &slot))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(StrictError::NotAnObject),
    }
}

/// Why strict parsing failed.
#[derive(Debug)]
pub(crate) enum StrictError {
    /// A member name appeared twice in one object.
    Duplicate(String),
    /// The JSON text was not one object.
    NotAnObject,
    /// Not JSON (or not UTF-8, or nested too deep).
    Syntax(serde_json::Error),
}

impl StrictError {
    pub(crate) fn from_parts(e: serde_json::Error, slot: &DupSlot) -> Self {
        match slot.borrow_mut().take() {
            Some(name) => Self::Duplicate(name),
            None if e.classify() == serde_json::error::Category::Data => {
                // A type mismatch at the top level: the text was JSON but not an object.
                Self::NotAnObject
            }
            None => Self::Syntax(e),
        }
    }
}

/// A JSON object by the strict parser (duplicate members refused at every depth), for
/// documents other than tokens (JWK Sets); the error as text.
pub(crate) fn parse_strict_object(json: &[u8]) -> Result<Map<String, Value>, String> {
    parse_object(json).map_err(|e| match e {
        StrictError::Duplicate(name) => format!("duplicate member {name:?}"),
        StrictError::NotAnObject => "not a JSON object".to_owned(),
        StrictError::Syntax(e) => e.to_string(),
    })
}
