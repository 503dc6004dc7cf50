//! Forward authentication with real parts: Debian's nginx and Caddy, started with the
//! configuration files `docs/forward-auth.md` shows (`docs/forward-auth/nginx.conf`,
//! `docs/forward-auth/Caddyfile`, their placeholders filled in here), each in front of the
//! Flask app of `docs/forward-auth/app.py` under gunicorn, which greets the user of a
//! verified `Countersign-Jwt-Assertion` (PyJWT). The server runs its default configuration
//! plus what forward auth needs (`--trusted-proxies 127.0.0.1/32`, `--public-url`), with
//! `[[access]]` rules in `countersign.toml`: `/admin` for admins, `/public` for everyone.
//!
//! In Chromium, for each proxy: the app's page sends the browser to countersign's login
//! page, logging in comes back to it ("Hello alice"), `/admin/` is refused to a `user`,
//! the app's logout link logs out (after one button) and the app's page asks for a login
//! again, and an admin gets `/admin/`. With an HTTP client: a `Remote-User: admin` the
//! client sends is never what the app sees, an API client gets 401, a bearer token works,
//! a client going around the proxy is refused, and (nginx) SIGHUP reloads the rules.
//!
//! Also here, without a browser: `countersign access check`.
//!
//! Every process listens on 127.0.0.1 on a port picked free and is killed at the end. With
//! `CI=true` a missing tool (nginx, caddy, Chromium, the Python venv) fails the test;
//! otherwise the test says why and returns.

use std::io::{BufRead as _, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use fantoccini::{Client, Locator};
use serde_json::Value;

use super::{
    CHROMEDRIVER, CHROMIUM, Group, NGINX, PATIENCE, Served, add_user, clear_artifacts, countersign,
    free_port, generated_password, have, http_client, in_chromium, log_in, screenshot, see,
    set_cookie,
};

const CADDY: &str = "/usr/bin/caddy";
const NGINX_CONF: &str = include_str!("../../../../../docs/forward-auth/nginx.conf");
const CADDYFILE: &str = include_str!("../../../../../docs/forward-auth/Caddyfile");
/// The rules the server starts with.
const RULES: &str = "\
[[access]]
name = \"admin area\"
path = \"/admin\"
policy = \"role:admin\"

[[access]]
path = \"/public\"
policy = \"public\"
";

/// `template` with its `@NAME@` placeholders filled; none may be left.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let text = values
        .iter()
        .fold(template.to_owned(), |t, (k, v)| t.replace(k, v));
    let left = text
        .split('@')
        .skip(1)
        .step_by(2)
        .find(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'));
    assert!(
        left.is_none(),
        "placeholder @{}@ left in:\n{text}",
        left.unwrap_or_default()
    );
    text
}

/// The docs directory holding the app and the proxy configurations.
fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/forward-auth")
}

