//! Flask session cookies (itsdangerous `URLSafeTimedSerializer`, as Flask sets them up):
//! the first byte picks raw (the bytes are the cookie: size, shape, base64url, timestamp,
//! the HMAC-SHA1 under every key of the fuzz ring) or signed (the bytes are a payload that
//! is signed, so zlib, JSON and Flask's tags are reached). A session that opens must open
//! again after being written back.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = countersign::flask::cookie::fuzz_open(data);
});
