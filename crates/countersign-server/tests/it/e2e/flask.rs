//! The Flask bridge and `user import` against real Flask: the seeds' session app under
//! gunicorn on another loopback port with the same `SECRET_KEY`, cookies and password
//! hashes made by Flask, Werkzeug, bcrypt and argon2-cffi (`tests/it/py/`), and the real
//! binary in its default configuration plus `--flask-bridge`.
//!
//! Python is `$COUNTERSIGN_PYTHON`, else `target/pyenv/bin/python` (`bash scripts/pyenv.sh`
//! makes it). Without it the tests say why and return, except under `CI=true`, where they
//! fail.

use std::net::TcpListener;

use super::*;

/// The venv's python, or `None` (with the reason printed) outside CI.
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("COUNTERSIGN_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv/bin/python")
        });
    let ok = Command::new(&path)
        .args(["-c", "import flask, gunicorn, bcrypt, argon2"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(path);
    }
    let why = format!(
        "{} cannot import flask, gunicorn, bcrypt and argon2: run `bash scripts/pyenv.sh` \
         or set COUNTERSIGN_PYTHON",
        path.display()
    );
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI=true: {why}");
    eprintln!("skipping: {why}");
    None
}

fn py_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/py")
}

/// Run `flask_cookie.py` with `request` on stdin; its JSON answer.
fn flask_tool(python: &Path, request: &Value) -> Value {
    let mut child = Command::new(python)
        .arg(py_dir().join("flask_cookie.py"))
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
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A cookie Flask's session interface makes for `data` under `key`.
fn flask_cookie(python: &Path, key: &str, data: Value, extra: Value) -> String {
    let mut spec = json!({"key": key, "data": data});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    flask_tool(python, &json!({ "cookie": spec }))["cookie"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The seeds' session app under gunicorn on a free loopback port.
struct Gunicorn {
    child: Child,
    base: String,
}

impl Gunicorn {
    async fn start(python: &Path, secret: &str, fallbacks: &str) -> Self {
        // gunicorn cannot bind port 0 and report it: take a free port from the OS first.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python)
            .args(["-m", "gunicorn", "--workers", "1", "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--chdir")
            .arg(py_dir())
            .arg("flask_session_app:app")
            .env("SECRET_KEY", secret)
            .env("SECRET_KEY_FALLBACKS", fallbacks)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut app = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = client();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(r) = http.get(app.url("/")).send().await
                && r.status() == StatusCode::OK
            {
                return app;
            }
            assert!(
                matches!(app.child.try_wait(), Ok(None)),
                "gunicorn exited before answering"
            );
            assert!(Instant::now() < deadline, "gunicorn did not answer");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Gunicorn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SESSION: &str = "__Host-countersign";

/// `GET /` with only `Cookie: session=<flask>`: whether it came back logged in as alice,
/// and the countersign session cookie it set, if any.
async fn home_with_flask_cookie(s: &Server, flask: &str) -> (bool, Option<String>) {
    let r = client()
        .get(s.url("/"))
        .header(COOKIE, format!("session={flask}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "a refused cookie is ignored");
    let session = set_cookie(r.headers(), SESSION);
    let html = r.text().await.unwrap();
    let logged_in = html.contains("Logged in as alice");
    assert!(
        logged_in || html.contains("You are not logged in"),
        "{html}"
    );
    (logged_in, session)
}

/// `POST /logout` as the browser holding `session` posts it.
async fn logout(s: &Server, session: &str) -> HeaderMap {
    let http = client();
    let home = http
        .get(s.url("/"))
        .header(COOKIE, format!("{SESSION}={session}"))
        .send()
        .await
        .unwrap();
    let csrf = form_token(&home.text().await.unwrap());
    let r = http
        .post(s.url("/logout"))
        .header(COOKIE, format!("{SESSION}={session}"))
        .header("origin", &s.base)
        .header("sec-fetch-site", "same-origin")
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    r.headers().clone()
}

/// Wait for the next whole second: a Flask cookie signed in the second of a logout is
/// refused with the ones before it.
async fn next_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    tokio::time::sleep(Duration::from_nanos(
        1_000_000_000 - u64::from(now.subsec_nanos()) + 50_000_000,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_cookies_become_countersign_sessions_until_logout() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (key, key_text) = SecretKey::generate(32).unwrap();
    let (_, old_text) = SecretKey::generate(32).unwrap();
    drop(key);
    add_user(&data, "alice", "user");
    let env = [
        ("SECRET_KEY", key_text.as_str()),
        ("SECRET_KEY_FALLBACKS", old_text.as_str()),
    ];
    let s = Server::start_default(&data, &["--flask-bridge"], &env);
    let flask = Gunicorn::start(&python, &key_text, "").await;

    // The seed's login sets Flask's cookie; countersign exchanges it once.
    let r = client()
        .post(flask.url("/login"))
        .form(&[("username", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let flask_session = set_cookie(r.headers(), "session").unwrap();
    let (logged_in, session) = home_with_flask_cookie(&s, &flask_session).await;
    assert!(logged_in);
    let session = session.expect("the exchange sets the countersign cookie");
    let r = client()
        .get(s.url("/protected"))
        .header(COOKIE, format!("{SESSION}={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "Hello alice, you have access to this protected route."
    );
    // With a live session, no second exchange.
    let r = client()
        .get(s.url("/"))
        .header(
            COOKIE,
            format!("session={flask_session}; {SESSION}={session}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(set_cookie(r.headers(), SESSION), None);

    // A cookie signed with the fallback key (Flask's SECRET_KEY_FALLBACKS) is accepted.
    let alice = json!({"username": "alice"});
    let old = flask_cookie(&python, &old_text, alice.clone(), json!({}));
    assert!(home_with_flask_cookie(&s, &old).await.0);
    // So is one Flask compressed (a large session).
    let big = json!({"username": "alice", "cart": "item ".repeat(600)});
    let compressed = flask_cookie(&python, &key_text, big, json!({}));
    assert!(compressed.starts_with('.'), "{compressed}");
    assert!(home_with_flask_cookie(&s, &compressed).await.0);

    // Each of these is ignored: the page is the anonymous one, no session is made.
    let stranger = SecretKey::generate(32).unwrap().1;
    let noise: String = (0..5000)
        .map(|_| format!("{:02x}", getrandom::u32().unwrap() as u8))
        .collect();
    let refused = [
        (
            "tampered",
            flask_session.replacen(&flask_session[..4], &base64_flip(&flask_session[..4]), 1),
        ),
        (
            "expired",
            flask_cookie(
                &python,
                &key_text,
                alice.clone(),
                json!({"age": 31 * 86400 + 60}),
            ),
        ),
        (
            "wrong salt",
            flask_cookie(
                &python,
                &key_text,
                alice.clone(),
                json!({"salt": "other-salt"}),
            ),
        ),
        (
            "wrong key",
            flask_cookie(&python, &stranger, alice.clone(), json!({})),
        ),
        (
            "oversized",
            flask_cookie(
                &python,
                &key_text,
                json!({"username": "alice", "noise": noise}),
                json!({}),
            ),
        ),
        (
            "unknown user",
            flask_cookie(
                &python,
                &key_text,
                json!({"username": "mallory"}),
                json!({}),
            ),
        ),
    ];
    for (case, cookie) in &refused {
        let (logged_in, session) = home_with_flask_cookie(&s, cookie).await;
        assert!(!logged_in && session.is_none(), "{case} was accepted");
    }
    assert!(
        refused[4].1.len() > 4096,
        "the oversized cookie is over 4 KiB"
    );

    // Logout: the Flask cookie from before it is refused from now on...
    logout(&s, &session).await;
    assert_eq!(
        home_with_flask_cookie(&s, &flask_session).await,
        (false, None)
    );
    assert_eq!(home_with_flask_cookie(&s, &old).await, (false, None));
    // ... while a new Flask login after it is exchanged again.
    next_second().await;
    let r = client()
        .post(flask.url("/login"))
        .form(&[("username", "alice")])
        .send()
        .await
        .unwrap();
    let fresh = set_cookie(r.headers(), "session").unwrap();
    assert!(home_with_flask_cookie(&s, &fresh).await.0);

    let (status, log) = s.stop();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("flask session exchanged"), "{log}");
    assert_clean(&log, &[&flask_session, &session, &key_text, &old_text]);
}

/// Change the first character of a base64url text to another of the alphabet.
fn base64_flip(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_countersign_login_writes_the_cookie_flask_reads() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_, key_text) = SecretKey::generate(32).unwrap();
    add_user(&data, "alice", "user");
    std::fs::write(
        dir.path().join("countersign.toml"),
        "[flask]\nwrite = true\n",
    )
    .unwrap();
    let s = Server::start_default(&data, &[], &[("SECRET_KEY", key_text.as_str())]);
    let flask = Gunicorn::start(&python, &key_text, "").await;

    let http = client();
    let page = http.get(s.url("/login")).send().await.unwrap();
    let csrf_cookie = set_cookie(page.headers(), "__Host-countersign-csrf").unwrap();
    let csrf = form_token(&page.text().await.unwrap());
    let r = http
        .post(s.url("/login"))
        .header(COOKIE, format!("__Host-countersign-csrf={csrf_cookie}"))
        .header("origin", &s.base)
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("username", "alice"),
            ("password", PW),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = set_cookie(r.headers(), SESSION).unwrap();
    let written = set_cookie(r.headers(), "session").expect("a Flask cookie is written");
    let raw = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("session="))
        .unwrap();
    assert!(
        raw.ends_with("; Path=/; HttpOnly; Secure; SameSite=Lax"),
        "{raw}"
    );

    // The seed's Flask app reads it: session["username"].
    let r = client()
        .get(flask.url("/protected"))
        .header(COOKIE, format!("session={written}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"],
        "Hello alice, you have access to this protected route."
    );
    let r = client()
        .get(flask.url("/"))
        .header(COOKIE, format!("session={written}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "Logged in as alice");

    // Logout clears it, and countersign refuses it from then on.
    let headers = logout(&s, &session).await;
    let cleared = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("session="))
        .expect("logout clears the Flask cookie");
    assert!(
        cleared.starts_with("session=; Path=/; Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(home_with_flask_cookie(&s, &written).await, (false, None));

    let (status, log) = s.stop();
    assert_eq!(status.code(), Some(0), "{log}");
    assert_clean(&log, &[PW, &written, &session, &key_text]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_password_hashes_import_log_in_and_become_argon2id() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hashes = flask_tool(&python, &json!({ "hashes": PW }));
    let formats = ["scrypt", "pbkdf2", "bcrypt", "argon2"];
    let mut csv = String::from("id,username,email,password_hash,role\n");
    for (i, format) in formats.iter().enumerate() {
        let hash = hashes[format].as_str().unwrap();
        // Quoted, as any CSV writer quotes argon2's `m=…,t=…,p=…`.
        csv.push_str(&format!(
            "{},{format}_user,x@example.org,\"{hash}\",\n",
            i + 10
        ));
    }
    csv.push_str(&format!(
        "20,costly,,pbkdf2:sha256:1000000000$salt${},\n",
        "0".repeat(64)
    ));
    csv.push_str("21,plain,,sha256$salt$abcdef,\n");
    let file = dir.path().join("users.csv");
    std::fs::write(&file, &csv).unwrap();
    let import = |extra: &[&str]| {
        let mut args = vec![
            "user",
            "import",
            file.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        cs(dir.path(), &args, "")
    };

    // One transaction: two refused records, nothing imported.
    let (code, out, err) = import(&[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("users.csv: line 6: werkzeug-pbkdf2 parameters above the cost cap"),
        "{err}"
    );
    assert!(
        err.contains("users.csv: line 7: plain salted digests"),
        "{err}"
    );
    assert!(
        err.contains("nothing imported: 2 record(s) refused"),
        "{err}"
    );
    let (_, listed, _) = cs(
        dir.path(),
        &["user", "list", "--data-dir", data.to_str().unwrap()],
        "",
    );
    assert_eq!(listed.lines().count(), 1, "only the header: {listed}");

    let (code, out, err) = import(&["--skip-invalid"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("imported 4 user(s) (argon2: 1, bcrypt: 1, werkzeug-pbkdf2: 1, werkzeug-scrypt: 1), skipped 2"),
        "{out}"
    );

    let s = Server::start_default(&data, &[], &[]);
    let http = client();
    let store = countersign_sql::SqlStore::open_sqlite_in(&data, &Default::default())
        .await
        .unwrap();
    use countersign::store::UserStore as _;
    for (i, format) in formats.iter().enumerate() {
        let name = format!("{format}_user");
        let stored = store.user_by_name(&name).await.unwrap().unwrap();
        assert_eq!(stored.id.0, i as i64 + 10, "the old id is kept");
        assert_eq!(
            stored.password_hash.as_str(),
            hashes[format].as_str().unwrap()
        );
        let wrong = http
            .post(s.url("/api/token"))
            .json(&json!({"username": name, "password": "not the password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{name}");
        let r = http
            .post(s.url("/api/token"))
            .json(&json!({"username": name, "password": PW}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{name}");
        let stored = store.user_by_name(&name).await.unwrap().unwrap();
        assert!(
            stored
                .password_hash
                .as_str()
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{name} was rehashed"
        );
        let again = http
            .post(s.url("/api/token"))
            .json(&json!({"username": name, "password": PW}))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::OK, "{name} after the rehash");
    }
    store.close().await;
    let (status, log) = s.stop();
    assert_eq!(status.code(), Some(0), "{log}");
    assert_clean(&log, &[PW]);
}
