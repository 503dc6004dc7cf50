//! Any bytes as a bearer token: size, structure, base64url, header rules, algorithm
//! pinning, key lookup and the MAC. (Random bytes almost never carry a valid MAC, so the
//! claims are fuzzed by `verify_signed`.)
#![no_main]

use std::sync::LazyLock;

use countersign::keys::KeyRing;
use libfuzzer_sys::fuzz_target;

static RING: LazyLock<KeyRing> = LazyLock::new(countersign::jwt::fuzz_ring);

fuzz_target!(|data: &[u8]| {
    let _ = countersign::jwt::fuzz_verify(&RING, data);
});
