//! The binary on a free port, as configured by default (`Secure` cookies): a browser signs
//! in with the form, reaches `/protected` with its cookie and signs out; a script gets a
//! token and reaches `/protected` with it.

use std::process::Stdio;
use std::time::Duration;

use countersign::keys::SecretKey;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// How long anything may take before the test gives up (not a measurement).
const LIMIT: Duration = Duration::from_secs(120);
const PASSWORD: &str = "a long and unusual passphrase";
const HELLO: &str = "Hello john_doe, you have access to this protected route.";

/// The running binary and the address it printed.
struct Server {
    _child: Child,
    addr: String,
}

async fn start() -> Server {
    let (_, key) = SecretKey::generate(32).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .env("SECRET_KEY", &*key)
        .env("DEMO_PASSWORD", PASSWORD)
        .env("ADDR", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = timeout(LIMIT, lines.next_line())
        .await
        .expect("the server starts in time")
        .unwrap()
        .expect("the server prints its address");
    let addr = line
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("not the address line: {line:?}"))
        .to_owned();
    Server {
        _child: child,
        addr,
    }
}

/// An HTTP/1.1 answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `name=value` of the `Set-Cookie` header for cookie `name`, and its attributes.
    fn cookie(&self, name: &str) -> Option<(&str, &str)> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.split_once("; ").unwrap_or((v, "")))
            .find(|(pair, _)| pair.starts_with(&format!("{name}=")))
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

impl Server {
    /// One request on its own connection.
    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        let mut stream = TcpStream::connect(&self.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        timeout(LIMIT, stream.read_to_end(&mut raw))
            .await
            .expect("an answer in time")
            .unwrap();
        let raw = String::from_utf8(raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap();
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap();
                (name.to_owned(), value.trim().to_owned())
            })
            .collect();
        Reply {
            status: status.parse().unwrap(),
            headers,
            body: body.to_owned(),
        }
    }

    /// A form post as a browser sends it from a page of this server.
    async fn form_post(&self, path: &str, cookie: &str, body: &str) -> Reply {
        let origin = format!("http://{}", self.addr);
        let headers = [
            ("Accept", HTML),
            ("Content-Type", FORM),
            ("Origin", origin.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
            ("Cookie", cookie),
        ];
        self.send("POST", path, &headers, body).await
    }
}

const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const FORM: &str = "application/x-www-form-urlencoded";

/// The hidden `csrf_token` of a form page.
fn form_token(page: &str) -> String {
    let (_, rest) = page
        .split_once(r#"name="csrf_token" value=""#)
        .unwrap_or_else(|| panic!("no token in {page}"));
    rest.split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_browser_signs_in_reaches_the_protected_route_and_signs_out() {
    let server = start().await;
    // The form, and the pre-session CSRF cookie that goes with it.
    let form = server.send("GET", "/login", &[("Accept", HTML)], "").await;
    assert_eq!(form.status, 200, "{form:?}");
    assert_eq!(
        form.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let (csrf_cookie, flags) = form.cookie("__Host-countersign-csrf").unwrap();
    assert_eq!(flags, "Path=/; HttpOnly; Secure; SameSite=Lax");
    let csrf_cookie = csrf_cookie.to_owned();
    let token = form_token(&form.body);

    // A wrong password: 401 and the form again.
    let wrong = server
        .form_post(
            "/login",
            &csrf_cookie,
            &format!("username=john_doe&password=not+the+password&csrf_token={token}"),
        )
        .await;
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert!(
        wrong.body.contains("Invalid username or password"),
        "{wrong:?}"
    );

    // The right one: 303 to `/` with the session cookie.
    let password = PASSWORD.replace(' ', "+");
    let signed = server
        .form_post(
            "/login",
            &csrf_cookie,
            &format!("username=john_doe&password={password}&csrf_token={token}"),
        )
        .await;
    assert_eq!(signed.status, 303, "{signed:?}");
    assert_eq!(signed.header("location"), Some("/"));
    let (session, flags) = signed.cookie("__Host-countersign").unwrap();
    assert_eq!(
        flags,
        "Path=/; Max-Age=43200; HttpOnly; Secure; SameSite=Lax"
    );
    let session = session.to_owned();

    let hello = server
        .send("GET", "/protected", &[("Cookie", &session)], "")
        .await;
    assert_eq!(hello.status, 200, "{hello:?}");
    assert_eq!(hello.json(), json!({ "message": HELLO }));

    // Signing out takes the session's CSRF token, which the form page now carries.
    let page = server
        .send(
            "GET",
            "/login",
            &[("Accept", HTML), ("Cookie", &session)],
            "",
        )
        .await;
    let token = form_token(&page.body);
    let out = server
        .form_post("/logout", &session, &format!("csrf_token={token}"))
        .await;
    assert_eq!(out.status, 303, "{out:?}");
    assert_eq!(out.header("location"), Some("/"));
    assert_eq!(
        out.cookie("__Host-countersign"),
        Some((
            "__Host-countersign=",
            "Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        ))
    );

    // The old cookie is refused now.
    let after = server
        .send("GET", "/protected", &[("Cookie", &session)], "")
        .await;
    assert_eq!(after.status, 401, "{after:?}");
    assert_eq!(
        after.json(),
        json!({ "error": "invalid_session", "message": "Unauthorized" })
    );
}

#[tokio::test]
async fn a_script_gets_a_token_and_reaches_the_protected_route() {
    let server = start().await;
    let json_headers = [("Content-Type", "application/json")];

    let nothing = server.send("GET", "/protected", &[], "").await;
    assert_eq!(nothing.status, 401);
    assert_eq!(
        nothing.header("www-authenticate"),
        Some(r#"Bearer realm="countersign""#)
    );
    assert_eq!(
        nothing.json(),
        json!({ "error": "missing_token", "message": "Token is missing!" })
    );

    let wrong = server
        .send(
            "POST",
            "/api/token",
            &json_headers,
            r#"{"username":"john_doe","password":"not the password"}"#,
        )
        .await;
    assert_eq!(wrong.status, 401, "{wrong:?}");
    assert_eq!(
        wrong.json(),
        json!({ "error": "invalid_grant", "message": "Invalid username or password" })
    );

    let body = json!({ "username": "john_doe", "password": PASSWORD }).to_string();
    let issued = server
        .send("POST", "/api/token", &json_headers, &body)
        .await;
    assert_eq!(issued.status, 200, "{issued:?}");
    let tokens = issued.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(tokens["refresh_token"].as_str().unwrap().len() >= 43);
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());

    let hello = server
        .send("GET", "/protected", &[("Authorization", &bearer)], "")
        .await;
    assert_eq!(hello.status, 200, "{hello:?}");
    assert_eq!(hello.json(), json!({ "message": HELLO }));

    let forged = server
        .send(
            "GET",
            "/protected",
            &[("Authorization", &format!("{bearer}x"))],
            "",
        )
        .await;
    assert_eq!(forged.status, 401);
    assert_eq!(
        forged.json(),
        json!({ "error": "invalid_token", "message": "Invalid token!" })
    );
}

#[tokio::test]
async fn without_a_secret_key_it_says_what_is_missing() {
    let output = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .env_remove("SECRET_KEY")
        .env("DEMO_PASSWORD", PASSWORD)
        .env("ADDR", "127.0.0.1:0")
        .stdin(Stdio::null())
        .output();
    let output = timeout(LIMIT, output).await.unwrap().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr, "Error: \"set SECRET_KEY to a long random key\"\n");
}
