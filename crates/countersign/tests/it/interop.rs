//! Interop with PyJWT, the seeds' library, both ways, in the venv `scripts/pyenv.sh` makes.
//!
//! Python is `$COUNTERSIGN_PYTHON`, else `target/pyenv/bin/python` in the workspace. When
//! neither exists the tests fail (they do not skip) and say to run `bash scripts/pyenv.sh`.
//! Keys reach Python through the environment, never the command line; one Python process
//! per test runs one of the scripts in `tests/it/py/`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use countersign::clock::UnixTime;
use countersign::jwt::{self, Issuance, JwtError, Subject, Validation, Verified};
use countersign::keys::{KeyRing, SecretKey};
use serde_json::{Value, json};

use crate::util::{TestKey, wall_clock_now};

fn python() -> PathBuf {
    const FIX: &str = "run `bash scripts/pyenv.sh` from the workspace root (it creates the \
                       venv target/pyenv with PyJWT), or set COUNTERSIGN_PYTHON to a python \
                       that has PyJWT";
    if let Some(p) = std::env::var_os("COUNTERSIGN_PYTHON").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "COUNTERSIGN_PYTHON={} does not exist: {FIX}",
            p.display()
        );
        return p;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv/bin/python");
    assert!(
        venv.exists(),
        "the PyJWT interop tests need Python: {} does not exist; {FIX}",
        venv.display()
    );
    venv
}

/// Run `tests/it/py/<script>` with `input` as JSON on stdin and `env` in its environment;
/// return its stdout as JSON.
pub(crate) fn run_python(script: &str, env: &[(&str, &str)], input: &Value) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/py")
        .join(script);
    let mut child = Command::new(python())
        .arg(&path)
        .env_remove("SECRET_KEY")
        .env_remove("OLD_SECRET_KEY")
        .envs(env.iter().copied())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start python: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The ring a server builds from `SECRET_KEY` and `SECRET_KEY_FALLBACKS`.
fn ring_from_env(secret_key: &str, fallbacks: &str) -> KeyRing {
    let fallbacks = fallbacks
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| SecretKey::parse(s).unwrap())
        .collect();
    KeyRing::new(SecretKey::parse(secret_key).unwrap(), fallbacks).unwrap()
}

fn verify_now(ring: &KeyRing, token: &str) -> Result<Verified, JwtError> {
    jwt::verify(
        ring,
        &Validation::default(),
        token,
        UnixTime(wall_clock_now()),
    )
}

fn subject(username: &str, role: &str) -> Subject {
    Subject {
        sub: Some(format!("id-{username}")),
        username: Some(username.into()),
        role: Some(role.into()),
        ..Subject::default()
    }
}

