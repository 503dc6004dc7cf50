//! The common payload, read in one pass without serde.
//!
//! Tokens from `jwt::issue` and from PyJWT are flat objects whose values are strings
//! without escapes and non-negative integers. This reader handles exactly that subset and
//! answers only "these are the claims" or "not mine" (`None`). Everything else — escapes,
//! control characters, floats, negative or huge numbers, `true`/`false`/`null`, nesting,
//! arrays, a duplicate name, a registered claim of the wrong type or out of range, a
//! missing `exp`, invalid UTF-8 — goes to the strict general parser, which owns every
//! error kind. So whatever this accepts, the general parser accepts with the same result
//! (the property test below checks it), and no rule depends on this file being right
//! about anything but the inputs it accepts.

use serde_json::Value;

use super::claims::{Claims, MAX_NUMERIC_DATE, REGISTERED};
use crate::clock::UnixTime;

/// A value of the subset.
enum Simple<'a> {
    Str(&'a str),
    Int(i64),
}

struct Scan<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.bump()? == want).then_some(())
    }

    /// JSON whitespace (RFC 8259 §2).
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string without escapes or control characters, borrowed. (Claim strings are
    /// short: a byte loop over a table beats scanning eight bytes at a time here.)
    #[inline]
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let bytes = self.text.as_bytes();
        let mut end = start;
        loop {
            let b = *bytes.get(end)?;
            if STOPS[usize::from(b)] {
                if b != b'"' {
                    return None;
                }
                break;
            }
            end += 1;
        }
        self.at = end + 1;
        // Both ends are ASCII quotes, so both are character boundaries.
        self.text.get(start..end)
    }

    /// A non-negative integer in JSON's grammar (no leading zeros) that fits `i64`.
    fn int(&mut self) -> Option<i64> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let digits = bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(bytes.len() - start);
        if digits == 0 || (digits > 1 && bytes[start] == b'0') || digits > 18 {
            return None;
        }
        self.at += digits;
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        bytes[start..self.at]
            .iter()
            .try_fold(0i64, |n, &d| Some(n * 10 + i64::from(d - b'0')))
    }

    fn value(&mut self) -> Option<Simple<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Simple::Str),
            b'0'..=b'9' => self.int().map(Simple::Int),
            _ => None,
        }
    }
}

/// The bytes that end a string of the subset: the closing quote, or what only an escape
/// (`\\`) or the general parser (control characters, which JSON refuses raw) handles.
const STOPS: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = true;
        i += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Fill an empty slot; `None` when it was already filled (a duplicate).
fn set<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    slot.is_none().then(|| *slot = Some(v))
}

fn date(n: i64) -> Option<UnixTime> {
    (n <= MAX_NUMERIC_DATE).then_some(UnixTime(n))
}

/// The claims of `json`, when it is in the subset this reader handles.
#[cfg(test)]
fn claims(json: &[u8]) -> Option<Claims> {
    let mut c = Claims::new(UnixTime(0));
    claims_into(json, &mut c).map(|()| c)
}

