//! A software WebAuthn authenticator and client for tests: ES256 keys from `ring`, the
//! CBOR and JSON a browser would send, and knobs for what a browser would not do (sign for
//! another RP ID or origin, skip user verification, replay an old signature counter).
//!
//! It answers the options [`Auth`](crate::auth::Auth)'s ceremonies hand out with the JSON
//! a page would post back. Not for production: its keys live in memory.

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::b64;

/// Authenticator data flags.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

/// One credential the authenticator holds.
pub struct SoftCredential {
    /// The credential id.
    pub id: Vec<u8>,
    /// The RP ID it was made for.
    pub rp_id: String,
    /// The user handle the RP gave.
    pub user_handle: Vec<u8>,
    /// The signature counter (the next assertion signs `sign_count + 1`, unless
    /// [`SoftAuthenticator::counter_step`] is 0).
    pub sign_count: u32,
    key: EcdsaKeyPair,
}

/// A software authenticator with its client (the browser's part).
pub struct SoftAuthenticator {
    /// The credentials made so far.
    pub credentials: Vec<SoftCredential>,
    /// The origin the client reports (`clientDataJSON.origin`).
    pub origin: String,
    /// Sign for this RP ID instead of the one the options name (a credential made for, or
    /// an assertion made at, another site).
    pub rp_id_override: Option<String>,
    /// Whether the user is verified (PIN, biometric).
    pub user_verified: bool,
    /// Whether credentials are backup eligible (synced passkeys).
    pub backup_eligible: bool,
    /// How much the signature counter grows per assertion (0: a synced passkey's fixed 0).
    pub counter_step: u32,
    rng: SystemRandom,
}

impl std::fmt::Debug for SoftAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftAuthenticator")
            .field("origin", &self.origin)
            .field("credentials", &self.credentials.len())
            .finish_non_exhaustive()
    }
}

fn cbor_head(major: u8, n: usize, out: &mut Vec<u8>) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | u8::try_from(n).unwrap_or(0)),
        24..=0xff => {
            out.push(m | 24);
            out.push(u8::try_from(n).unwrap_or(0));
        }
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&u16::try_from(n).unwrap_or(0).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend_from_slice(&u32::try_from(n).unwrap_or(0).to_be_bytes());
        }
    }
}

fn cbor_int(v: i64, out: &mut Vec<u8>) {
    if v >= 0 {
        cbor_head(0, usize::try_from(v).unwrap_or(0), out);
    } else {
        cbor_head(1, usize::try_from(-1 - v).unwrap_or(0), out);
    }
}

fn cbor_bytes(b: &[u8], out: &mut Vec<u8>) {
    cbor_head(2, b.len(), out);
    out.extend_from_slice(b);
}