/// (a) Our tokens decode with the seeds' exact `jwt.decode(token, SECRET_KEY,
/// algorithms=["HS256"])`, and PyJWT really checks them: expired and foreign ones fail.
#[test]
fn our_tokens_decode_with_the_seeds_pyjwt_call() {
    let key = TestKey::generate();
    let ring = key.ring();
    let now = wall_clock_now();
    let plain = jwt::issue(
        &ring,
        &Issuance::default(),
        subject("john_doe", "admin"),
        UnixTime(now),
    )
    .unwrap();
    let mut extra = subject("jöhn ☃ \"quoted\"\n", "user");
    extra.extra =
        serde_json::from_str(r#"{"scope":["read","write"],"n":1.5,"nested":{"a":null}}"#).unwrap();
    let unicode = jwt::issue(&ring, &Issuance::default(), extra, UnixTime(now)).unwrap();
    let with_iss = jwt::issue(
        &ring,
        &Issuance {
            issuer: Some("https://auth.example".into()),
            ..Issuance::default()
        },
        subject("ann", "user"),
        UnixTime(now),
    )
    .unwrap();
    let expired = jwt::issue(
        &ring,
        &Issuance::default(),
        subject("old", "user"),
        UnixTime(now - 3600),
    )
    .unwrap();
    let foreign = jwt::issue(
        &TestKey::generate().ring(),
        &Issuance::default(),
        subject("mallory", "admin"),
        UnixTime(now),
    )
    .unwrap();
    // With an audience the seeds' call (which passes none) must refuse (RFC 7519 §4.1.3):
    // which is why `aud` is only issued when configured.
    let with_aud = jwt::issue(
        &ring,
        &Issuance {
            audience: Some("api".into()),
            ..Issuance::default()
        },
        subject("bob", "user"),
        UnixTime(now),
    )
    .unwrap();

    let tokens = [&plain, &unicode, &with_iss, &expired, &foreign, &with_aud];
    let input = Value::from(tokens.iter().map(|i| i.token.clone()).collect::<Vec<_>>());
    let out = run_python("decode.py", &[("SECRET_KEY", &key.text)], &input);
    let out = out.as_array().unwrap();
    assert_eq!(out.len(), tokens.len());

    for (issued, result) in [&plain, &unicode, &with_iss].iter().zip(out) {
        let claims = result
            .get("claims")
            .unwrap_or_else(|| panic!("PyJWT refused our token: {result}"));
        // PyJWT reads exactly what we signed.
        assert_eq!(claims, &serde_json::to_value(&issued.claims).unwrap());
    }
    assert_eq!(out[0]["claims"]["username"], "john_doe");
    assert_eq!(out[0]["claims"]["role"], "admin");
    assert_eq!(out[1]["claims"]["username"], "jöhn ☃ \"quoted\"\n");
    assert_eq!(out[1]["claims"]["scope"], json!(["read", "write"]));
    assert_eq!(out[2]["claims"]["iss"], "https://auth.example");
    assert_eq!(out[3], json!({"error": "ExpiredSignatureError"}));
    assert_eq!(out[4], json!({"error": "InvalidSignatureError"}));
    assert_eq!(out[5], json!({"error": "InvalidAudienceError"}));
}

/// (a) continued: the seeds' whole Flask `token_required` route accepts our bearer tokens
/// and answers with the seeds' messages.
#[test]
fn the_seeds_flask_route_accepts_our_tokens() {
    let key = TestKey::generate();
    let ring = key.ring();
    let now = wall_clock_now();
    let ok = jwt::issue(
        &ring,
        &Issuance::default(),
        subject("john_doe", "admin"),
        UnixTime(now),
    )
    .unwrap();
    let expired = jwt::issue(
        &ring,
        &Issuance::default(),
        subject("john_doe", "admin"),
        UnixTime(now - 7200),
    )
    .unwrap();
    let input = json!([
        format!("Bearer {}", ok.token),
        format!("Bearer {}", expired.token),
        format!("Bearer {}x", ok.token),
        null,
    ]);
    let out = run_python("flask_protected.py", &[("SECRET_KEY", &key.text)], &input);
    assert_eq!(
        out,
        json!([
            {"status": 200, "body": {"message": "Hello john_doe, you have access to this protected route."}},
            {"status": 403, "body": {"message": "Token has expired!"}},
            {"status": 403, "body": {"message": "Invalid token!"}},
            {"status": 401, "body": {"message": "Token is missing!"}},
        ])
    );
}

/// (b) Tokens from the seeds' exact `jwt.encode(user_data, SECRET_KEY, algorithm="HS256")`
/// (no `kid`) verify here, with the seeds' claims; an expired one is refused as expired.
#[test]
fn pyjwt_tokens_without_kid_verify_here() {
    let key = TestKey::generate();
    let ring = ring_from_env(&key.text, "");
    let input = json!([
        {"username": "john_doe", "role": "admin", "key": "current"},
        {"username": "jöhn ☃", "role": "user", "key": "current"},
        {"username": "late", "role": "user", "key": "current", "hours": -1},
    ]);
    let out = run_python("encode.py", &[("SECRET_KEY", &key.text)], &input);
    let tokens: Vec<String> = serde_json::from_value(out).unwrap();
    let now = wall_clock_now();

    for (token, (username, role)) in tokens
        .iter()
        .zip([("john_doe", "admin"), ("jöhn ☃", "user")])
    {
        let (header, _) = jwt::dangerous::decode_unverified(token).unwrap();
        assert_eq!(header.get("kid"), None, "PyJWT's header has no kid");
        let ok = verify_now(&ring, token).unwrap();
        assert_eq!(ok.key_index, 0);
        assert_eq!(ok.claims.username.as_deref(), Some(username));
        assert_eq!(ok.claims.role.as_deref(), Some(role));
        assert!(
            (ok.claims.exp.0 - (now + 3600)).abs() <= 5,
            "{:?}",
            ok.claims.exp
        );
        assert!(ok.claims.extra.is_empty() && ok.claims.sub.is_none());
    }
    assert!(matches!(
        verify_now(&ring, &tokens[2]),
        Err(JwtError::Expired { ago }) if (3595..=3605).contains(&ago)
    ));
    // Under another key: refused.
    let other = TestKey::generate().ring();
    assert_eq!(
        verify_now(&other, &tokens[0]).unwrap_err(),
        JwtError::InvalidSignature { tried: 1 }
    );
}

/// (c) PyJWT tokens with `headers={"kid": <our kid>}` verify, with the key the kid names.
#[test]
fn pyjwt_tokens_with_our_kid_verify_here() {
    let current = TestKey::generate();
    let old = TestKey::generate();
    let ring = ring_from_env(&current.text, &old.text);
    let input = json!([
        {"username": "john_doe", "role": "admin", "key": "current", "kid": current.kid()},
        {"username": "jane", "role": "user", "key": "old", "kid": old.kid()},
        // The kid of one key, the MAC of the other.
        {"username": "mallory", "role": "admin", "key": "old", "kid": current.kid()},
        {"username": "mallory", "role": "admin", "key": "current", "kid": "../../etc/passwd"},
    ]);
    let out = run_python(
        "encode.py",
        &[("SECRET_KEY", &current.text), ("OLD_SECRET_KEY", &old.text)],
        &input,
    );
    let tokens: Vec<String> = serde_json::from_value(out).unwrap();
    let (header, _) = jwt::dangerous::decode_unverified(&tokens[0]).unwrap();
    assert_eq!(header.get("kid"), Some(&json!(current.kid())));

    let ok = verify_now(&ring, &tokens[0]).unwrap();
    assert_eq!(
        (ok.key_index, ok.claims.username.as_deref()),
        (0, Some("john_doe"))
    );
    let ok = verify_now(&ring, &tokens[1]).unwrap();
    assert_eq!(
        (ok.key_index, ok.claims.username.as_deref()),
        (1, Some("jane"))
    );
    assert_eq!(
        verify_now(&ring, &tokens[2]).unwrap_err(),
        JwtError::InvalidSignature { tried: 1 }
    );
    assert_eq!(
        verify_now(&ring, &tokens[3]).unwrap_err(),
        JwtError::UnknownKey {
            kid: "../../etc/passwd".into()
        }
    );
}

/// (d) A token PyJWT signs with an old key verifies while that key is in
/// `SECRET_KEY_FALLBACKS`, and fails once it is removed (the seeds' emergency rotation).
#[test]
fn a_pyjwt_token_from_a_fallback_key_verifies_until_the_key_is_removed() {
    let current = TestKey::generate();
    let old = TestKey::generate();
    let older = TestKey::generate();
    let input = json!([
        {"username": "john_doe", "role": "admin", "key": "old"},
        {"username": "john_doe", "role": "admin", "key": "old", "kid": old.kid()},
    ]);
    let out = run_python(
        "encode.py",
        &[("SECRET_KEY", &current.text), ("OLD_SECRET_KEY", &old.text)],
        &input,
    );
    let tokens: Vec<String> = serde_json::from_value(out).unwrap();

    // Rotation: the old key is a fallback (behind an even older one).
    let rotated = ring_from_env(&current.text, &format!("{},{}", older.text, old.text));
    for token in &tokens {
        let ok = verify_now(&rotated, token).unwrap();
        assert_eq!(ok.key_index, 2, "verified by the fallback that signed it");
        assert_eq!(ok.claims.username.as_deref(), Some("john_doe"));
    }
    // Removed from the fallbacks: refused, with and without kid.
    let removed = ring_from_env(&current.text, &older.text);
    assert_eq!(
        verify_now(&removed, &tokens[0]).unwrap_err(),
        JwtError::InvalidSignature { tried: 2 }
    );
    assert_eq!(
        verify_now(&removed, &tokens[1]).unwrap_err(),
        JwtError::UnknownKey { kid: old.kid() }
    );
    // And tokens we sign after the rotation are PyJWT-verifiable with the new SECRET_KEY.
    let fresh = jwt::issue(
        &rotated,
        &Issuance::default(),
        subject("john_doe", "admin"),
        UnixTime(wall_clock_now()),
    )
    .unwrap();
    let out = run_python(
        "decode.py",
        &[("SECRET_KEY", &current.text)],
        &json!([fresh.token]),
    );
    assert_eq!(out[0]["claims"]["username"], "john_doe");
}