/// The venv's python (`$COUNTERSIGN_PYTHON`, else `target/pyenv/bin/python`) when it has
/// Flask, PyJWT and gunicorn; `None` (after [`have`]'s rule) otherwise.
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("COUNTERSIGN_PYTHON")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/pyenv/bin/python")
        });
    let ok = Command::new(&path)
        .args(["-c", "import flask, jwt, gunicorn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(path);
    }
    let why = format!(
        "forward-auth test: {} cannot import flask, jwt and gunicorn (run `bash scripts/pyenv.sh`)",
        path.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("{why}; skipped");
    None
}

/// `serve --addr 127.0.0.1:PORT ARGS…` in `dir` (where `countersign.toml` is); `None` when
/// it exits before listening (the port was taken meanwhile).
pub(super) fn serve_on(dir: &Path, data: &Path, port: u16, args: &[&str]) -> Option<Served> {
    let mut process = Group::spawn(
        countersign(dir)
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .args(args)
            .arg("--data-dir")
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let stderr = process.child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    let (tx, lines) = channel();
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
    let served = Served {
        _process: process,
        base: format!("http://127.0.0.1:{port}"),
        port,
        log,
        lines,
    };
    let deadline = Instant::now() + PATIENCE;
    loop {
        match served
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(line) if line.contains("listening on http://") => return Some(served),
            Ok(_) => {}
            Err(_) => {
                eprintln!("serve on port {port} did not start:\n{}", served.log());
                return None;
            }
        }
    }
}

/// Poll `url` until it answers (any status), within [`PATIENCE`].
async fn answers(url: &str, process: &mut Group) -> bool {
    let probe = http_client(None);
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline && !process.exited() {
        if probe.get(url).send().await.is_ok() {
            return true;
        }
        // Bounded polling: at most PATIENCE in all.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Which proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proxy {
    Nginx,
    Caddy,
}

/// Everything running for one case: countersign, the app, the proxy.
struct Stack {
    dir: tempfile::TempDir,
    data: PathBuf,
    server: Served,
    /// The app as browsers reach it: through the proxy.
    app: String,
    /// The app itself, behind the proxy.
    app_port: u16,
    _app: Group,
    _proxy: Group,
    proxy: Proxy,
}

impl Stack {
    /// The logs of every part.
    fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "server log:\n{}\napp log:\n{}\nproxy stderr:\n{}\nnginx access log:\n{}",
            self.server.log(),
            read("app.log"),
            read("proxy.stderr"),
            read("access.log"),
        )
    }

    /// countersign's base URL (also its public URL).
    fn countersign(&self) -> &str {
        &self.server.base
    }
}

