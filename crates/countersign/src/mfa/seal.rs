//! Authenticated encryption under a key-ring subkey (ChaCha20-Poly1305 from `ring`): TOTP
//! secrets at rest, second-factor challenges and WebAuthn ceremony state in transit.
//!
//! A sealed value names the key it was sealed under (`kid`), so a rotation keeps old
//! values readable while their key is in the ring; [`Sealer::open`] says when a value was
//! sealed under a fallback key, so the caller can seal it again under the current one.
//! The associated data binds a value to its place (the user and factor it belongs to, or
//! the kind of challenge), so a value copied elsewhere does not open.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::keys::{KeyId, KeyRing, Purpose};

/// The format's version byte.
const VERSION: u8 = 1;

/// Seals and opens under every key of a ring for one purpose: seals with the current key.
pub(crate) struct Sealer {
    keys: Vec<(KeyId, LessSafeKey)>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

/// An opened value and whether it should be sealed again under the current key.
pub(crate) struct Opened {
    pub plaintext: Vec<u8>,
    pub stale: bool,
}

impl Sealer {
    pub(crate) fn new(ring: &KeyRing, purpose: Purpose) -> Self {
        let keys = ring
            .all()
            .map(|key| {
                let sub = key.subkey(purpose);
                let unbound = UnboundKey::new(&CHACHA20_POLY1305, sub.expose())
                    .unwrap_or_else(|_| unreachable!("ChaCha20-Poly1305 takes 32-byte keys"));
                (key.kid(), LessSafeKey::new(unbound))
            })
            .collect();
        Self { keys }
    }

    /// Seal `plaintext` under the current key, bound to `aad`. Fails only when the OS
    /// random source does.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, getrandom::Error> {
        let (kid, key) = &self.keys[0];
        let kid = kid.as_str().as_bytes();
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)?;
        let mut out = Vec::with_capacity(2 + kid.len() + NONCE_LEN + plaintext.len() + 16);
        out.push(VERSION);
        out.push(u8::try_from(kid.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&kid[..kid.len().min(255)]);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut body,
        )
        .unwrap_or_else(|_| unreachable!("the plaintext is far below the AEAD's limit"));
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Open a sealed value bound to `aad`. `None` for anything not sealed by a key of the
    /// ring with this `aad` (tampered, truncated, another place, a key since removed).
    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Opened> {
        let (&version, rest) = sealed.split_first()?;
        let (&kid_len, rest) = rest.split_first()?;
        if version != VERSION || rest.len() < usize::from(kid_len) + NONCE_LEN {
            return None;
        }
        let (kid, rest) = rest.split_at(usize::from(kid_len));
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let position = self
            .keys
            .iter()
            .position(|(id, _)| id.as_str().as_bytes() == kid)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plaintext = self.keys[position]
            .1
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .ok()?
            .to_vec();
        Some(Opened {
            plaintext,
            stale: position != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    fn key() -> SecretKey {
        SecretKey::generate(32).unwrap().0
    }

    #[test]
    fn opens_what_it_sealed_and_nothing_else() {
        let ring = KeyRing::single(key());
        let s = Sealer::new(&ring, Purpose::MfaSecret);
        let sealed = s.seal(b"user 1", b"secret").unwrap();
        let opened = s.open(b"user 1", &sealed).unwrap();
        assert_eq!(opened.plaintext, b"secret");
        assert!(!opened.stale);
        assert!(s.open(b"user 2", &sealed).is_none(), "bound to its place");
        let other = Sealer::new(&ring, Purpose::MfaChallenge);
        assert!(
            other.open(b"user 1", &sealed).is_none(),
            "bound to its purpose"
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(s.open(b"user 1", &bad).is_none(), "byte {i}");
            assert!(s.open(b"user 1", &sealed[..i]).is_none(), "cut at {i}");
        }
    }

    #[test]
    fn a_rotation_keeps_old_values_readable_and_says_they_are_stale() {
        let (old, new) = (key(), key());
        let before = Sealer::new(&KeyRing::single(old.clone()), Purpose::MfaSecret);
        let sealed = before.seal(b"x", b"secret").unwrap();
        let after = Sealer::new(&KeyRing::new(new, vec![old]).unwrap(), Purpose::MfaSecret);
        let opened = after.open(b"x", &sealed).unwrap();
        assert_eq!(opened.plaintext, b"secret");
        assert!(opened.stale);
        assert!(
            !after
                .open(b"x", &after.seal(b"x", b"s").unwrap())
                .unwrap()
                .stale
        );
    }
}
