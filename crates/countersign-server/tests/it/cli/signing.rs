//! Signing keys on the command line: `keygen --alg`, `keys init | rotate | prune` with a
//! moved clock, `token issue | verify` with a signing key, `token verify --jwks FILE`.

use std::os::unix::fs::PermissionsExt as _;

use countersign::clock::ManualClock;
use countersign::jwt::{PublicKeys, dangerous::decode_unverified};
use countersign::signing::SigningKey;

use super::{T0, UnixTime, cs, cs_at, key, scratch};

#[test]
fn keygen_alg_writes_a_0600_pem_and_prints_only_its_kid() {
    for alg in ["EdDSA", "ES256"] {
        let path = scratch("signing.pem");
        let p = path.to_str().unwrap();
        let out = cs(&["keygen", "--alg", alg, "--out", p], &[]);
        assert_eq!(out.code, 0, "{out:?}");
        let key = SigningKey::from_file(&path).unwrap();
        assert_eq!(out.stdout, format!("{}\n", key.kid()));
        assert_eq!(key.alg().as_str(), alg);
        assert!(!out.stdout.contains("PRIVATE") && !out.stderr.contains("PRIVATE"));
        let pem = std::fs::read_to_string(&path).unwrap();
        let body = pem.lines().nth(1).unwrap();
        assert!(!out.stderr.contains(&body[..16]), "{out:?}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Never over an existing file.
        let again = cs(&["keygen", "--alg", alg, "--out", p], &[]);
        assert_eq!(again.code, 2, "{again:?}");
        assert_eq!(SigningKey::from_file(&path).unwrap().kid(), key.kid());
    }
    let out = cs(&["keygen", "--alg", "ES256"], &[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--out FILE"), "{out:?}");
    let out = cs(&["keygen", "--alg", "RS256"], &[]);
    assert_eq!(out.code, 2);
}

fn header_kid(token: &str) -> String {
    let (h, _) = decode_unverified(token).unwrap();
    h["kid"].as_str().unwrap().to_owned()
}

fn issue_at(clock: &ManualClock, env: &[(&'static str, &str)]) -> String {
    let out = cs_at(
        clock,
        &["token", "issue", "--username", "u", "--role", "user"],
        env,
    );
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout.trim().to_owned()
}

fn verify_at(clock: &ManualClock, env: &[(&'static str, &str)], token: &str) -> (i32, String) {
    let out = cs_at(clock, &["token", "verify", token], env);
    (out.code, out.stderr)
}

#[test]
fn staged_rotation_with_the_clock() {
    let clock = ManualClock::new(UnixTime(T0));
    let dir = scratch("keys");
    let d = dir.to_str().unwrap();
    let env: &[(&'static str, &str)] = &[("SIGNING_KEY_DIR", d)];

    let init = cs_at(&clock, &["keys", "init", "--jwks-max-age", "10m"], env);
    assert_eq!(init.code, 0, "{init:?}");
    let first = init.stdout.trim().to_owned();
    let again = cs_at(&clock, &["keys", "init"], env);
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("already holds signing keys"),
        "{again:?}"
    );

    let old_token = issue_at(&clock, env);
    assert_eq!(header_kid(&old_token), first);

    let out = cs_at(&clock, &["keys", "rotate", "--promote"], env);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("no key is staged"), "{out:?}");

    let staged = cs_at(
        &clock,
        &["keys", "rotate", "--stage", "--alg", "ES256"],
        env,
    );
    assert_eq!(staged.code, 0, "{staged:?}");
    let next = staged.stdout.trim().to_owned();
    assert!(staged.stderr.contains("after 600s"), "{staged:?}");
    // Staged: published, but the current key still signs.
    assert_eq!(header_kid(&issue_at(&clock, env)), first);

    clock.advance(599);
    let early = cs_at(&clock, &["keys", "rotate", "--promote"], env);
    assert_eq!(early.code, 2);
    assert!(early.stderr.contains("promote in 1s"), "{early:?}");
    clock.advance(1);
    let promoted = cs_at(
        &clock,
        &["keys", "rotate", "--promote", "--keep", "30m"],
        env,
    );
    assert_eq!(promoted.code, 0, "{promoted:?}");
    assert_eq!(promoted.stdout.trim(), next);
    assert!(!dir.join(format!("{first}.pem")).exists());

    let new_token = issue_at(&clock, env);
    assert_eq!(header_kid(&new_token), next);
    let (h, _) = decode_unverified(&new_token).unwrap();
    assert_eq!(h["alg"], "ES256");
    // The retired key still verifies its tokens (they have 15 minutes to run).
    assert_eq!(verify_at(&clock, env, &old_token).0, 0);

    // Not prunable before --keep has passed.
    let early = cs_at(&clock, &["keys", "prune"], env);
    assert_eq!((early.code, early.stdout.as_str()), (0, ""));
    let forced = cs_at(&clock, &["keys", "prune", "--kid", &first], env);
    assert_eq!(forced.code, 2);
    assert!(forced.stderr.contains("--force"), "{forced:?}");
    clock.advance(30 * 60);
    let pruned = cs_at(&clock, &["keys", "prune"], env);
    assert_eq!(pruned.code, 0, "{pruned:?}");
    assert_eq!(pruned.stdout.trim(), first);
    // Pruned: its tokens are refused by kid (they had expired anyway; verify with leeway
    // far beyond their life to see the reason is the key, not the time).
    let out = cs_at(
        &clock,
        &["token", "verify", "--leeway", "7d", &old_token],
        env,
    );
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("not in the ring"), "{out:?}");

    let no_step = cs_at(&clock, &["keys", "rotate"], env);
    assert_eq!(no_step.code, 2);
    let no_dir = cs_at(&clock, &["keys", "rotate", "--stage"], &[]);
    assert_eq!(no_dir.code, 2);
    assert!(no_dir.stderr.contains("SIGNING_KEY_DIR"), "{no_dir:?}");
}

#[test]
fn token_issue_and_verify_with_a_signing_key_file() {
    let clock = ManualClock::new(UnixTime(T0));
    let path = scratch("signing.pem");
    let p = path.to_str().unwrap();
    assert_eq!(cs(&["keygen", "--alg", "EdDSA", "--out", p], &[]).code, 0);
    let file: &[(&'static str, &str)] = &[("SIGNING_KEY_FILE", p)];

    // No SECRET_KEY needed to sign and verify with the signing key alone.
    let token = issue_at(&clock, file);
    let (h, _) = decode_unverified(&token).unwrap();
    assert_eq!(h["alg"], "EdDSA");
    let (code, stderr) = verify_at(&clock, file, &token);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("signing key"), "{stderr}");

    // Against a JWK Set file holding the public key.
    let jwks = scratch("jwks.json");
    let signing = SigningKey::from_file(&path).unwrap();
    let set = PublicKeys::new(vec![signing.public().clone()]).unwrap();
    std::fs::write(&jwks, set.to_jwks()).unwrap();
    let out = cs_at(
        &clock,
        &["token", "verify", "--jwks", jwks.to_str().unwrap(), &token],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["username"], "u");
    assert!(out.stderr.contains(signing.kid()), "{out:?}");
    let missing = cs_at(
        &clock,
        &["token", "verify", "--jwks", "/nonexistent", &token],
        &[],
    );
    assert_eq!(missing.code, 2);

    // Migration: an HS256 token verifies while accepted, not once refused.
    let secret = key();
    let both: &[(&'static str, &str)] = &[("SIGNING_KEY_FILE", p), ("SECRET_KEY", &secret)];
    let hs_only: &[(&'static str, &str)] = &[("SECRET_KEY", &secret)];
    let hs = issue_at(&clock, hs_only);
    assert_eq!(verify_at(&clock, both, &hs).0, 0);
    let refuse: &[(&'static str, &str)] = &[
        ("SIGNING_KEY_FILE", p),
        ("SECRET_KEY", &secret),
        ("COUNTERSIGN_HS256_TOKENS", "refuse"),
    ];
    let (code, stderr) = verify_at(&clock, refuse, &hs);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("algorithm \"HS256\" not accepted"),
        "{stderr}"
    );
    // Refusing HS256 with no signing key is a configuration error.
    let none: &[(&'static str, &str)] = &[
        ("SECRET_KEY", &secret),
        ("COUNTERSIGN_HS256_TOKENS", "refuse"),
    ];
    assert_eq!(verify_at(&clock, none, &hs).0, 2);
}
