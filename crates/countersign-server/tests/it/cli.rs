//! The `countersign` command line: the real binary for everything that does not depend on
//! the time, the in-process [`run`] with a `ManualClock` for everything that does.
//!
//! Keys are generated per test and reach the binary only through its environment. Every
//! helper checks that no stdout or stderr contains key material, not even a fragment.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use countersign::clock::{ManualClock, UnixTime};
use countersign::keys::SecretKey;
use countersign_server::{Context, report_error, run};
use serde_json::Value;

mod signing;

const BIN: &str = env!("CARGO_BIN_EXE_countersign");
const T0: i64 = 1_700_000_000;
const KEY_VARS: [&str; 3] = ["SECRET_KEY", "SECRET_KEY_FILE", "SECRET_KEY_FALLBACKS"];

/// What a run printed and its status.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap()
    }
}

/// A new strong key, as `countersign keygen` prints it.
fn key() -> String {
    SecretKey::generate(32).unwrap().1.to_string()
}

fn kid(key: &str) -> String {
    SecretKey::parse(key).unwrap().kid().to_string()
}

/// Fail if any 8-byte fragment of any secret appears in the output.
fn assert_no_secret(out: &Out, secrets: &[&str]) {
    for secret in secrets {
        let bytes = secret.as_bytes();
        for window in bytes.windows(8.min(bytes.len())) {
            let fragment = std::str::from_utf8(window).unwrap_or("");
            if fragment.is_empty() {
                continue;
            }
            assert!(
                !out.stdout.contains(fragment) && !out.stderr.contains(fragment),
                "key material leaked: {out:?}"
            );
        }
    }
}

