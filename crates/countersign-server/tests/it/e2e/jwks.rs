//! Asymmetric signing with the real binary and real verifiers: PyJWT's `PyJWKClient` and
//! panva/jose's `createRemoteJWKSet` + `jwtVerify` find our keys through discovery and
//! verify our EdDSA and ES256 tokens (issuer and audience checked); tokens they sign with
//! their own keys verify in `countersign token verify --jwks FILE`; and a staged rotation
//! (stage, promote, prune, each followed by SIGHUP) under a client that keeps verifying
//! fresh tokens with a cached JWK Set ends with zero failures.
//!
//! Python is `$COUNTERSIGN_PYTHON`, else `target/pyenv/bin/python` (`bash scripts/pyenv.sh`);
//! jose is installed into `tests/node/` by `scripts/test` (`npm ci`). Without them a test
//! says why and returns, except under `CI=true`, where it fails.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use countersign::clock::UnixTime;
use countersign::jwt::{self, PublicKeys, Validation};

use super::*;

/// Under `CI=true` a missing tool fails the test; elsewhere it is skipped with the reason.
fn missing(why: &str) {
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI=true: {why}");
    eprintln!("skipping: {why}");
}

/// The venv's python with PyJWT and `cryptography`.
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("COUNTERSIGN_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv/bin/python")
        });
    let ok = Command::new(&path)
        .args(["-c", "import jwt, cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(path);
    }
    missing(&format!(
        "{} cannot import jwt and cryptography: run `bash scripts/pyenv.sh`",
        path.display()
    ));
    None
}

/// The directory holding jose (`npm ci` there), when it is installed and node runs.
fn jose_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let ok = dir.join("node_modules/jose/package.json").exists()
        && Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if ok {
        return Some(dir);
    }
    missing(&format!(
        "node or jose is missing: run `npm ci` in {} (scripts/test does)",
        dir.display()
    ));
    None
}

