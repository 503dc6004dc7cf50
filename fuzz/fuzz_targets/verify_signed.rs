//! Any bytes as the payload (and optionally the header) of a correctly signed token: the
//! claims parsers, the duplicate-member and type rules, the time checks. Panics if the
//! one-pass reader of common payloads and the strict parser disagree.
#![no_main]

use std::sync::LazyLock;

use countersign::keys::KeyRing;
use libfuzzer_sys::fuzz_target;

static RING: LazyLock<KeyRing> = LazyLock::new(countersign::jwt::fuzz_ring);

fuzz_target!(|data: &[u8]| {
    let _ = countersign::jwt::fuzz_verify_signed(&RING, data);
});