/// The secrets among environment variables: the keys, each fallback.
fn secrets_in<'a>(env: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<&'a str> {
    env.into_iter()
        .filter(|(name, _)| *name == "SECRET_KEY" || *name == "SECRET_KEY_FALLBACKS")
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// Run the real binary with exactly the key variables in `env`.
fn cs(args: &[&str], env: &[(&str, &str)]) -> Out {
    cs_stdin(args, env, None)
}

fn cs_stdin(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Out {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for var in KEY_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let out = Out {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    };
    assert_no_secret(&out, &secrets_in(env.iter().copied()));
    out
}

/// Run in-process at the time `clock` says, as `main` does.
fn cs_at(clock: &ManualClock, args: &[&str], env: &[(&'static str, &str)]) -> Out {
    let vars: BTreeMap<&str, &str> = env.iter().copied().collect();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut stdin: &[u8] = b"";
    let mut ctx = Context {
        clock,
        env: &vars,
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
    };
    let argv = std::iter::once("countersign").chain(args.iter().copied());
    let code = match run(argv, &mut ctx) {
        Ok(code) => code,
        Err(err) => report_error(&err, ctx.stderr),
    };
    let code = (0..=255u8)
        .find(|c| ExitCode::from(*c) == code)
        .map(i32::from)
        .unwrap();
    let out = Out {
        code,
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    };
    assert_no_secret(&out, &secrets_in(env.iter().copied()));
    out
}

/// A fresh path under Cargo's scratch directory for integration tests.
fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn issue(env: &[(&str, &str)], extra: &[&str]) -> String {
    let mut args = vec![
        "token",
        "issue",
        "--username",
        "john_doe",
        "--role",
        "admin",
    ];
    args.extend_from_slice(extra);
    let out = cs(&args, env);
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout.trim().to_owned()
}

// --- keygen ---------------------------------------------------------------------------

#[test]
fn keygen_prints_43_base64url_chars_each_time_new() {
    let mut seen = Vec::new();
    for _ in 0..3 {
        let out = cs(&["keygen"], &[]);
        assert_eq!(out.code, 0, "{out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
        let k = out.stdout.strip_suffix('\n').unwrap();
        assert_eq!(k.len(), 43, "{k}");
        assert!(
            k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{k}"
        );
        assert!(SecretKey::parse(k).is_ok());
        assert!(!seen.contains(&k.to_owned()));
        seen.push(k.to_owned());
    }
}

#[test]
fn keygen_bytes_64_is_86_chars() {
    let out = cs(&["keygen", "--bytes", "64"], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim_end().len(), 86);
}

#[test]
fn keygen_refuses_fewer_than_32_bytes() {
    let out = cs(&["keygen", "--bytes", "16"], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("at least 32"), "{out:?}");
}

// --- keys check -----------------------------------------------------------------------

#[test]
fn keys_check_good_key() {
    let k = key();
    let out = cs(&["keys", "check"], &[("SECRET_KEY", &k)]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains(&kid(&k)), "{out:?}");
    assert!(out.stdout.contains("current"));
    assert!(out.stdout.contains(" 43 "), "{out:?}");
    let bits = format!(" {:.0} ", SecretKey::parse(&k).unwrap().capacity_bits());
    assert!(out.stdout.contains(&bits), "{out:?}");
    assert!(out.stdout.contains("ok"));
}

#[test]
fn keys_check_placeholder() {
    let out = cs(&["keys", "check"], &[("SECRET_KEY", "your_secret_key")]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("refused"), "{out:?}");
    assert!(out.stderr.contains("placeholder"), "{out:?}");
    assert!(out.stderr.contains("countersign keygen"), "{out:?}");
    assert!(!out.stdout.contains("your_secret_key") && !out.stderr.contains("your_secret_key"));
}

#[test]
fn keys_check_short_key() {
    let k = key();
    let short = &k[..20];
    let out = cs(&["keys", "check"], &[("SECRET_KEY", short)]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("20 bytes"), "{out:?}");
    assert!(out.stderr.contains("countersign keygen"), "{out:?}");
}

#[test]
fn keys_check_weak_fallback() {
    let (k, old) = (key(), key());
    let fallbacks = format!("{old},changeme");
    let env = [
        ("SECRET_KEY", k.as_str()),
        ("SECRET_KEY_FALLBACKS", &fallbacks),
    ];
    let out = cs(&["keys", "check"], &env);
    assert_eq!(out.code, 2, "{out:?}");
    // Both good keys are reported with their kids; the weak one without.
    assert!(out.stdout.contains(&kid(&k)) && out.stdout.contains(&kid(&old)));
    let weak = out.stdout.lines().find(|l| l.starts_with("fallback 2"));
    assert!(weak.unwrap().contains("refused"), "{out:?}");
    assert!(out.stderr.contains("1 of 3 keys refused"), "{out:?}");
    assert!(out.stderr.contains("fallback 2"), "{out:?}");
    assert!(out.stderr.contains("SECRET_KEY_FALLBACKS"), "{out:?}");
    assert!(out.stderr.contains("countersign keygen"), "{out:?}");
}

#[test]
fn keys_check_duplicate_fallback() {
    let k = key();
    let out = cs(
        &["keys", "check"],
        &[("SECRET_KEY", &k), ("SECRET_KEY_FALLBACKS", &k)],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("twice"), "{out:?}");
}

#[test]
fn keys_check_secret_key_file_and_flag() {
    let k = key();
    let path = scratch("secret.key");
    std::fs::write(&path, format!("{k}\n")).unwrap();
    let path_str = path.to_str().unwrap();

    let out = cs(&["keys", "check"], &[("SECRET_KEY_FILE", path_str)]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains(&kid(&k)), "{out:?}");
    assert!(out.stdout.contains(path_str), "{out:?}");
    assert_no_secret(&out, &[&k]);

    // The flag overrides SECRET_KEY, weak or not.
    let flag = ["keys", "check", "--secret-key-file", path_str];
    let out = cs(&flag, &[("SECRET_KEY", "changeme")]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("--secret-key-file"), "{out:?}");
    assert_no_secret(&out, &[&k]);

    let missing = format!("{path_str}.missing");
    let out = cs(&["keys", "check"], &[("SECRET_KEY_FILE", &missing)]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("cannot read"), "{out:?}");
    assert!(out.stderr.contains("countersign keygen"), "{out:?}");
}

#[test]
fn keys_check_nothing_set() {
    let out = cs(&["keys", "check"], &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no secret key is set"), "{out:?}");
    assert!(out.stderr.contains("countersign keygen"), "{out:?}");
}

#[test]
fn keys_check_both_sources_is_a_usage_error() {
    let k = key();
    let out = cs(
        &["keys", "check"],
        &[("SECRET_KEY", &k), ("SECRET_KEY_FILE", "/nonexistent")],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("both SECRET_KEY and SECRET_KEY_FILE"));
}

// --- token issue / verify -------------------------------------------------------------

#[test]
fn issue_then_verify_round_trip() {
    let k = key();
    let env = [("SECRET_KEY", k.as_str())];
    let token = issue(
        &env,
        &[
            "--ttl", "1h", "--sub", "42", "--claim", "n=3", "--claim", "team=red",
        ],
    );
    let out = cs(&["token", "verify", &token], &env);
    assert_eq!(out.code, 0, "{out:?}");
    let claims = out.json();
    assert_eq!(claims["username"], "john_doe");
    assert_eq!(claims["role"], "admin");
    assert_eq!(claims["sub"], "42");
    assert_eq!(claims["n"], 3);
    assert_eq!(claims["team"], "red");
    assert_eq!(claims["jti"].as_str().unwrap().len(), 22);
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3_600);
    assert!(out.stderr.contains("current key"), "{out:?}");
    assert!(out.stderr.contains(&kid(&k)), "{out:?}");
}

#[test]
fn verify_reads_stdin_and_decode_too() {
    let k = key();
    let env = [("SECRET_KEY", k.as_str())];
    let token = issue(&env, &[]);
    let out = cs_stdin(&["token", "verify", "-"], &env, Some(&format!("{token}\n")));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["username"], "john_doe");
    let out = cs_stdin(&["token", "decode", "-"], &[], Some(&token));
    assert_eq!(out.code, 0, "{out:?}");
    let out = cs_stdin(&["token", "verify", "-"], &env, Some(""));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no token"), "{out:?}");
}

#[test]
fn verify_with_another_key_fails() {
    let (signer, other) = (key(), key());
    let token = issue(&[("SECRET_KEY", &signer)], &[]);
    let out = cs(&["token", "verify", &token], &[("SECRET_KEY", &other)]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("signed with a key not in the ring"),
        "{out:?}"
    );
    assert!(out.stderr.contains(&kid(&signer)), "{out:?}");
}

#[test]
fn verify_tampered_token_fails_on_signature() {
    let k = key();
    let env = [("SECRET_KEY", k.as_str())];
    let token = issue(&env, &[]);
    // Replace the signature with another well-formed 32-byte MAC.
    let (signing_input, sig) = token.rsplit_once('.').unwrap();
    let forged_sig: String = sig
        .chars()
        .map(|c| if c == 'A' { 'B' } else { 'A' })
        .collect();
    let forged_sig = format!("{}A", &forged_sig[..42]);
    let forged = format!("{signing_input}.{forged_sig}");
    let out = cs(&["token", "verify", &forged], &env);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("signature does not match"), "{out:?}");
    let out = cs(&["token", "verify", "not.a.token"], &env);
    assert_eq!(out.code, 1, "{out:?}");
}

#[test]
fn fallback_key_verifies_and_says_so() {
    let (old, new) = (key(), key());
    let token = issue(&[("SECRET_KEY", &old)], &[]);
    let rotated = [("SECRET_KEY", new.as_str()), ("SECRET_KEY_FALLBACKS", &old)];
    let out = cs(&["token", "verify", &token], &rotated);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("fallback 1"), "{out:?}");
    assert!(out.stderr.contains(&kid(&old)), "{out:?}");
    // Removing the old key from the ring invalidates what it signed.
    let out = cs(&["token", "verify", &token], &[("SECRET_KEY", &new)]);
    assert_eq!(out.code, 1, "{out:?}");
    // New tokens are signed with the current key.
    let fresh = issue(&rotated, &[]);
    let out = cs(&["token", "verify", &fresh], &rotated);
    assert!(out.stderr.contains("current key"), "{out:?}");
}

#[test]
fn weak_fallback_refuses_to_verify() {
    let k = key();
    let token = issue(&[("SECRET_KEY", &k)], &[]);
    let weak = key()[..20].to_owned();
    let env = [("SECRET_KEY", k.as_str()), ("SECRET_KEY_FALLBACKS", &weak)];
    let out = cs(&["token", "verify", &token], &env);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("fallback 1"), "{out:?}");
    assert!(out.stderr.contains("countersign keygen"), "{out:?}");
}

#[test]
fn issue_refuses_registered_and_repeated_claims() {
    let k = key();
    let env = [("SECRET_KEY", k.as_str())];
    let base = ["token", "issue", "--username", "u", "--role", "user"];
    for extra in [
        &["--claim", "exp=1"][..],
        &["--claim", "jti=x"],
        &["--claim", "a=1", "--claim", "a=2"],
        &["--ttl", "0"],
        &["--ttl", "soon"],
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let out = cs(&args, &env);
        assert_eq!(out.code, 2, "{extra:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
    }
}

#[test]
fn issue_without_a_usable_key_is_a_config_error() {
    for env in [
        &[][..],
        &[("SECRET_KEY", "your_secret_key")],
        &[("SECRET_KEY", "changeme_changeme_changeme_changeme")],
    ] {
        let out = cs(&["token", "issue", "--username", "u", "--role", "r"], env);
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stdout.is_empty());
        assert!(out.stderr.contains("countersign keygen"), "{out:?}");
    }
}

#[test]
fn clap_usage_errors_exit_2() {
    for args in [
        &["token", "verify"][..],
        &["frobnicate"],
        &["token", "issue"],
    ] {
        let out = cs(args, &[]);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
    }
    assert_eq!(cs(&["--help"], &[]).code, 0);
}

// --- token decode ---------------------------------------------------------------------

#[test]
fn decode_needs_no_key_and_is_loudly_unverified() {
    let k = key();
    let token = issue(&[("SECRET_KEY", &k)], &["--claim", "n=3"]);
    let out = cs(&["token", "decode", &token], &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("UNVERIFIED"), "{out:?}");
    let json = out.json();
    assert_eq!(json["header"]["alg"], "HS256");
    assert_eq!(json["header"]["kid"], kid(&k).as_str());
    assert_eq!(json["claims"]["username"], "john_doe");
    assert_eq!(json["claims"]["n"], 3);
}

#[test]
fn decode_of_garbage_exits_1() {
    for bad in [
        "garbage",
        "a.b",
        "e30.e30.e30.",
        "eyJ.e30.x",
        "W10.e30.",
        "e30.e30=.x",
    ] {
        let out = cs(&["token", "decode", bad], &[]);
        assert_eq!(out.code, 1, "{bad}: {out:?}");
        assert!(out.stdout.is_empty());
        assert!(out.stderr.contains("cannot decode token"), "{out:?}");
        assert!(!out.stderr.contains("UNVERIFIED"), "{out:?}");
    }
}

// --- time, in-process -----------------------------------------------------------------

fn issue_at(clock: &ManualClock, env: &[(&'static str, &str)], extra: &[&str]) -> String {
    let mut args = vec![
        "token",
        "issue",
        "--username",
        "john_doe",
        "--role",
        "admin",
    ];
    args.extend_from_slice(extra);
    let out = cs_at(clock, &args, env);
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout.trim().to_owned()
}

#[test]
fn expired_token_is_refused_with_the_reason() {
    let k = key();
    let env = [("SECRET_KEY", k.as_str())];
    let clock = ManualClock::new(UnixTime(T0));
    let token = issue_at(&clock, &env, &["--ttl", "60"]);

    clock.set(UnixTime(T0 + 30));
    let out = cs_at(&clock, &["token", "verify", &token], &env);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["iat"], T0);
    assert_eq!(out.json()["exp"], T0 + 60);

    clock.set(UnixTime(T0 + 60 + 252));
    let out = cs_at(&clock, &["token", "verify", &token], &env);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.is_empty());
    assert_eq!(out.stderr.trim(), "invalid token: expired 4m12s ago");
}

#[test]
fn leeway_is_configurable() {
    let k = key();
    let env = [("SECRET_KEY", k.as_str())];
    let clock = ManualClock::new(UnixTime(T0));
    let token = issue_at(&clock, &env, &["--ttl", "15m"]);
    clock.set(UnixTime(T0 + 900 + 20));
    // Within the default 30 s.
    let out = cs_at(&clock, &["token", "verify", &token], &env);
    assert_eq!(out.code, 0, "{out:?}");
    let out = cs_at(&clock, &["token", "verify", "--leeway", "0", &token], &env);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("expired 20s ago"), "{out:?}");
    clock.set(UnixTime(T0 + 900 + 90));
    let out = cs_at(&clock, &["token", "verify", "--leeway", "2m", &token], &env);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn token_from_the_future_is_refused() {
    let k = key();
    let env = [("SECRET_KEY", k.as_str())];
    let clock = ManualClock::new(UnixTime(T0));
    let token = issue_at(&clock, &env, &["--ttl", "1d"]);
    clock.set(UnixTime(T0 - 3_600));
    let out = cs_at(&clock, &["token", "verify", &token], &env);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("issued in the future"), "{out:?}");
}

