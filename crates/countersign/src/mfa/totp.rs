//! TOTP (RFC 6238 over RFC 4226): SHA-1, 6 digits, 30-second steps, one step of skew
//! either way, as every authenticator app expects. The code arithmetic is the `totp-rs`
//! crate's; this module keeps the secret, says which step a code matched (so the caller
//! can accept each step once), and draws the enrolment QR code (`qrcode`, as SVG).

use std::fmt;

use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

use crate::clock::UnixTime;

/// Digits in a code.
pub const DIGITS: u8 = 6;
/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Steps accepted either side of the current one.
pub const SKEW: u16 = 1;
/// Bytes of secret (160 bits, as RFC 4226 §4 recommends).
pub const SECRET_BYTES: usize = 20;

/// A TOTP secret. Redacted, zeroized.
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

/// Why a TOTP secret or URI could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TotpError {
    /// The OS random source failed.
    #[error("the OS random source failed")]
    Random(#[source] getrandom::Error),
    /// The secret, issuer or account name is not what RFC 6238 apps accept (an issuer
    /// or name with `:`, a secret under 128 bits).
    #[error("the TOTP parameters are invalid: {0}")]
    Invalid(String),
}

impl TotpSecret {
    /// A fresh random secret.
    ///
    /// # Errors
    /// When the OS random source fails.
    pub fn generate() -> Result<Self, TotpError> {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        getrandom::fill(&mut bytes).map_err(TotpError::Random)?;
        Ok(Self(bytes))
    }

    /// A secret from its bytes (as stored, once unsealed).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }

    /// A secret from its base32 text (as [`to_base32`](Self::to_base32) writes it, or as an
    /// `otpauth://` URI carries it; padding, spaces and case ignored). `None` for anything
    /// else.
    pub fn from_base32(text: &str) -> Option<Self> {
        let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 5 / 8));
        let (mut buffer, mut bits) = (0u32, 0u32);
        for c in text.chars().filter(|c| !matches!(c, ' ' | '=')) {
            let value = match c.to_ascii_uppercase() {
                u @ 'A'..='Z' => u32::from(u) - u32::from('A'),
                d @ '2'..='7' => u32::from(d) - u32::from('2') + 26,
                _ => return None,
            };
            buffer = (buffer << 5) | value;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push(((buffer >> bits) & 0xff) as u8);
            }
        }
        Some(Self(out))
    }

    /// The raw bytes, to seal for storage.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret in base32 without padding, as apps take it typed in.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32_encode(&self.0))
    }

    fn totp(&self, digits: u8, issuer: Option<&str>, account: &str) -> Result<Totp, TotpError> {
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(digits)
            .with_skew(SKEW)
            .with_step_duration(STEP_SECS)
            .with_secret(self.0.to_vec())
            .with_issuer(issuer.map(str::to_owned))
            .with_account_name(account.to_owned())
            .build()
            .map_err(|e| TotpError::Invalid(e.to_string()))
    }

    /// The step a 6-digit code matches at `now` (the current step or one either side), or
    /// `None`. Codes are compared in constant time (`totp-rs`). The caller must accept
    /// each step once ([`FactorStore::advance_factor`](crate::store::FactorStore::advance_factor)).
    pub fn check(&self, code: &str, now: UnixTime) -> Option<i64> {
        let code = normalize(code)?;
        let now = u64::try_from(now.secs()).ok()?;
        let totp = self.totp(DIGITS, None, "").ok()?;
        totp.check(&code, now)
            .and_then(|step| i64::try_from(step).ok())
    }

    /// The code at `time` with `digits` digits (tests, and the RFC 6238 vectors).
    ///
    /// # Errors
    /// When `digits` is not 6 to 8 or the secret is shorter than 128 bits.
    pub fn code_at(&self, digits: u8, time: u64) -> Result<String, TotpError> {
        Ok(self.totp(digits, None, "")?.generate(time).to_string())
    }

    /// The `otpauth://totp/…` URI an app scans: issuer and account name in the label and
    /// parameters, SHA-1, 6 digits, 30 s.
    ///
    /// # Errors
    /// When the issuer or account name holds a `:`.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Result<Zeroizing<String>, TotpError> {
        let totp = self.totp(DIGITS, Some(issuer), account)?;
        totp.to_url()
            .map(Zeroizing::new)
            .map_err(|e| TotpError::Invalid(e.to_string()))
    }
}

/// A code as typed: digits, maybe with spaces or a dash in the middle ("123 456").
/// Whether `code` has the shape of a TOTP code: six digits, spaces and dashes aside (a
/// recovery code, letters and digits, never has it).
pub fn is_code_shaped(code: &str) -> bool {
    normalize(code).is_some()
}

fn normalize(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    (digits.len() == usize::from(DIGITS) && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some(digits)
}

/// RFC 4648 base32, no padding.
fn base32_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// An SVG QR code of `text` (the `otpauth://` URI), drawn by the `qrcode` crate: black
/// modules on white with a quiet zone, sized by a `viewBox` so the page can scale it.
///
/// # Errors
/// When `text` is too long for a QR code.
pub fn qr_svg(text: &str) -> Result<String, TotpError> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| TotpError::Invalid(e.to_string()))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the SHA-1 seed and its 8-digit codes.
    #[test]
    fn rfc_6238_vectors() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890");
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(secret.code_at(8, time).unwrap(), code, "T={time}");
        }
    }

    #[test]
    fn accepts_one_step_either_side_and_says_which() {
        let secret = TotpSecret::generate().unwrap();
        let now = UnixTime(1_800_000_015);
        let step = 1_800_000_015 / 30;
        for (offset, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = secret
                .code_at(6, u64::try_from((step + offset) * 30).unwrap())
                .unwrap();
            assert_eq!(
                secret.check(&code, now),
                accepted.then_some(step + offset),
                "{offset}"
            );
        }
        let code = secret.code_at(6, 1_800_000_015).unwrap();
        assert_eq!(
            secret.check(&format!("{} {}", &code[..3], &code[3..]), now),
            Some(step)
        );
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert_eq!(secret.check(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn uri_and_qr_code() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890");
        assert_eq!(&*secret.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let back = TotpSecret::from_base32("gezd gnbv gy3t qojq gezd gnbv gy3t qojq").unwrap();
        assert_eq!(back.expose(), secret.expose());
        assert!(TotpSecret::from_base32("GEZ1").is_none());
        let uri = secret.otpauth_uri("countersign", "alice").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/countersign:alice?"),
            "{}",
            &*uri
        );
        assert!(uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"));
        assert!(uri.contains("issuer=countersign"));
        assert!(secret.otpauth_uri("a:b", "alice").is_err());
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
    }

    #[test]
    fn debug_is_redacted() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890");
        assert_eq!(format!("{secret:?}"), "TotpSecret([redacted])");
    }
}
