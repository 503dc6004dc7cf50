//! A jsonwebtoken `CryptoProvider` over ring (HS256 over `hmac` + `sha2`, a keyed state
//! cloned per call, as jsonwebtoken's own `rust_crypto` provider does it), for the differential tests and the
//! benches (`benches/*.rs` include this file).
//!
//! jsonwebtoken 11 needs a provider: its `rust_crypto` feature pulls the `rsa` crate
//! (RUSTSEC-2023-0071, no fixed release) into the build even for HS256, and `aws_lc_rs`
//! adds a C library build to every test run. This one adds nothing to the dependency
//! tree: ring is the engine's own dependency. So jsonwebtoken's EdDSA and ES256 figures in
//! the bench are its framing (header and claims parsing, base64, key handling) around the
//! same curve code as ours.

use hmac::{Hmac, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, UnparsedPublicKey,
};
use sha2::Sha256;

/// The provider.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Install [`PROVIDER`] as jsonwebtoken's process-wide default (once; later calls do
/// nothing).
pub fn install() {
    let _ = PROVIDER.install_default();
}

fn wrong_key() -> Error {
    Error::from(ErrorKind::InvalidKeyFormat)
}

struct Hs256(Hmac<Sha256>);

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        mac.verify_slice(signature)
            .map_err(signature::Error::from_source)
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

/// A verifying key for EdDSA or ES256: the raw public key, as `DecodingKey::from_ed_components`
/// and `from_ec_components` hold it.
struct Public {
    alg: Algorithm,
    raw: Vec<u8>,
}

impl Verifier<Vec<u8>> for Public {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let alg: &'static dyn ring::signature::VerificationAlgorithm = match self.alg {
            Algorithm::ES256 => &ECDSA_P256_SHA256_FIXED,
            _ => &ED25519,
        };
        UnparsedPublicKey::new(alg, &self.raw)
            .verify(msg, signature)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Public {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// A signing key for EdDSA or ES256, parsed from the PKCS#8 DER of an `EncodingKey`
/// (`from_ed_der`, `from_ec_der`) on each use, as jsonwebtoken's own providers do.
enum Private {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
}

impl Signer<Vec<u8>> for Private {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        match self {
            Self::Ed(pair) => Ok(pair.sign(msg).as_ref().to_vec()),
            Self::Ec(pair) => pair
                .sign(&SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| signature::Error::new()),
        }
    }
}

impl JwtSigner for Private {
    fn algorithm(&self) -> Algorithm {
        match self {
            Self::Ed(_) => Algorithm::EdDSA,
            Self::Ec(_) => Algorithm::ES256,
        }
    }
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    match (algorithm, key.family()) {
        (Algorithm::HS256, AlgorithmFamily::Hmac) => Ok(Box::new(Hs256(
            Hmac::new_from_slice(key.as_bytes()).map_err(|_| wrong_key())?,
        ))),
        (Algorithm::EdDSA, AlgorithmFamily::Ed) => Ok(Box::new(Private::Ed(
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(key.as_bytes()).map_err(|_| wrong_key())?,
        ))),
        (Algorithm::ES256, AlgorithmFamily::Ec) => Ok(Box::new(Private::Ec(
            EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                key.as_bytes(),
                &SystemRandom::new(),
            )
            .map_err(|_| wrong_key())?,
        ))),
        _ => Err(Error::from(ErrorKind::InvalidAlgorithm)),
    }
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    match (algorithm, key.family()) {
        (Algorithm::HS256, AlgorithmFamily::Hmac) => Ok(Box::new(Hs256(
            Hmac::new_from_slice(key.try_get_as_bytes()?).map_err(|_| wrong_key())?,
        ))),
        (Algorithm::EdDSA, AlgorithmFamily::Ed) | (Algorithm::ES256, AlgorithmFamily::Ec) => {
            Ok(Box::new(Public {
                alg: *algorithm,
                raw: key.try_get_as_bytes()?.to_vec(),
            }))
        }
        _ => Err(Error::from(ErrorKind::InvalidAlgorithm)),
    }
}