#[test]
fn issuer_and_audience() {
    let k = key();
    let env = [("SECRET_KEY", k.as_str())];
    let clock = ManualClock::new(UnixTime(T0));
    let token = issue_at(&clock, &env, &["--iss", "cs", "--aud", "api"]);
    let verify = |extra: &[&str]| {
        let mut args = vec!["token", "verify"];
        args.extend_from_slice(extra);
        args.push(&token);
        cs_at(&clock, &args, &env)
    };
    let ok = verify(&["--iss", "cs", "--aud", "api"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert_eq!(ok.json()["iss"], "cs");
    assert_eq!(ok.json()["aud"], "api");
    let no_aud = verify(&[]);
    assert_eq!(no_aud.code, 1);
    assert!(no_aud.stderr.contains("audience"), "{no_aud:?}");
    let wrong_iss = verify(&["--iss", "other", "--aud", "api"]);
    assert_eq!(wrong_iss.code, 1);
    assert!(wrong_iss.stderr.contains("issuer"), "{wrong_iss:?}");
}

#[test]
fn ttl_past_year_9999_is_refused() {
    let k = key();
    let env = [("SECRET_KEY", k.as_str())];
    let clock = ManualClock::new(UnixTime(T0));
    let args = [
        "token",
        "issue",
        "--username",
        "u",
        "--role",
        "r",
        "--ttl",
        "2930000d",
    ];
    let out = cs_at(&clock, &args, &env);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("9999"), "{out:?}");
}
