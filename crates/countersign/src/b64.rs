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

/// An invalid symbol's entry in the shifted tables: outside the 24 bits a group fills.
const SHIFTED_INVALID: u32 = 1 << 31;

/// Each symbol's value already in place for its position in a group of four.
const fn shifted(shift: u32) -> [u32; 256] {
    let mut table = [SHIFTED_INVALID; 256];
    let mut i = 0;
    while i < 256 {
        if DECODE[i] != INVALID {
            table[i] = (DECODE[i] as u32) << shift;
        }
        i += 1;
    }
    table
}

const D18: [u32; 256] = shifted(18);
const D12: [u32; 256] = shifted(12);
const D6: [u32; 256] = shifted(6);
const D0: [u32; 256] = shifted(0);

const ENCODE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Every pair of symbols, indexed by the 12 bits they encode, as a big-endian `u16`
/// (8 KiB): encoding looks up two symbols at a time.
const PAIRS: [u16; 4096] = {
    let mut table = [0u16; 4096];
    let mut i = 0;
    while i < 4096 {
        table[i] = ((ENCODE[i >> 6] as u16) << 8) | ENCODE[i & 63] as u16;
        i += 1;
    }
    table
};

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
    let out = out.get_mut(..len).ok_or(B64Error::TooLong)?;
    // Eight symbols make six bytes: two groups of four, each the OR of four pre-shifted
    // table entries. An invalid symbol sets bit 31, which `bad` collects: one test after
    // the loop finds it (what was written to `out` meanwhile goes with the error).
    let (blocks, rest) = input.as_chunks::<8>();
    let (body, tail) = out.split_at_mut(blocks.len() * 6);
    let mut bad = 0u32;
    for (b, o) in blocks.iter().zip(body.as_chunks_mut::<6>().0) {
        let hi = D18[usize::from(b[0])]
            | D12[usize::from(b[1])]
            | D6[usize::from(b[2])]
            | D0[usize::from(b[3])];
        let lo = D18[usize::from(b[4])]
            | D12[usize::from(b[5])]
            | D6[usize::from(b[6])]
            | D0[usize::from(b[7])];
        bad |= hi | lo;
        let [_, _, bytes @ ..] = ((u64::from(hi) << 24) | u64::from(lo)).to_be_bytes();
        *o = bytes;
    }
    // Up to seven symbols are left. INVALID (0xFF) is the only plain entry with the top
    // bits set.
    let mut seen = 0u8;
    let n = rest.iter().fold(0u64, |n, c| {
        let v = DECODE[usize::from(*c)];
        seen |= v;
        (n << 6) | u64::from(v)
    });
    if bad & SHIFTED_INVALID != 0 || seen & 0xC0 != 0 {
        return Err(B64Error::Alphabet);
    }
    // The bits past the last whole byte must be zero.
    let spare = rest.len() * 6 - tail.len() * 8;
    if n & ((1 << spare) - 1) != 0 {
        return Err(B64Error::NonCanonical);
    }
    let n = n >> spare;
    let last = tail.len().saturating_sub(1);
    for (i, byte) in tail.iter_mut().enumerate() {
        *byte = (n >> (8 * (last - i))) as u8;
    }
    Ok(len)
}

/// The length of the unpadded base64url encoding of `n` bytes.
pub(crate) const fn encoded_len(n: usize) -> usize {
    n / 3 * 4
        + match n % 3 {
            0 => 0,
            1 => 2,
            _ => 3,
        }
}

/// Write the unpadded base64url encoding of `input` to `out`, which must be exactly
/// [`encoded_len`]`(input.len())` bytes long.
pub(crate) fn encode_to_slice(input: &[u8], out: &mut [u8]) {
    debug_assert_eq!(out.len(), encoded_len(input.len()));
    // Six bytes make eight symbols, looked up two at a time (12 bits per lookup).
    let (blocks, rest) = input.as_chunks::<6>();
    let (body, tail) = out.split_at_mut(blocks.len() * 8);
    for (b, o) in blocks.iter().zip(body.as_chunks_mut::<8>().0) {
        let n = u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]]);
        let pair = |shift: u32| u64::from(PAIRS[((n >> shift) & 0xfff) as usize]);
        *o = (pair(36) << 48 | pair(24) << 32 | pair(12) << 16 | pair(0)).to_be_bytes();
    }
    // Up to five bytes are left, padded with zero bits to whole symbols.
    let n = rest.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
    let n = n << (tail.len() * 6 - rest.len() * 8);
    let last = tail.len().saturating_sub(1);
    for (i, s) in tail.iter_mut().enumerate() {
        *s = ENCODE[((n >> (6 * (last - i))) & 63) as usize];
    }
}