/// Read the claims of `json` into `c`, which holds [`Claims::new`], when `json` is in the
/// subset this reader handles. On `None`, `c` holds part of the claims and must be
/// replaced.
pub(super) fn claims_into(json: &[u8], c: &mut Claims) -> Option<()> {
    let text = std::str::from_utf8(json).ok()?;
    let mut p = Scan { text, at: 0 };
    let mut exp = None;
    let mut aud = None;
    p.ws();
    p.eat(b'{')?;
    p.ws();
    loop {
        let name = p.string()?;
        p.ws();
        p.eat(b':')?;
        p.ws();
        match (name, p.value()?) {
            ("sub", Simple::Str(s)) => set(&mut c.sub, s.to_owned())?,
            ("username", Simple::Str(s)) => set(&mut c.username, s.to_owned())?,
            ("role", Simple::Str(s)) => set(&mut c.role, s.to_owned())?,
            ("jti", Simple::Str(s)) => set(&mut c.jti, s.to_owned())?,
            ("iss", Simple::Str(s)) => set(&mut c.iss, s.to_owned())?,
            ("aud", Simple::Str(s)) => set(&mut aud, s.to_owned())?,
            ("exp", Simple::Int(n)) => set(&mut exp, date(n)?)?,
            ("nbf", Simple::Int(n)) => set(&mut c.nbf, date(n)?)?,
            ("iat", Simple::Int(n)) => set(&mut c.iat, date(n)?)?,
            (name, _) if REGISTERED.contains(&name) => return None,
            (name, value) => {
                if c.extra.contains_key(name) {
                    return None;
                }
                let value = match value {
                    Simple::Str(s) => Value::String(s.to_owned()),
                    Simple::Int(n) => Value::Number(n.into()),
                };
                c.extra.insert(name.to_owned(), value);
            }
        }
        p.ws();
        match p.bump()? {
            b',' => p.ws(),
            b'}' => break,
            _ => return None,
        }
    }
    p.ws();
    if p.at != text.len() {
        return None;
    }
    c.exp = exp?;
    c.aud.extend(aud);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn general(json: &[u8]) -> Result<Claims, super::super::JwtError> {
        super::super::compact::claims_strict(json)
    }

    #[test]
    fn takes_the_tokens_we_issue_and_pyjwt_payloads() {
        let ours = br#"{"sub":"1042","username":"john_doe","role":"admin","iat":1700000000,"exp":1700000900,"jti":"3q2-7wAAAAAAAAAAAAAAAA"}"#;
        let c = claims(ours).expect("in the subset");
        assert_eq!(Ok(c.clone()), general(ours));
        assert_eq!(c.exp, UnixTime(1_700_000_900));
        let pyjwt = br#"{"username": "john_doe", "role": "admin", "exp": 1700000900}"#;
        assert_eq!(claims(pyjwt).map(Ok), Some(general(pyjwt)));
        let extra = br#"{"exp":5,"aud":"api","iss":"me","tenant":"t1","n":7}"#;
        assert_eq!(claims(extra).map(Ok), Some(general(extra)));
    }

    #[test]
    fn strings_stop_at_quotes_and_refuse_escapes_and_control_characters() {
        let mut p = Scan {
            text: "\"john_doe\" \"é💡 ~\u{7f}\"",
            at: 0,
        };
        assert_eq!(p.string(), Some("john_doe"));
        p.ws();
        assert_eq!(p.string(), Some("é💡 ~\u{7f}"));
        for refused in [
            "\"a\\nb\"",
            "\"a\tb\"",
            "\"a\u{1f}\"",
            "\"unterminated",
            "'a'",
        ] {
            let mut p = Scan {
                text: refused,
                at: 0,
            };
            assert_eq!(p.string(), None, "{refused:?}");
        }
    }

    #[test]
    fn leaves_everything_else_to_the_general_parser() {
        let cases: &[&[u8]] = &[
            br#"{}"#,
            br#"{"sub":"a"}"#,
            br#"{"exp":"5"}"#,
            br#"{"exp":5.0}"#,
            br#"{"exp":5e0}"#,
            br#"{"exp":-5}"#,
            br#"{"exp":05}"#,
            br#"{"exp":99999999999999999999}"#,
            br#"{"exp":253402300800}"#,
            br#"{"exp":5,"exp":5}"#,
            br#"{"exp":5,"x":1,"x":1}"#,
            br#"{"exp":5,"sub":1}"#,
            br#"{"exp":5,"sub":"a\"b"}"#,
            br#"{"exp":5,"s\u0075b":"a"}"#,
            br#"{"exp":5,"x":true}"#,
            br#"{"exp":5,"x":{}}"#,
            br#"{"exp":5,"aud":["a"]}"#,
            br#"{"exp":5,}"#,
            br#"{"exp":5} x"#,
            b"{\"exp\":5,\"x\":\"a\tb\"}",
            b"{\"exp\":5,\"x\":\"\xff\"}",
            br#"[{"exp":5}]"#,
        ];
        for case in cases {
            assert!(claims(case).is_none(), "{}", String::from_utf8_lossy(case));
        }
    }

    /// A member the subset takes, most of the time.
    fn typical() -> impl Strategy<Value = String> {
        let text = "[a-z0-9_ é-]{0,8}".prop_map(|s| format!("{s:?}"));
        let int = (0i64..300_000_000_000).prop_map(|n| n.to_string());
        let ws = prop_oneof![Just(""), Just(" ")];
        let string_name = prop_oneof![
            Just("sub"),
            Just("username"),
            Just("role"),
            Just("jti"),
            Just("iss"),
            Just("aud"),
            Just("x"),
        ];
        let date_name = prop_oneof![Just("exp"), Just("nbf"), Just("iat"), Just("y")];
        prop_oneof![(string_name, text), (date_name, int)].prop_flat_map(move |(n, v)| {
            ws.clone()
                .prop_map(move |w| format!("{w}\"{n}\"{w}:{w}{v}{w}"))
        })
    }

    /// A JSON member drawn from a mix of the subset and what lies outside it.
    fn member() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            Just("exp"),
            Just("exp"),
            Just("sub"),
            Just("username"),
            Just("role"),
            Just("exp"),
            Just("nbf"),
            Just("iat"),
            Just("jti"),
            Just("iss"),
            Just("aud"),
            Just("x"),
            Just("y"),
            Just("s\\u0075b"),
        ];
        let value = prop_oneof![
            8 => "[a-z0-9_ é-]{0,8}".prop_map(|s| format!("{s:?}")),
            8 => (0i64..300_000_000_000).prop_map(|n| n.to_string()),
            1 => Just(r#""a\nb""#.to_owned()),
            1 => any::<i64>().prop_map(|n| n.to_string()),
            1 => any::<u64>().prop_map(|n| n.to_string()),
            1 => Just("1.5".to_owned()),
            1 => Just("1e3".to_owned()),
            1 => Just("007".to_owned()),
            1 => Just("true".to_owned()),
            1 => Just("null".to_owned()),
            1 => Just(r#"["a","b"]"#.to_owned()),
            1 => Just(r#"{"k":1}"#.to_owned()),
        ];
        let ws = prop_oneof![Just(""), Just(" "), Just("\n\t")];
        (name, ws.clone(), value, ws).prop_map(|(n, a, v, b)| format!("{a}\"{n}\"{b}:{a}{v}{b}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        #[test]
        fn agrees_with_the_general_parser(members in proptest::collection::vec(prop_oneof![8 => typical(), 1 => member()], 0..6)) {
            let json = format!("{{{}}}", members.join(","));
            if let Some(c) = claims(json.as_bytes()) {
                prop_assert_eq!(Ok(c), general(json.as_bytes()), "{}", json);
            }
        }
    }
}