/// countersign with the rules, the app under gunicorn, and `proxy` in front of it, all
/// answering; `None` when a tool is missing (and not under CI).
async fn stack(proxy: Proxy) -> Option<Stack> {
    let proxy_bin = match proxy {
        Proxy::Nginx => NGINX,
        Proxy::Caddy => CADDY,
    };
    if !have(&[CHROMIUM, CHROMEDRIVER, proxy_bin]) {
        return None;
    }
    let python = python()?;
    let gunicorn = python.with_file_name("gunicorn");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(dir.path().join("countersign.toml"), RULES).unwrap();

    // countersign's port goes into its public URL: picked here, tried again if taken.
    let mut server = None;
    for _ in 0..3 {
        let port = free_port();
        let public = format!("http://127.0.0.1:{port}");
        server = serve_on(
            dir.path(),
            &data,
            port,
            &["--trusted-proxies", "127.0.0.1/32", "--public-url", &public],
        );
        if server.is_some() {
            break;
        }
    }
    let server = server.expect("countersign did not start");
    // The key the first run generated: the app verifies assertions with it.
    let key = std::fs::read_to_string(data.join("secret.key")).unwrap();
    let key = key.trim_end_matches('\n');

    let mut failures = Vec::new();
    for _ in 0..3 {
        let (app_port, proxy_port) = (free_port(), free_port());
        let app = format!("http://127.0.0.1:{proxy_port}");
        let app_log = std::fs::File::create(dir.path().join("app.log")).unwrap();
        let mut app_process = Group::spawn(
            Command::new(&gunicorn)
                .args(["-w", "2", "-b", &format!("127.0.0.1:{app_port}")])
                .args(["--chdir"])
                .arg(docs_dir())
                .arg("app:app")
                .env("SECRET_KEY", key)
                .env("APP_ORIGIN", &app)
                .env("COUNTERSIGN_URL", &server.base)
                .env_remove("JWKS_URL")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(app_log),
        );
        if !answers(
            &format!("http://127.0.0.1:{app_port}/public/whoami"),
            &mut app_process,
        )
        .await
        {
            failures.push(format!(
                "the app did not start on {app_port}:\n{}",
                std::fs::read_to_string(dir.path().join("app.log")).unwrap_or_default()
            ));
            continue;
        }
        let upstream = |p: u16| format!("127.0.0.1:{p}");
        let stderr = std::fs::File::create(dir.path().join("proxy.stderr")).unwrap();
        let mut proxy_process = match proxy {
            Proxy::Nginx => {
                let conf = fill(
                    NGINX_CONF,
                    &[
                        ("@LISTEN@", &upstream(proxy_port)),
                        ("@COUNTERSIGN@", &upstream(server.port)),
                        ("@APP@", &upstream(app_port)),
                    ],
                );
                let path = dir.path().join("nginx.conf");
                std::fs::write(&path, conf).unwrap();
                Group::spawn(
                    Command::new(NGINX)
                        .arg("-p")
                        .arg(dir.path())
                        .arg("-c")
                        .arg(&path)
                        .arg("-g")
                        .arg(format!(
                            "daemon off; pid {}; error_log stderr;",
                            dir.path().join("nginx.pid").display()
                        ))
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(stderr),
                )
            }
            Proxy::Caddy => {
                let conf = fill(
                    CADDYFILE,
                    &[
                        ("@ADMIN@", "off"),
                        ("@BIND@", "127.0.0.1"),
                        ("@SITE@", &app),
                        ("@COUNTERSIGN@", &upstream(server.port)),
                        ("@APP@", &upstream(app_port)),
                    ],
                );
                let path = dir.path().join("Caddyfile");
                std::fs::write(&path, conf).unwrap();
                Group::spawn(
                    Command::new(CADDY)
                        .args(["run", "--adapter", "caddyfile", "--config"])
                        .arg(&path)
                        // Caddy keeps state under HOME / XDG dirs: the test's own.
                        .env("HOME", dir.path())
                        .env("XDG_DATA_HOME", dir.path().join("caddy-data"))
                        .env("XDG_CONFIG_HOME", dir.path().join("caddy-config"))
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(stderr),
                )
            }
        };
        if !answers(&format!("{app}/public/whoami"), &mut proxy_process).await {
            failures.push(format!(
                "{proxy:?} did not start on {proxy_port}:\n{}",
                std::fs::read_to_string(dir.path().join("proxy.stderr")).unwrap_or_default()
            ));
            continue;
        }
        return Some(Stack {
            dir,
            data,
            server,
            app,
            app_port,
            _app: app_process,
            _proxy: proxy_process,
            proxy,
        });
    }
    panic!(
        "the stack did not start:\n{}\n{}",
        failures.join("\n"),
        server.log()
    );
}

/// The browser's URL, as text.
async fn url(client: &Client) -> anyhow::Result<String> {
    Ok(client.current_url().await?.to_string())
}