fn cbor_text(s: &str, out: &mut Vec<u8>) {
    cbor_head(3, s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

fn b64_field(v: &Value) -> Vec<u8> {
    let s = v.as_str().unwrap_or_default();
    let mut out = vec![0u8; s.len() * 3 / 4 + 3];
    let n = b64::decode_into(s.as_bytes(), &mut out).unwrap_or(0);
    out.truncate(n);
    out
}

impl SoftAuthenticator {
    /// An authenticator whose client is at `origin`, verifying its user, with
    /// device-bound keys and a counter that grows by one.
    pub fn new(origin: &str) -> Self {
        Self {
            credentials: Vec::new(),
            origin: origin.to_owned(),
            rp_id_override: None,
            user_verified: true,
            backup_eligible: false,
            counter_step: 1,
            rng: SystemRandom::new(),
        }
    }

    fn flags(&self) -> u8 {
        let mut flags = UP;
        if self.user_verified {
            flags |= UV;
        }
        if self.backup_eligible {
            flags |= BE | BS;
        }
        flags
    }

    fn client_data(&self, kind: &str, challenge: &Value) -> Vec<u8> {
        json!({
            "type": kind,
            "challenge": challenge.as_str().unwrap_or_default(),
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    /// `navigator.credentials.create(options)`: a new credential; the JSON a page posts.
    ///
    /// # Panics
    /// On options that are not WebAuthn creation options.
    pub fn create(&mut self, options: &Value) -> Value {
        let o = &options["publicKey"];
        let rp_id = self
            .rp_id_override
            .clone()
            .unwrap_or_else(|| o["rp"]["id"].as_str().unwrap_or_default().to_owned());
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &self.rng)
            .unwrap_or_else(|_| unreachable!("key generation"));
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &self.rng)
                .unwrap_or_else(|_| unreachable!("a fresh key"));
        let point = key.public_key().as_ref();
        let id: [u8; 16] = crate::random::bytes();
        let mut cose = Vec::new();
        cbor_head(5, 5, &mut cose);
        for (k, v) in [(1, 2), (3, -7), (-1, 1)] {
            cbor_int(k, &mut cose);
            cbor_int(v, &mut cose);
        }
        cbor_int(-2, &mut cose);
        cbor_bytes(&point[1..33], &mut cose);
        cbor_int(-3, &mut cose);
        cbor_bytes(&point[33..65], &mut cose);
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags() | AT);
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]);
        auth_data.extend_from_slice(&u16::try_from(id.len()).unwrap_or(0).to_be_bytes());
        auth_data.extend_from_slice(&id);
        auth_data.extend_from_slice(&cose);
        let mut attestation = Vec::new();
        cbor_head(5, 3, &mut attestation);
        cbor_text("fmt", &mut attestation);
        cbor_text("none", &mut attestation);
        cbor_text("attStmt", &mut attestation);
        cbor_head(5, 0, &mut attestation);
        cbor_text("authData", &mut attestation);
        cbor_bytes(&auth_data, &mut attestation);
        let client_data = self.client_data("webauthn.create", &o["challenge"]);
        self.credentials.push(SoftCredential {
            id: id.to_vec(),
            rp_id,
            user_handle: b64_field(&o["user"]["id"]),
            sign_count: 0,
            key,
        });
        json!({
            "id": b64::encode(&id),
            "rawId": b64::encode(&id),
            "type": "public-key",
            "response": {
                "attestationObject": b64::encode(&attestation),
                "clientDataJSON": b64::encode(&client_data),
                "transports": ["internal"],
            },
            "extensions": {},
        })
    }

    /// `navigator.credentials.get(options)` with the credential at `index` (one of
    /// `allowCredentials` when the options name some); the JSON a page posts.
    ///
    /// # Panics
    /// On options that are not WebAuthn request options, or no such credential.
    pub fn get_with(&mut self, options: &Value, index: usize) -> Value {
        let o = &options["publicKey"];
        let flags = self.flags();
        let step = self.counter_step;
        let client_data = self.client_data("webauthn.get", &o["challenge"]);
        let rp_override = self.rp_id_override.clone();
        let cred = &mut self.credentials[index];
        cred.sign_count += step;
        let rp_id = rp_override.unwrap_or_else(|| {
            o["rpId"]
                .as_str()
                .map_or_else(|| cred.rp_id.clone(), str::to_owned)
        });
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(flags);
        auth_data.extend_from_slice(&cred.sign_count.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature = cred
            .key
            .sign(&self.rng, &signed)
            .unwrap_or_else(|_| unreachable!("signing"));
        json!({
            "id": b64::encode(&cred.id),
            "rawId": b64::encode(&cred.id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64::encode(&auth_data),
                "clientDataJSON": b64::encode(&client_data),
                "signature": b64::encode(signature.as_ref()),
                "userHandle": b64::encode(&cred.user_handle),
            },
            "extensions": {},
        })
    }

    /// `navigator.credentials.get(options)` with the last credential made.
    ///
    /// # Panics
    /// As [`get_with`](Self::get_with).
    pub fn get(&mut self, options: &Value) -> Value {
        let last = self.credentials.len() - 1;
        self.get_with(options, last)
    }
}
