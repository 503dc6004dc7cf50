//! Writes the seed corpus (`fuzz/seeds/<target>/`): tokens and payloads that reach every
//! stage of verification with the fuzz ring, so the fuzzer starts past the MAC instead of
//! having to find its way there. Deterministic: fixed keys, times and token ids.
//!
//! `cargo +nightly run --manifest-path fuzz/Cargo.toml --example seeds`

use std::path::Path;

use countersign::clock::UnixTime;
use countersign::jwt::{self, Claims};

/// A fuzz-ring token for `claims`, as `jwt::encode` makes it.
fn ours(claims: &Claims) -> Vec<u8> {
    jwt::encode(&jwt::fuzz_ring(), claims).into_bytes()
}

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    // The fuzz targets verify at 1_700_000_000.
    let mut claims = Claims::new(UnixTime(1_700_000_900));
    claims.sub = Some("1042".into());
    claims.username = Some("john_doe".into());
    claims.role = Some("admin".into());
    claims.iat = Some(UnixTime(1_700_000_000));
    claims.jti = Some("AAECAwQFBgcICQoLDA0ODw".into());
    let mut extra = claims.clone();
    extra.iss = Some("countersign".into());
    extra.aud = vec!["api".into(), "web".into()];
    extra.nbf = Some(UnixTime(1_699_999_990));
    extra.extra.insert(
        "tenant".into(),
        serde_json::json!({"id": 7, "tags": ["a", "b\n"]}),
    );
    let expired = Claims::new(UnixTime(1_600_000_000));

    let tokens: [(&str, Vec<u8>); 5] = [
        ("ours", ours(&claims)),
        ("ours_extra_claims", ours(&extra)),
        ("ours_expired", ours(&expired)),
        // RFC 7515 appendix A.1 (another key: reaches the MAC and fails there).
        (
            "rfc7515_a1",
            b"eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".to_vec(),
        ),
        // `none` with an empty signature.
        (
            "alg_none",
            b"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjE3MDAwMDA5MDB9.".to_vec(),
        ),
    ];
    for (name, token) in &tokens {
        for target in ["verify", "decode_unverified"] {
            std::fs::create_dir_all(dir.join(target))?;
            std::fs::write(dir.join(target).join(name), token)?;
        }
    }

    // verify_signed: a selector byte (0: our header, 1/5: a ring key's header, 2: PyJWT's,
    // 3: a header of the fuzzer's own, up to a newline), then the payload.
    let payloads: [(&str, u8, &[u8]); 7] = [
        (
            "ours",
            0,
            br#"{"sub":"1042","username":"john_doe","role":"admin","iat":1700000000,"exp":1700000900,"jti":"AAECAwQFBgcICQoLDA0ODw"}"#,
        ),
        ("pyjwt_seeds", 2, br#"{"username": "john_doe", "role": "admin", "exp": 1700000900}"#),
        ("fallback_key", 5, br#"{"exp":1700000900,"aud":["api","web"],"iss":"countersign"}"#),
        ("escapes_floats", 0, br#"{"exp":1700000900.5,"sub":"a\u00e9\n","x":[1,{"y":null}]}"#),
        ("duplicate_nested", 0, br#"{"exp":1700000900,"x":{"a":1,"a":2}}"#),
        ("exp_string", 1, br#"{"exp":"1700000900"}"#),
        (
            "own_header",
            3,
            b"{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}\n{\"exp\":1700000900,\"nbf\":1700000100}",
        ),
    ];
    std::fs::create_dir_all(dir.join("verify_signed"))?;
    for (name, selector, payload) in payloads {
        let mut seed = vec![selector];
        seed.extend_from_slice(payload);
        std::fs::write(dir.join("verify_signed").join(name), seed)?;
    }
    println!("seeds written under {}", dir.display());
    Ok(())
}