/// The login round trip, the role rule and logout, as a person goes through them.
async fn browse(
    client: &Client,
    s: &Stack,
    case: &str,
    users: &[(&str, &str)],
) -> anyhow::Result<()> {
    let cs = s.countersign();
    let app = &s.app;
    let (alice, root) = (users[0], users[1]);

    // The app's page: not logged in, the browser lands on countersign's login page, with
    // the way back.
    client.goto(&format!("{app}/hello")).await?;
    see(client, "Log in").await?;
    let here = url(client).await?;
    let rd = format!(
        "rd={}",
        form_urlencoded::byte_serialize(format!("{app}/hello").as_bytes()).collect::<String>()
    );
    ensure!(
        here.starts_with(&format!("{cs}/login?")) && here.contains(&rd),
        "not the login page with the way back: {here}"
    );
    screenshot(client, case, "login.png").await?;

    // Logging in comes back to the app, which greets the user of the verified assertion.
    log_in(client, alice.0, alice.1).await?;
    see(client, "Hello alice").await?;
    ensure!(
        url(client).await? == format!("{app}/hello"),
        "not back on the app: {}",
        url(client).await?
    );
    let role = client.find(Locator::Id("role")).await?.text().await?;
    ensure!(role == "role user", "the app's role line: {role:?}");
    screenshot(client, case, "hello.png").await?;

    // A role-protected path: refused by the proxy, before the app.
    client.goto(&format!("{app}/admin/")).await?;
    match s.proxy {
        Proxy::Nginx => see(client, "403 Forbidden").await?,
        Proxy::Caddy => see(client, "This page requires the admin role").await?,
    }
    let body = client.find(Locator::Css("body")).await?.text().await?;
    ensure!(
        !body.contains("Admin area"),
        "the app answered /admin/: {body}"
    );
    screenshot(client, case, "forbidden.png").await?;

    // The app's logout link: one button on countersign's page, then back to the app,
    // which asks for a login again.
    client.goto(&format!("{app}/hello")).await?;
    see(client, "Hello alice").await?;
    client.find(Locator::Id("logout")).await?.click().await?;
    see(client, "Log out").await?;
    ensure!(
        url(client).await?.starts_with(&format!("{cs}/logout?rd=")),
        "not countersign's logout page"
    );
    screenshot(client, case, "logout.png").await?;
    client
        .find(Locator::Css("form[action='/logout'] button[type=submit]"))
        .await?
        .click()
        .await?;
    see(client, "Log in").await?;
    let here = url(client).await?;
    ensure!(
        here.starts_with(&format!("{cs}/login?rd=")),
        "after logout: {here}"
    );
    client.goto(&format!("{app}/hello")).await?;
    see(client, "Log in").await?;
    ensure!(
        url(client).await?.starts_with(&format!("{cs}/login?")),
        "the app let a logged-out browser in"
    );

    // An admin gets the admin area.
    log_in(client, root.0, root.1).await?;
    see(client, "Hello root").await?;
    client.goto(&format!("{app}/admin/")).await?;
    see(client, "Admin area: hello root").await?;
    screenshot(client, case, "admin.png").await?;
    Ok(())
}

