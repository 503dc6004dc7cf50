//! Strict, unpadded base64url (RFC 4648 §5, as JWS requires in RFC 7515 §2).
//!
//! Refuses `=`, `+`, `/`, whitespace, a length of 1 mod 4 and non-zero trailing bits, so
//! every byte string has exactly one accepted encoding. Decodes into a caller's buffer:
//! no allocation on the verification path.

/// Why a base64url segment was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum B64Error {
    /// A byte outside the base64url alphabet (includes `=`, `+`, `/`, whitespace).
    Alphabet,
    /// A length that no unpadded encoding has (1 mod 4).
    Length,
    /// Trailing bits that are not zero: a second spelling of the same bytes.
    NonCanonical,
    /// The output buffer is too small.
    TooLong,
}

const INVALID: u8 = 0xFF;

const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let alphabet = ENCODE;
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

const ENCODE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The decoded length of an `n`-character segment, or `None` when no encoding has length `n`.
pub(crate) const fn decoded_len(n: usize) -> Option<usize> {
    match n % 4 {
        1 => None,
        r => Some(n / 4 * 3 + if r == 0 { 0 } else { r - 1 }),
    }
}

/// Decode `input` into `out`, returning the number of bytes written.
pub(crate) fn decode_into(input: &[u8], out: &mut [u8]) -> Result<usize, B64Error> {
    let len = decoded_len(input.len()).ok_or(B64Error::Length)?;
    if len > out.len() {
        return Err(B64Error::TooLong);
    }
    let mut chunks = input.chunks_exact(4);
    let mut o = 0;
    for chunk in &mut chunks {
        let a = DECODE[usize::from(chunk[0])];
        let b = DECODE[usize::from(chunk[1])];
        let c = DECODE[usize::from(chunk[2])];
        let d = DECODE[usize::from(chunk[3])];
        if (a | b | c | d) == INVALID || ((a | b | c | d) & 0xC0) != 0 {
            return Err(B64Error::Alphabet);
        }
        let n = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        out[o] = (n >> 16) as u8;
        out[o + 1] = (n >> 8) as u8;
        out[o + 2] = n as u8;
        o += 3;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut n: u32 = 0;
        for (i, &ch) in rest.iter().enumerate() {
            let v = DECODE[usize::from(ch)];
            if v == INVALID {
                return Err(B64Error::Alphabet);
            }
            n |= u32::from(v) << (18 - 6 * i);
        }
        match rest.len() {
            2 => {
                if n & 0xFFFF != 0 {
                    return Err(B64Error::NonCanonical);
                }
                out[o] = (n >> 16) as u8;
                o += 1;
            }
            3 => {
                if n & 0xFF != 0 {
                    return Err(B64Error::NonCanonical);
                }
                out[o] = (n >> 16) as u8;
                out[o + 1] = (n >> 8) as u8;
                o += 2;
            }
            _ => return Err(B64Error::Length),
        }
    }
    Ok(o)
}

/// Append the unpadded base64url encoding of `input` to `out`.
pub(crate) fn encode_into(input: &[u8], out: &mut String) {
    out.reserve(input.len().div_ceil(3) * 4);
    let mut chunks = input.chunks_exact(3);
    let sym = |v: u32| char::from(ENCODE[(v & 63) as usize]);
    for c in &mut chunks {
        let n = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        out.push(sym(n >> 18));
        out.push(sym(n >> 12));
        out.push(sym(n >> 6));
        out.push(sym(n));
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.push(sym(n >> 18));
            out.push(sym(n >> 12));
        }
        [a, b] => {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8);
            out.push(sym(n >> 18));
            out.push(sym(n >> 12));
            out.push(sym(n >> 6));
        }
        _ => {}
    }
}

/// The unpadded base64url encoding of `input`.
pub(crate) fn encode(input: &[u8]) -> String {
    let mut s = String::new();
    encode_into(input, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use proptest::prelude::*;

    fn decode(s: &str) -> Result<Vec<u8>, B64Error> {
        let mut out = vec![0u8; s.len()];
        let n = decode_into(s.as_bytes(), &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    #[test]
    fn refuses_padding_and_other_alphabets() {
        assert_eq!(decode("QQ=="), Err(B64Error::Alphabet));
        assert_eq!(decode("a+b/"), Err(B64Error::Alphabet));
        assert_eq!(decode("ab c"), Err(B64Error::Alphabet));
        assert_eq!(decode("abcde"), Err(B64Error::Length));
        // "QR" decodes to the same byte as "QQ" in lax decoders.
        assert_eq!(decode("QQ"), Ok(b"A".to_vec()));
        assert_eq!(decode("QR"), Err(B64Error::NonCanonical));
        assert_eq!(decode("QUI"), Ok(b"AB".to_vec()));
        assert_eq!(decode("QUJ"), Err(B64Error::NonCanonical));
        assert_eq!(decode(""), Ok(vec![]));
    }

    proptest! {
        #[test]
        fn round_trips_and_matches_base64_crate(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let ours = encode(&bytes);
            prop_assert_eq!(&ours, &URL_SAFE_NO_PAD.encode(&bytes));
            prop_assert_eq!(decode(&ours).unwrap(), bytes);
        }

        #[test]
        fn accepts_exactly_what_the_strict_base64_crate_accepts(s in "[A-Za-z0-9_=+/ -]{0,12}") {
            let ours = decode(&s).ok();
            let theirs = URL_SAFE_NO_PAD.decode(&s).ok();
            prop_assert_eq!(ours, theirs);
        }
    }
}