/// Run `program script` with `input` as JSON on stdin; its JSON answer.
fn run_json(program: &Path, script: &Path, cwd: &Path, input: &Value) -> Value {
    let mut child = Command::new(program)
        .arg(script)
        .current_dir(cwd)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// `token verify --jwks FILE TOKEN` with the binary: status and stdout.
fn verify_with_jwks(cwd: &Path, jwks: &Value, token: &str) -> (i32, Value) {
    let file = cwd.join(format!("jwks-{}.json", countersign::random::token_id()));
    std::fs::write(&file, jwks.to_string()).unwrap();
    let (code, out, err) = cs(
        cwd,
        &["token", "verify", "--jwks", file.to_str().unwrap(), token],
        "",
    );
    assert!(code != 0 || err.contains("of the JWK Set"), "{err}");
    (code, serde_json::from_str(&out).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_and_jose_verify_our_tokens_and_we_verify_theirs() {
    let python = python();
    let jose = jose_dir();
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let http = client();

    // 1. The default configuration plus an EdDSA key file.
    let key = cwd.join("eddsa.pem");
    let (code, kid, err) = cs(
        cwd,
        &["keygen", "--alg", "EdDSA", "--out", key.to_str().unwrap()],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let data = cwd.join("data-eddsa");
    let s = Server::start_default(&data, &[], &[("SIGNING_KEY_FILE", key.to_str().unwrap())]);
    add_user(&data, "alice", "user");
    let eddsa = token(&http, &s, "alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let discovery = s.url("/.well-known/openid-configuration");
    let meta: Value = http
        .get(&discovery)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], s.base);
    let jwks: Value = http
        .get(meta["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], kid.trim());

    // 2. An ES256 key directory and an audience.
    let keys = cwd.join("keys");
    let (code, _, err) = cs(
        cwd,
        &[
            "keys",
            "init",
            "--alg",
            "ES256",
            "--signing-key-dir",
            keys.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let data2 = cwd.join("data-es256");
    let s2 = Server::start_default(
        &data2,
        &[
            "--signing-key-dir",
            keys.to_str().unwrap(),
            "--token-audience",
            "api.example",
        ],
        &[],
    );
    add_user(&data2, "bob", "user");
    let es256 = token(&http, &s2, "bob").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let discovery2 = s2.url("/.well-known/oauth-authorization-server");

    let exp = now() + 600;
    let mut foreign = Vec::new();
    if let Some(python) = &python {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/py/pyjwk_client.py");
        for (discovery, tokens, audience, who) in [
            (&discovery, vec![eddsa.clone()], Value::Null, "alice"),
            (
                &discovery2,
                vec![es256.clone()],
                json!("api.example"),
                "bob",
            ),
        ] {
            let out = run_json(
                python,
                &script,
                cwd,
                &json!({"discovery": discovery, "tokens": tokens, "audience": audience, "exp": exp}),
            );
            let claims = &out["verified"][0]["claims"];
            assert_eq!(claims["username"], who, "{out}");
            assert_eq!(claims["iss"], out["issuer"]);
            foreign.push((out["jwks"].clone(), out["tokens"].clone(), "from_pyjwt"));
        }
        // Without the audience PyJWT refuses the token that has one, as it should.
        let out = run_json(
            python,
            &script,
            cwd,
            &json!({"discovery": discovery2, "tokens": [es256], "audience": "other", "exp": exp}),
        );
        assert_eq!(out["verified"][0]["error"], "InvalidAudienceError");
    }
    if let Some(jose) = &jose {
        let script = jose.join("jose.mjs");
        let node = PathBuf::from("node");
        let out = run_json(
            &node,
            &script,
            jose,
            &json!({"discovery": discovery, "issuer": s.base, "audience": null, "tokens": [eddsa], "exp": exp}),
        );
        assert_eq!(out["verified"][0]["payload"]["username"], "alice", "{out}");
        assert_eq!(out["verified"][0]["alg"], "EdDSA");
        let out = run_json(
            &node,
            &script,
            jose,
            &json!({"discovery": discovery2, "issuer": s2.base, "audience": "api.example", "tokens": [es256.clone()], "exp": exp}),
        );
        assert_eq!(out["verified"][0]["payload"]["username"], "bob", "{out}");
        assert_eq!(out["verified"][0]["payload"]["aud"], "api.example");
        assert_eq!(out["verified"][0]["alg"], "ES256");
        // The wrong audience and the wrong issuer are refused.
        let out = run_json(
            &node,
            &script,
            jose,
            &json!({"discovery": discovery2, "issuer": s2.base, "audience": "other", "tokens": [es256.clone()], "exp": exp}),
        );
        assert_eq!(
            out["verified"][0]["error"],
            "ERR_JWT_CLAIM_VALIDATION_FAILED"
        );
        let out = run_json(
            &node,
            &script,
            jose,
            &json!({"discovery": discovery2, "issuer": "https://elsewhere.example", "audience": "api.example", "tokens": [es256], "exp": exp}),
        );
        assert_eq!(
            out["verified"][0]["error"],
            "ERR_JWT_CLAIM_VALIDATION_FAILED"
        );
        foreign.push((out["jwks"].clone(), out["tokens"].clone(), "from_jose"));
    }

    // Their tokens, signed with their keys, verify here against their JWK Sets.
    for (set, tokens, who) in &foreign {
        for token in tokens.as_array().unwrap() {
            let (code, claims) = verify_with_jwks(cwd, set, token.as_str().unwrap());
            assert_eq!(code, 0, "{who}: {token}");
            assert_eq!(claims["username"], *who);
        }
    }
    // And not against ours.
    if let Some((_, tokens, _)) = foreign.first() {
        let (code, _) = verify_with_jwks(cwd, &jwks, tokens[0].as_str().unwrap());
        assert_eq!(code, 1);
    }
    let (_, log) = s.stop();
    let (_, log2) = s2.stop();
    for log in [log, log2] {
        assert!(!log.contains("PRIVATE KEY"), "{log}");
    }
}

/// What the load client saw.
#[derive(Default)]
struct Tally {
    verified: AtomicUsize,
    failed: AtomicUsize,
    kids: Mutex<Vec<String>>,
    failures: Mutex<Vec<String>>,
}

/// The JWK Set from `url` and its `max-age`.
async fn fetch_jwks(http: &reqwest::Client, url: &str) -> (PublicKeys, Duration) {
    let r = http.get(url).send().await.unwrap();
    let max_age = r
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("max-age=").nth(1))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap();
    let body = r.bytes().await.unwrap();
    (
        PublicKeys::from_jwks(&body).unwrap(),
        Duration::from_secs(max_age),
    )
}

/// Refresh, then verify the fresh access token with the cached JWK Set, fetched again only
/// when its `max-age` has run out (never on an unknown kid: the staged rotation must not
/// need that), until `stop`.
async fn load_client(
    http: reqwest::Client,
    base: String,
    mut refresh: String,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let jwks_url = format!("{base}/.well-known/jwks.json");
    let (mut keys, mut max_age) = fetch_jwks(&http, &jwks_url).await;
    let mut fetched = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if fetched.elapsed() >= max_age {
            (keys, max_age) = fetch_jwks(&http, &jwks_url).await;
            fetched = Instant::now();
        }
        let r = http
            .post(format!("{base}/api/token/refresh"))
            .json(&json!({ "refresh_token": refresh }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let pair: Value = r.json().await.unwrap();
        refresh = pair["refresh_token"].as_str().unwrap().to_owned();
        let token = pair["access_token"].as_str().unwrap();
        match jwt::verify_any(None, &keys, &Validation::default(), token, UnixTime(now())) {
            Ok(v) => {
                tally.verified.fetch_add(1, Ordering::SeqCst);
                let kid = keys.get(v.key_index).unwrap().kid().to_owned();
                let mut kids = tally.kids.lock().unwrap();
                if kids.last() != Some(&kid) {
                    kids.push(kid);
                }
            }
            Err(e) => {
                tally.failed.fetch_add(1, Ordering::SeqCst);
                tally.failures.lock().unwrap().push(e.to_string());
            }
        }
    }
}

/// Wait (bounded) until the client has verified `more` tokens beyond `from`.
async fn progress(tally: &Tally, from: usize, more: usize) -> usize {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let n = tally.verified.load(Ordering::SeqCst) + tally.failed.load(Ordering::SeqCst);
        if n >= from + more {
            return n;
        }
        assert!(Instant::now() < deadline, "the load client stalled at {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_rotation_under_load_has_no_failures() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let keys = cwd.join("keys");
    let k = keys.to_str().unwrap();
    let (code, first, err) = cs(
        cwd,
        &[
            "keys",
            "init",
            "--signing-key-dir",
            k,
            "--jwks-max-age",
            "1s",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let first = first.trim().to_owned();
    let data = cwd.join("data");
    let mut s = Server::start_default(&data, &["--signing-key-dir", k], &[]);
    add_user(&data, "alice", "user");
    let http = client();
    let pair = token(&http, &s, "alice").await;
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let client_task = tokio::spawn(load_client(
        http.clone(),
        s.base.clone(),
        pair["refresh_token"].as_str().unwrap().to_owned(),
        Arc::clone(&stop),
        Arc::clone(&tally),
    ));
    let mut seen = progress(&tally, 0, 20).await;

    // Stage: published after the reload, signing nothing.
    let (code, next, err) = cs(
        cwd,
        &["keys", "rotate", "--stage", "--signing-key-dir", k],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let next = next.trim().to_owned();
    s.signal("HUP");
    s.wait_for("SIGHUP: token signing keys reloaded");
    let published = Instant::now();
    seen = progress(&tally, seen, 20).await;
    // Promote once every cache that predates the staged key has expired (max-age 1s).
    let wait = Duration::from_millis(1100).saturating_sub(published.elapsed());
    tokio::time::sleep(wait).await;
    let (code, out, err) = cs(
        cwd,
        &[
            "keys",
            "rotate",
            "--promote",
            "--keep",
            "0s",
            "--signing-key-dir",
            k,
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), next);
    s.signal("HUP");
    s.wait_for("SIGHUP: token signing keys reloaded");
    seen = progress(&tally, seen, 20).await;
    // Prune the retired key: nothing it signed is still being verified.
    let (code, out, err) = cs(cwd, &["keys", "prune", "--signing-key-dir", k], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), first);
    s.signal("HUP");
    s.wait_for("SIGHUP: token signing keys reloaded");
    progress(&tally, seen, 20).await;

    stop.store(true, Ordering::SeqCst);
    tokio::time::timeout(PATIENCE, client_task)
        .await
        .unwrap()
        .unwrap();
    let failures = tally.failures.lock().unwrap().clone();
    assert_eq!(tally.failed.load(Ordering::SeqCst), 0, "{failures:?}");
    assert!(tally.verified.load(Ordering::SeqCst) >= 80);
    assert_eq!(*tally.kids.lock().unwrap(), [first, next]);
    let jwks: Value = http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let (status, _) = s.stop();
    assert!(status.success());
}