/// Append the unpadded base64url encoding of `input` to `out`.
pub(crate) fn encode_into_vec(input: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + encoded_len(input.len()), 0);
    encode_to_slice(input, &mut out[start..]);
}

/// Append the unpadded base64url encoding of `input` to `out`.
pub(crate) fn encode_into(input: &[u8], out: &mut String) {
    out.reserve(encoded_len(input.len()));
    let mut buf = [0u8; 64];
    for chunk in input.chunks(48) {
        let n = encoded_len(chunk.len());
        encode_to_slice(chunk, &mut buf[..n]);
        out.push_str(ascii(&buf[..n]));
    }
}

/// The unpadded base64url encoding of `input`.
pub(crate) fn encode(input: &[u8]) -> String {
    let mut out = Vec::new();
    encode_into_vec(input, &mut out);
    String::from_utf8(out).unwrap_or_else(|_| unreachable!("base64url is ASCII"))
}

/// Base64url output as text; the alphabet is ASCII, so this never fails.
fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_else(|_| unreachable!("base64url is ASCII"))
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
        // The same rules past the first eight-symbol block.
        assert_eq!(decode("AAAAAAAAQQ"), Ok(vec![0, 0, 0, 0, 0, 0, b'A']));
        assert_eq!(decode("AAAAAAAAQR"), Err(B64Error::NonCanonical));
        assert_eq!(decode("AAAAAAAAQUJ"), Err(B64Error::NonCanonical));
        assert_eq!(decode("AAAAAAAAAAAAAQR"), Err(B64Error::NonCanonical));
        assert_eq!(decode("AAAAAAAAAAAAAAR"), Err(B64Error::NonCanonical));
        assert_eq!(decode("AAAAAAA=AAAA"), Err(B64Error::Alphabet));
        assert_eq!(decode("AAAAAAAAAAA."), Err(B64Error::Alphabet));
        assert_eq!(decode("AAAAAAAAA"), Err(B64Error::Length));
        let mut small = [0u8; 2];
        assert_eq!(decode_into(b"AAAA", &mut small), Err(B64Error::TooLong));
    }

    proptest! {
        #[test]
        fn round_trips_and_matches_base64_crate(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let ours = encode(&bytes);
            prop_assert_eq!(&ours, &URL_SAFE_NO_PAD.encode(&bytes));
            prop_assert_eq!(&decode(&ours).unwrap(), &bytes);
            let mut appended = String::from("x.");
            encode_into(&bytes, &mut appended);
            prop_assert_eq!(&appended[2..], &ours);
        }

        #[test]
        fn accepts_exactly_what_the_strict_base64_crate_accepts(s in "[A-Za-z0-9_=+/ -]{0,40}") {
            let ours = decode(&s).ok();
            let theirs = URL_SAFE_NO_PAD.decode(&s).ok();
            prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn refuses_non_canonical_tails_at_any_length(
            bytes in proptest::collection::vec(any::<u8>(), 0..60),
            flip in 1u8..16,
        ) {
            let text = encode(&bytes);
            prop_assume!(bytes.len() % 3 != 0);
            // Set one of the unused low bits of the last symbol.
            let last = DECODE[usize::from(*text.as_bytes().last().unwrap())];
            let unused = if bytes.len() % 3 == 1 { 0x0F } else { 0x03 };
            let changed = ENCODE[usize::from(last | (flip & unused))];
            prop_assume!(flip & unused != 0);
            let mut bad = text.into_bytes();
            *bad.last_mut().unwrap() = changed;
            let mut out = vec![0u8; bad.len()];
            prop_assert_eq!(decode_into(&bad, &mut out), Err(B64Error::NonCanonical));
        }
    }
}