/// A session cookie (`NAME=VALUE`) from a form login at countersign, as a browser there.
async fn session_of(
    http: &reqwest::Client,
    cs: &str,
    name: &str,
    password: &str,
) -> anyhow::Result<String> {
    let page = http.get(format!("{cs}/login")).send().await?;
    let csrf = set_cookie(&page, "__Host-countersign-csrf").context("no CSRF cookie")?;
    let body = page.text().await?;
    let marker = "name=\"csrf_token\" value=\"";
    let start = body.find(marker).context("no token")? + marker.len();
    let token = &body[start..start + body[start..].find('"').context("no token end")?];
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("username", name),
            ("password", password),
            ("csrf_token", token),
        ])
        .finish();
    let r = http
        .post(format!("{cs}/login"))
        .header("origin", cs)
        .header("cookie", format!("__Host-countersign-csrf={csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await?;
    ensure!(r.status() == 303, "POST /login: {}", r.status());
    let session = set_cookie(&r, "__Host-countersign").context("no session cookie")?;
    Ok(format!("__Host-countersign={session}"))
}

/// What the app was told, through the proxy.
async fn whoami(
    http: &reqwest::Client,
    app: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Value> {
    let mut b = http.get(format!("{app}/public/whoami"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let r = b.send().await?;
    ensure!(r.status() == 200, "/public/whoami: {}", r.status());
    Ok(r.json().await?)
}

/// The HTTP-client checks: spoofed identity headers, API clients, bearer tokens, a client
/// going around the proxy.
async fn clients(s: &Stack, password: &str) -> anyhow::Result<()> {
    let http = http_client(None);
    let app = &s.app;
    let spoof: &[(&str, &str)] = &[
        ("remote-user", "admin"),
        ("remote-groups", "admin"),
        ("countersign-jwt-assertion", "forged"),
    ];
    // Nobody logged in, on a public path: the app sees none of what the client wrote.
    let who = whoami(&http, app, spoof).await?;
    ensure!(
        who["remote_user"].as_str().unwrap_or_default().is_empty()
            && who["remote_groups"].as_str().unwrap_or_default().is_empty()
            && who["verified"].is_null(),
        "anonymous, spoofing: {who}"
    );
    // Logged in: the app sees the real user, whatever the client wrote.
    let cookie = session_of(&http, s.countersign(), "alice", password).await?;
    let mut with_cookie = spoof.to_vec();
    with_cookie.push(("cookie", &cookie));
    let who = whoami(&http, app, &with_cookie).await?;
    ensure!(
        who["remote_user"] == "alice"
            && who["remote_groups"] == "user"
            && who["verified"] == "alice",
        "alice, spoofing: {who}"
    );
    // A protected page, spoofing admin without a session: not believed.
    let r = http
        .get(format!("{app}/admin/"))
        .header("remote-user", "admin")
        .header("remote-groups", "admin")
        .send()
        .await?;
    ensure!(r.status() == 401, "/admin/ spoofing admin: {}", r.status());
    // An API client: 401 with the challenge, no redirect.
    let r = http
        .get(format!("{app}/hello"))
        .header("accept", "application/json")
        .send()
        .await?;
    ensure!(r.status() == 401, "API client: {}", r.status());
    let challenge = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok());
    ensure!(
        challenge == Some(r#"Bearer realm="countersign""#),
        "challenge: {challenge:?}"
    );
    // A bearer token through the proxy.
    let pair: Value = http
        .post(format!("{}/api/token", s.countersign()))
        .json(&serde_json::json!({"username": "alice", "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let token = pair["access_token"].as_str().context("no token")?;
    let r = http
        .get(format!("{app}/hello"))
        .bearer_auth(token)
        .send()
        .await?;
    ensure!(r.status() == 200, "bearer: {}", r.status());
    let body = r.text().await?;
    ensure!(body.contains("Hello alice"), "bearer: {body}");
    // Around the proxy: the app itself trusts only a verified assertion.
    let direct = format!("http://127.0.0.1:{}", s.app_port);
    let who = whoami(&http, &direct, spoof).await?;
    ensure!(
        who["verified"].is_null(),
        "straight to the app, spoofing: {who}"
    );
    // A client asking countersign itself, from an address that is not the proxy's.
    let other: IpAddr = "127.0.0.5".parse().unwrap();
    let r = http_client(Some(other))
        .get(format!("{}/auth/request", s.countersign()))
        .header("x-original-url", format!("{app}/hello"))
        .header("x-original-method", "GET")
        .header("cookie", &cookie)
        .send()
        .await?;
    ensure!(r.status() == 403, "an untrusted peer: {}", r.status());
    Ok(())
}

async fn case(proxy: Proxy) {
    let case = match proxy {
        Proxy::Nginx => "forward-auth-nginx",
        Proxy::Caddy => "forward-auth-caddy",
    };
    let Some(s) = stack(proxy).await else {
        return;
    };
    clear_artifacts(case);
    let (alice, root) = (generated_password(), generated_password());
    add_user(s.dir.path(), &s.data, "alice", &alice);
    add_user(s.dir.path(), &s.data, "root", &root);
    let status = countersign(s.dir.path())
        .args(["user", "set-role", "root", "admin", "--data-dir"])
        .arg(&s.data)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let users = [("alice", alice.as_str()), ("root", root.as_str())];
    in_chromium(
        case,
        s.dir.path(),
        false,
        async |client| browse(client, &s, case, &users).await,
        || s.logs(),
    )
    .await;
    if let Err(e) = clients(&s, &alice).await {
        panic!("{case}: {e:#}\n{}", s.logs());
    }
    if proxy == Proxy::Nginx {
        reload(&s).await;
    }
    for password in [&alice, &root] {
        assert!(
            !s.server.log().contains(password.as_str()),
            "a password reached the log"
        );
    }
}

/// SIGHUP reads the rules again: `/public` denied, then a bad rule refused (the running
/// rules kept).
async fn reload(s: &Stack) {
    let http = http_client(None);
    let pid = s.server._process.child.id().to_string();
    let hup = |expect: &str| {
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
        s.server.wait_for(expect);
    };
    let path = s.dir.path().join("countersign.toml");
    std::fs::write(
        &path,
        RULES.replace("policy = \"public\"", "policy = \"deny\""),
    )
    .unwrap();
    hup("access rules reloaded");
    let r = http
        .get(format!("{}/public/whoami", s.app))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "after the reload\n{}", s.logs());
    std::fs::write(&path, "[[access]]\npolicy = \"nope\"\n").unwrap();
    hup("the new access rules were refused");
    let r = http
        .get(format!("{}/public/whoami", s.app))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "a bad file keeps the rules running\n{}",
        s.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_behind_nginx() {
    case(Proxy::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_behind_caddy() {
    case(Proxy::Caddy).await;
}

/// `countersign access check`: the matching rule, the verdict, the status.
#[test]
fn access_check_prints_the_rule_and_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("countersign.toml");
    std::fs::write(
        &config,
        format!("default_policy = \"authenticated\"\n{RULES}\n[[access]]\nhost = \"*.example.test:8443\"\nmethods = [\"DELETE\"]\npolicy = \"deny\"\n"),
    )
    .unwrap();
    add_user(dir.path(), &data, "alice", &generated_password());
    let check = |args: &[&str]| {
        let out = countersign(dir.path())
            .args(["access", "check", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, out, err) = check(&[
        "--url",
        "https://app.example.test/%61dmin/users",
        "--user",
        "alice",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        out,
        "request: GET https://app.example.test/%61dmin/users (host app.example.test, port 443, path /admin/users)\n\
         rule:    rule 1 (\"admin area\"): path = \"/admin\", policy = \"role:admin\"\n\
         as:      alice (role user)\n\
         verdict: forbidden (403)\n"
    );
    let (code, out, _) = check(&["--url", "https://app.example.test/admin", "--role", "admin"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.ends_with("as:      a user with role admin\nverdict: allowed (200)\n"),
        "{out}"
    );
    let (code, out, _) = check(&["--url", "https://app.example.test/notes"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("rule:    none of the 3 rules matched: default_policy = \"authenticated\"\n"),
        "{out}"
    );
    assert!(out.ends_with("as:      someone not logged in\nverdict: login required (401; a browser is sent to the login page)\n"), "{out}");
    let (code, out, _) = check(&[
        "--url",
        "https://x.example.test:8443/a",
        "--method",
        "delete",
        "--role",
        "admin",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "rule 3: host = \"*.example.test:8443\", methods = [\"DELETE\"], policy = \"deny\""
        ),
        "{out}"
    );
    let (code, out, _) = check(&["--url", "https://app.example.test/public/x"]);
    assert_eq!(
        (code, out.ends_with("verdict: allowed (200)\n")),
        (0, true),
        "{out}"
    );
    // The default policy from the command line wins over the file's.
    let (code, out, _) = check(&[
        "--url",
        "https://app.example.test/notes",
        "--default-policy",
        "public",
    ]);
    assert_eq!(code, 0, "{out}");
    // Bad input: status 2 with a message; an unknown user: status 1.
    let (code, _, err) = check(&["--url", "app.example.test/x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--url"), "{err}");
    let (code, _, err) = check(&["--url", "https://a.test/", "--user", "nobody"]);
    assert_eq!((code, err.trim()), (1, "no such user: nobody"));
    std::fs::write(&config, "[[access]]\npath = \"admin\"\npolicy = \"deny\"\n").unwrap();
    let (code, _, err) = check(&["--url", "https://a.test/"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("access rule 1") && err.contains("must start with `/`"),
        "{err}"
    );
}
