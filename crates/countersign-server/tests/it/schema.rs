//! `openapi.json` tells the truth: schemathesis, a property-based API tester, reads the
//! document the server serves at `/openapi.json`, generates requests from it (valid ones,
//! and invalid ones the server must refuse with a 4xx) and checks every answer against the
//! document: status codes, content types, headers, response schemas, no 5xx, 405 with
//! `Allow` for methods a route does not take, the credentials really required.
//!
//! The real binary in its default configuration (`serve --addr 127.0.0.1:0`, no
//! test-only flag) in a temporary data directory, one admin made with `user add
//! --password-stdin`, and three runs of `st run URL --checks all`: without credentials;
//! with a bearer token from `POST /api/token` on every operation but the two that log out
//! everywhere (they revoke the token); and those two last, with a token of their own. Any
//! finding fails the test, with schemathesis' report.
//!
//! The runs are bounded: a fixed number of examples per operation, a fixed seed (the same
//! requests every time, so a failure reproduces; `--seed` in the report), and a deadline
//! after which schemathesis is killed and the test fails.
//!
//! What schemathesis first found at odds with the document (a method a route does not take
//! refused by the CSRF guard or answered 404 instead of 405, a form without a session id
//! redirected to `/login`, a login body that is not a form, an unknown `token_type_hint`)
//! is also checked answer by answer, without schemathesis.
//!
//! schemathesis lives in the venv `scripts/pyenv.sh` makes; its python is
//! `$COUNTERSIGN_PYTHON`, else `target/pyenv/bin/python`. Without it the test says why
//! and passes, except under `CI=true`, where it fails.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_countersign");
const USER: &str = "alice";
/// How long the server may take to start.
const PATIENCE: Duration = Duration::from_secs(30);
/// How long one schemathesis run may take before it is killed and the test fails.
const DEADLINE: Duration = Duration::from_secs(180);
/// Generated requests per operation and phase.
const MAX_EXAMPLES: &str = "50";
/// The generator's seed: the same requests every run.
const SEED: &str = "7009";

/// Under `CI=true` a missing tool fails the test.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The venv's python with schemathesis, or why there is none.
fn python() -> Result<PathBuf, String> {
    const FIX: &str = "run `bash scripts/pyenv.sh` (it makes target/pyenv with schemathesis), \
                       or set COUNTERSIGN_PYTHON to a python that has it";
    let python = match std::env::var_os("COUNTERSIGN_PYTHON").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv/bin/python"),
    };
    if !python.exists() {
        return Err(format!("{} does not exist: {FIX}", python.display()));
    }
    let out = Command::new(&python)
        .args(["-c", "import schemathesis"])
        .output()
        .map_err(|e| format!("{} does not run ({e}): {FIX}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} has no schemathesis ({}): {FIX}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(python)
}

/// A child process killed with its whole process group when dropped.
struct Group(Child);

impl Group {
    fn spawn(cmd: &mut Command) -> Self {
        Self(cmd.process_group(0).spawn().unwrap())
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            // The group id is the child's pid (`process_group(0)`).
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0.id())])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.0.wait();
    }
}

/// A `Command` for the binary in `cwd`, with none of the caller's countersign settings.
fn countersign(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("COUNTERSIGN_") || name.starts_with("SECRET_KEY") {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd.current_dir(cwd);
    cmd
}

/// `serve --addr 127.0.0.1:0 --data-dir DATA`, the default configuration otherwise: the
/// running server, its base URL, and its log so far.
fn start_server(dir: &Path, data: &Path) -> (Group, String, Arc<Mutex<String>>) {
    let mut server = Group::spawn(
        countersign(dir)
            .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let stderr = server.0.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    let (tx, lines) = channel();
    // Reads the log to its end, so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let mut all = sink.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
            drop(all);
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + PATIENCE;
    let needle = "listening on http://";
    let line = loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains(needle) => break line,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => panic!("no address logged:\n{}", log.lock().unwrap()),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the server exited:\n{}", log.lock().unwrap())
            }
        }
    };
    let start = line.find(needle).unwrap() + "listening on ".len();
    let base: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.'))
        .collect();
    assert!(!base.ends_with(":0"), "the real port is named: {line}");
    (server, base, log)
}

