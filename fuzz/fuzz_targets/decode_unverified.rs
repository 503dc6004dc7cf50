//! Any bytes through `dangerous::decode_unverified` (the CLI's `token decode`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = countersign::jwt::dangerous::decode_unverified(token);
    }
});