/// `user add NAME --role admin --password-stdin`.
fn add_admin(dir: &Path, data: &Path, name: &str, password: &str) {
    let mut child = countersign(dir)
        .args(["user", "add", name, "--role", "admin", "--password-stdin"])
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A password made for this run: 24 random bytes as hex.
fn generated_password() -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything a pipe carries, read on a thread (so the child never blocks on it).
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// One schemathesis run: `st run URL --checks all …` with `args` (credentials, which
/// operations), bounded by [`DEADLINE`]: (exit code, stdout and stderr), or `None` when
/// the deadline passed.
fn schemathesis(python: &Path, cwd: &Path, schema: &str, args: &[String]) -> Option<(i32, String)> {
    let mut child = Group::spawn(
        Command::new(python)
            .args([
                "-c",
                "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
                "run",
                schema,
                "--checks",
                "all",
                "--max-examples",
                MAX_EXAMPLES,
                "--seed",
                SEED,
                "--generation-database",
                "none",
                "--request-timeout",
                "30",
                "--workers",
                "1",
                "--no-color",
            ])
            .args(args)
            .current_dir(cwd)
            .env("NO_COLOR", "1")
            .env_remove("SCHEMATHESIS_HOOKS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stdout = drain(child.0.stdout.take().unwrap());
    let stderr = drain(child.0.stderr.take().unwrap());
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(child);
    let output = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    status.map(|status| (status.code().unwrap_or(-1), output))
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `POST /api/token` for the test's user: a fresh access token.
async fn access_token(http: &reqwest::Client, base: &str, password: &str) -> String {
    let r = http
        .post(format!("{base}/api/token"))
        .json(&json!({"username": USER, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pair: Value = r.json().await.unwrap();
    pair["access_token"].as_str().unwrap().to_owned()
}

/// The operations that log the user out everywhere, access tokens included: run last, on
/// a token of their own, so that the other operations are tried with a live one.
const LOG_OUT_EVERYWHERE: &str = "revoke-all$";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_and_server_agree() {
    let python = match python() {
        Ok(p) => p,
        Err(why) => {
            assert!(!in_ci(), "CI=true and schemathesis is missing: {why}");
            eprintln!("skipping: {why} (under CI=true this fails)");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let password = generated_password();
    add_admin(dir.path(), &data, USER, &password);
    let (server, base, log) = start_server(dir.path(), &data);

    // Both tokens now: the runs' failed logins get this address throttled.
    let http = reqwest::Client::new();
    let token = access_token(&http, &base, &password).await;
    let last_token = access_token(&http, &base, &password).await;
    let header = |token: &str| format!("Authorization: Bearer {token}");
    let runs: [(&str, Vec<String>); 3] = [
        ("without credentials", vec![]),
        (
            "with a bearer token",
            vec![
                "--header".into(),
                header(&token),
                "--exclude-path-regex".into(),
                LOG_OUT_EVERYWHERE.into(),
            ],
        ),
        (
            "with a bearer token, logging out everywhere",
            vec![
                "--header".into(),
                header(&last_token),
                "--include-path-regex".into(),
                LOG_OUT_EVERYWHERE.into(),
            ],
        ),
    ];

    let schema = format!("{base}/openapi.json");
    for (what, args) in runs {
        let (cwd, schema, python) = (dir.path().to_owned(), schema.clone(), python.clone());
        let run = tokio::task::spawn_blocking(move || schemathesis(&python, &cwd, &schema, &args))
            .await
            .unwrap();
        let Some((code, output)) = run else {
            panic!(
                "schemathesis ({what}) did not finish within {DEADLINE:?}; the end of the \
                 server's log:\n{}",
                tail(&log.lock().unwrap(), 100)
            );
        };
        assert_eq!(
            code, 0,
            "schemathesis ({what}) found the document and the server disagree (exit \
             {code}):\n{output}"
        );
        println!("schemathesis, {what}:\n{output}");
    }
    drop(server);
}

/// The answers schemathesis first found at odds with the document, checked one by one, so
/// they stay fixed where schemathesis is not installed. Anonymous requests first: the CSRF
/// guard must not stand between a wrong method and its 405.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_schemathesis_found_stays_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let password = generated_password();
    add_admin(dir.path(), &data, USER, &password);
    let (server, base, _log) = start_server(dir.path(), &data);
    let http = reqwest::Client::new();
    let send = |method: &str, path: &str| {
        http.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{base}{path}"),
        )
    };

    // A method a route does not take: 405 with `Allow`, for anonymous clients too, and
    // for `/register` while registration is closed (its GET and POST stay 404).
    for (method, path, allow) in [
        ("TRACE", "/login", "GET,HEAD,POST"),
        ("PUT", "/account/sessions/revoke-all", "POST"),
        ("DELETE", "/protected", "GET,HEAD"),
        ("POST", "/api/me", "GET,HEAD"),
        ("TRACE", "/register", "GET,HEAD,POST"),
    ] {
        let r = send(method, path).send().await.unwrap();
        assert_eq!(
            (
                r.status(),
                r.headers().get("allow").map(|v| v.to_str().unwrap())
            ),
            (StatusCode::METHOD_NOT_ALLOWED, Some(allow)),
            "{method} {path}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "method_not_allowed", "{method} {path}");
    }
    for method in ["GET", "POST"] {
        let r = send(method, "/register").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} /register");
    }

    let token = access_token(&http, &base, &password).await;

    // No form, or no session id in it: 400, with a live token or a dead one (which used to
    // be a 303 to /login).
    for bearer in [token.as_str(), "not-a-token"] {
        for body in ["", "id=nope"] {
            let r = send("POST", "/account/sessions/revoke")
                .bearer_auth(bearer)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body:?}");
            assert!(
                r.text()
                    .await
                    .unwrap()
                    .contains("That is not a session id.")
            );
        }
    }

    // A login body that is not a form: 400, as the document says.
    let r = send("POST", "/login")
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // RFC 7009 §2.1: a `token_type_hint` the server does not know is ignored, not refused;
    // the token is revoked all the same.
    let r = send("POST", "/api/token/revoke")
        .form(&[("token", token.as_str()), ("token_type_hint", "AAA")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    let r = send("GET", "/api/me")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    drop(server);
}
