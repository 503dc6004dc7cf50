//! The router in-process (`tower::ServiceExt::oneshot`): every route of `docs/http.md`'s HTTP
//! contract and failure table, CSRF, session fixation, logout replay, idle and absolute
//! expiry with a moved clock, throttling, timing parity, refresh rotation and reuse,
//! revocation, the session index, registration and escaping.
//!
//! Each test builds its own server over a `MemoryStore` (or SQLite in a temporary
//! directory) with a `ManualClock`, cheap argon2 parameters and no hot-path cache, so
//! tests share nothing and never sleep.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use countersign::auth::{AuthConfig, ThrottlePolicy};
use countersign::clock::{ManualClock, UnixTime};
use countersign::keys::{KeyRing, SecretKey};
use countersign::memory::MemoryStore;
use countersign::password::{HashParams, Password};
use countersign::user::Role;
use countersign_server::server::{App, router, telemetry};
use countersign_server::settings::{Registration, ServeConfig, StorageConfig};
use countersign_server::storage::Stores;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};
use tower::ServiceExt as _;

mod forms;
mod forward;
mod jwks;
mod mfa;
mod mfa_policy;
mod passkeys;
mod proxy;
mod setup;

const T0: i64 = 1_800_000_000;
const PW: &str = "correct horse battery staple";
const FAST: HashParams = HashParams {
    m_cost_kib: 64,
    t_cost: 1,
    p_cost: 1,
};
const SESSION: &str = "__Host-countersign";
const CSRF_COOKIE: &str = "__Host-countersign-csrf";

/// The process's metrics recorder, installed once for every test of this binary.
fn metrics() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            telemetry::prometheus_builder()
                .unwrap()
                .install_recorder()
                .unwrap()
        })
        .clone()
}

fn test_config() -> ServeConfig {
    ServeConfig {
        hash_params: FAST,
        hash_workers: 2,
        auth: AuthConfig {
            cache_ttl: Duration::ZERO,
            ..AuthConfig::default()
        },
        ..ServeConfig::default()
    }
}

struct Server {
    router: Router,
    app: App,
    clock: ManualClock,
}

impl Server {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(tune: impl FnOnce(&mut ServeConfig)) -> Self {
        let mut config = test_config();
        tune(&mut config);
        let store = Arc::new(MemoryStore::new());
        Self::build(&config, store.clone(), store)
    }

    fn build(
        config: &ServeConfig,
        users: Arc<dyn countersign::store::UserStore>,
        sessions: Arc<dyn countersign::store::EphemeralStore>,
    ) -> Self {
        let clock = ManualClock::new(UnixTime(T0));
        let ring = KeyRing::single(SecretKey::generate(32).unwrap().0);
        let app = App::new(
            config,
            ring,
            users,
            sessions,
            Arc::new(clock.clone()),
            Some(metrics()),
        )
        .unwrap();
        Self {
            router: router(app.clone()),
            app,
            clock,
        }
    }

    async fn add_user(&self, name: &str, role: &str) {
        self.app
            .engine()
            .create_user(name, Password::new(PW), Role::parse(role).unwrap())
            .await
            .unwrap();
    }

    async fn send(&self, request: Request<Body>) -> Resp {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = String::from_utf8(bytes.to_vec()).unwrap();
        let error = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_default();
        Resp {
            status,
            headers,
            body,
            error,
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }

    async fn bearer(&self, method: Method, path: &str, token: &str) -> Resp {
        self.send(
            Request::builder()
                .method(method)
                .uri(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.send(
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    /// A token pair for `name` by `POST /api/token`.
    async fn tokens(&self, name: &str) -> Value {
        let r = self
            .post_json("/api/token", &json!({"username": name, "password": PW}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        r.json()
    }
}

#[derive(Debug)]
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
    error: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    /// The value a `Set-Cookie` gives `name`, if any.
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().iter().find_map(|c| {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }

    /// The hidden `csrf_token` field of the page.
    fn form_token(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no token: {self:?}"))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    /// The `error` member of a JSON body ("" if none).
    fn error(&self) -> &str {
        &self.error
    }
}

/// A browser: a cookie jar, same-origin headers on every POST, a client address.
#[derive(Clone, Debug)]
struct Browser {
    jar: BTreeMap<String, String>,
    addr: SocketAddr,
}

impl Browser {
    fn new() -> Self {
        Self::from_addr("192.0.2.1:40000")
    }

    fn from_addr(addr: &str) -> Self {
        Self {
            jar: BTreeMap::new(),
            addr: addr.parse().unwrap(),
        }
    }

    fn request(&self, method: Method, path: &str) -> axum::http::request::Builder {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "localhost")
            .header(header::USER_AGENT, "test-browser/1.0");
        if !self.jar.is_empty() {
            let cookie = self
                .jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            b = b.header(header::COOKIE, cookie);
        }
        b.extension(ConnectInfo(self.addr))
    }

    fn form(&self, path: &str, fields: &[(&str, &str)]) -> Request<Body> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.request(Method::POST, path)
            // What a browser at http://localhost sends (the in-process server is plain HTTP).
            .header(header::ORIGIN, "http://localhost")
            .header("sec-fetch-site", "same-origin")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    }

    fn absorb(&mut self, r: &Resp) {
        for c in r.set_cookies() {
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.jar.remove(k);
            } else {
                self.jar.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    async fn go(&mut self, s: &Server, request: Request<Body>) -> Resp {
        let r = s.send(request).await;
        self.absorb(&r);
        r
    }

    async fn get(&mut self, s: &Server, path: &str) -> Resp {
        let request = self.request(Method::GET, path).body(Body::empty()).unwrap();
        self.go(s, request).await
    }

    /// Submit a form shown at `page` to `action`, with its CSRF token.
    async fn submit(
        &mut self,
        s: &Server,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> Resp {
        let token = self.get(s, page).await.form_token();
        let mut all = fields.to_vec();
        all.push(("csrf_token", &token));
        let request = self.form(action, &all);
        self.go(s, request).await
    }

    async fn login(&mut self, s: &Server, name: &str, password: &str) -> Resp {
        self.submit(
            s,
            "/login",
            "/login",
            &[("username", name), ("password", password)],
        )
        .await
    }

    fn session(&self) -> Option<&str> {
        self.jar.get(SESSION).map(String::as_str)
    }

    /// The session's CSRF token, as `/api/me` tells scripts.
    async fn csrf(&mut self, s: &Server) -> String {
        let me = self.get(s, "/api/me").await;
        me.json()["csrf_token"].as_str().unwrap().to_owned()
    }

    async fn api(&mut self, s: &Server, method: Method, path: &str) -> Resp {
        let token = self.csrf(s).await;
        let request = self
            .request(method, path)
            .header(header::ORIGIN, "http://localhost")
            .header("x-csrf-token", token)
            .body(Body::empty())
            .unwrap();
        self.go(s, request).await
    }
}

fn assert_no_store(r: &Resp) {
    assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
}

// --- pages: home, login, logout ------------------------------------------------------

#[tokio::test]
async fn home_anonymous_shows_the_login_form() {
    let s = Server::new();
    let mut b = Browser::new();
    let r = b.get(&s, "/").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("You are not logged in"), "{r:?}");
    assert!(r.body.contains("action=\"/login\""));
    assert!(r.body.contains("<label for=\"username\">"));
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    // The pre-session CSRF cookie, and no session record for an anonymous visit.
    assert!(r.cookie(CSRF_COOKIE).is_some());
    assert!(r.cookie(SESSION).is_none());
    assert_no_store(&r);
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
}

#[tokio::test]
async fn form_login_sets_a_session_and_home_greets() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    let r = b.login(&s, "alice", PW).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(r.header("location"), Some("/"));
    let set = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with(SESSION))
        .unwrap()
        .to_owned();
    for attr in [
        "Path=/",
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Max-Age=43200",
    ] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Domain"), "{set}");

    let home = b.get(&s, "/").await;
    assert!(home.body.contains("Logged in as alice"), "{home:?}");
    assert!(home.body.contains("action=\"/logout\""));
    let protected = b.get(&s, "/protected").await;
    assert_eq!(protected.status, StatusCode::OK);
    assert_eq!(
        protected.json(),
        json!({"message": "Hello alice, you have access to this protected route."})
    );
    let me = b.get(&s, "/api/me").await.json();
    assert_eq!(me["username"], "alice");
    assert_eq!(me["role"], "user");
    assert_eq!(me["auth"], "session");
}

#[tokio::test]
async fn wrong_password_shows_the_form_again_with_401() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    let r = b.login(&s, "alice", "not the password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Invalid username or password"), "{r:?}");
    assert!(r.body.contains("value=\"alice\""), "the username is kept");
    assert!(r.body.contains("action=\"/login\""));
    assert!(r.cookie(SESSION).is_none());
    assert!(b.session().is_none());
    // The form shown again works.
    let token = r.form_token();
    let retry = b.form(
        "/login",
        &[
            ("username", "alice"),
            ("password", PW),
            ("csrf_token", &token),
        ],
    );
    assert_eq!(b.go(&s, retry).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn empty_and_malformed_login_forms_are_4xx() {
    let s = Server::new();
    let mut b = Browser::new();
    let r = b
        .submit(&s, "/login", "/login", &[("username", "alice")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{r:?}");
    let token = b.get(&s, "/login").await.form_token();
    let mut req = b.form("/login", &[("csrf_token", &token)]);
    *req.body_mut() = Body::from(format!("csrf_token={token}&username=%ZZ&password=x"));
    let r = b.go(&s, req).await;
    assert!(r.status.is_client_error(), "{r:?}");
}

#[tokio::test]
async fn login_needs_the_csrf_token_and_a_same_origin_request() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    let token = b.get(&s, "/login").await.form_token();
    let creds = [("username", "alice"), ("password", PW)];

    // No token.
    let r = b.go(&s, b.form("/login", &creds)).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "csrf_failed")
    );
    // A token from another browser's cookie.
    let other = Browser::new().get(&s, "/login").await.form_token();
    let r = b
        .go(
            &s,
            b.form("/login", &[creds[0], creds[1], ("csrf_token", &other)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The right token from a cross-site page, in a browser that sends no Sec-Fetch-Site
    // (Origin decides), then in one that does.
    let mut req = b.form("/login", &[creds[0], creds[1], ("csrf_token", &token)]);
    req.headers_mut().remove("sec-fetch-site");
    req.headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    assert_eq!(b.go(&s, req).await.status, StatusCode::FORBIDDEN);
    let mut req = b.form("/login", &[creds[0], creds[1], ("csrf_token", &token)]);
    req.headers_mut()
        .insert("sec-fetch-site", "cross-site".parse().unwrap());
    assert_eq!(b.go(&s, req).await.status, StatusCode::FORBIDDEN);
    assert!(b.session().is_none());
    // And with everything right, it works.
    let r = b
        .go(
            &s,
            b.form("/login", &[creds[0], creds[1], ("csrf_token", &token)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn session_fixation_a_pre_login_cookie_is_never_adopted() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    s.add_user("mallory", "user").await;

    // A forged value planted before login.
    let mut b = Browser::new();
    let forged = "A".repeat(43) + "." + &"B".repeat(43);
    b.jar.insert(SESSION.to_owned(), forged.clone());
    let r = b.login(&s, "alice", PW).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_ne!(b.session(), Some(forged.as_str()));

    // The attacker's own live session planted in the victim's browser.
    let mut mallory = Browser::new();
    mallory.login(&s, "mallory", PW).await;
    let planted = mallory.session().unwrap().to_owned();
    let mut victim = Browser::new();
    victim.jar.insert(SESSION.to_owned(), planted.clone());
    let r = victim.login(&s, "alice", PW).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    let fresh = victim.session().unwrap().to_owned();
    assert_ne!(fresh, planted);
    assert_eq!(victim.get(&s, "/api/me").await.json()["username"], "alice");
    // The planted session ended with the login: the attacker holds nothing.
    assert_eq!(
        mallory.get(&s, "/protected").await.status,
        StatusCode::UNAUTHORIZED
    );

    // A second login in the same browser also gets a new id, and the old one is gone.
    let mut again = victim.clone();
    again.login(&s, "alice", PW).await;
    assert_ne!(again.session(), Some(fresh.as_str()));
    assert_eq!(
        victim.get(&s, "/protected").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn logout_deletes_the_session_and_a_replayed_cookie_is_refused() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    b.login(&s, "alice", PW).await;
    let stolen = b.clone();
    let r = b.submit(&s, "/", "/logout", &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(r.header("location"), Some("/"));
    assert!(
        r.set_cookies()
            .iter()
            .any(|c| c.starts_with(&format!("{SESSION}=;")) && c.contains("Max-Age=0"))
    );
    assert!(b.session().is_none());
    assert!(b.get(&s, "/").await.body.contains("You are not logged in"));

    let mut replay = stolen.clone();
    let r = replay.get(&s, "/protected").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_session", "message": "Unauthorized"})
    );
    assert!(
        r.cookie(SESSION).is_some_and(|v| v.is_empty()),
        "cookie cleared: {r:?}"
    );
    // The home page treats it as logged out and clears it too.
    let mut replay = stolen;
    let home = replay.get(&s, "/").await;
    assert!(home.body.contains("You are not logged in"));
    assert!(
        home.set_cookies()
            .iter()
            .any(|c| c.starts_with(&format!("{SESSION}=;")))
    );
}

#[tokio::test]
async fn logout_without_the_csrf_token_is_refused() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    b.login(&s, "alice", PW).await;
    let r = b.go(&s, b.form("/logout", &[])).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::FORBIDDEN, "csrf_failed")
    );
    let r = b
        .go(&s, b.form("/logout", &[("csrf_token", "guess")]))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(b.get(&s, "/protected").await.status, StatusCode::OK);
}

// --- the failure table ----------------------------------------------------------------

#[tokio::test]
async fn failure_table() {
    let s = Server::new();
    s.add_user("alice", "user").await;

    let r = s.get("/protected").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="countersign""#)
    );
    assert_eq!(
        r.json(),
        json!({"error": "missing_token", "message": "Token is missing!"})
    );
    assert_no_store(&r);

    let r = s.bearer(Method::GET, "/protected", "not.a.jwt").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    assert_eq!(
        r.json(),
        json!({"error": "invalid_token", "message": "Invalid token!"})
    );

    // A token signed with another key.
    let other = Server::new();
    other.add_user("alice", "user").await;
    let foreign = other.tokens("alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.bearer(Method::GET, "/protected", &foreign).await;
    assert_eq!(r.json()["message"], "Invalid token!");

    let token = s.tokens("alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    s.clock.advance(15 * 60 + 30 + 1);
    let r = s.bearer(Method::GET, "/protected", &token).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.contains(r#"error="invalid_token""#) && challenge.contains("expired"),
        "{challenge}"
    );
    assert_eq!(
        r.json(),
        json!({"error": "invalid_token", "message": "Token has expired!"})
    );
    assert_no_store(&r);

    let mut b = Browser::new();
    b.jar.insert(SESSION.to_owned(), "garbage".to_owned());
    let r = b.get(&s, "/protected").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_session", "message": "Unauthorized"})
    );
    assert!(b.session().is_none(), "the cookie is cleared");

    // Authenticated, role missing: 403.
    let token = s.tokens("alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.bearer(Method::GET, "/api/users", &token).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error(), "insufficient_scope");
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
}

#[tokio::test]
async fn admins_list_users() {
    let s = Server::new();
    s.add_user("root", "admin").await;
    s.add_user("alice", "user").await;
    let token = s.tokens("root").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.bearer(Method::GET, "/api/users", &token).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let names: Vec<_> = r.json()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["root", "alice"]);
}

// --- tokens ---------------------------------------------------------------------------

#[tokio::test]
async fn api_token_by_json_or_form_then_bearer_access() {
    let s = Server::new();
    s.add_user("alice", "admin").await;
    let pair = s.tokens("alice").await;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert!(pair["refresh_token"].as_str().unwrap().len() >= 43);
    let access = pair["access_token"].as_str().unwrap();
    let r = s.bearer(Method::GET, "/protected", access).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json()["message"],
        "Hello alice, you have access to this protected route."
    );
    let me = s.bearer(Method::GET, "/api/me", access).await.json();
    assert_eq!(
        (
            me["username"].as_str(),
            me["role"].as_str(),
            me["auth"].as_str()
        ),
        (Some("alice"), Some("admin"), Some("bearer"))
    );

    let form = s
        .send(
            Request::post("/api/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "username=alice&password={}",
                    PW.replace(' ', "+")
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(form.status, StatusCode::OK, "{form:?}");
    assert_no_store(&form);
    assert!(form.json()["access_token"].is_string());
}

#[tokio::test]
async fn api_token_refuses_bad_credentials_and_bad_bodies() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let r = s
        .post_json(
            "/api/token",
            &json!({"username": "alice", "password": "wrong password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_grant", "message": "Invalid username or password"})
    );
    assert_no_store(&r);

    let raw = |ct: &'static str, body: String| {
        Request::post("/api/token")
            .header(header::CONTENT_TYPE, ct)
            .body(Body::from(body))
            .unwrap()
    };
    let r = s
        .send(raw("application/json", "{\"username\":".to_owned()))
        .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let r = s
        .send(raw(
            "application/json",
            "{\"username\":\"alice\"}".to_owned(),
        ))
        .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request")
    );
    let r = s
        .send(raw(
            "application/json",
            "{\"username\":1,\"password\":[]}".to_owned(),
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = s.send(raw("text/plain", "alice:pw".to_owned())).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let big = format!(
        "{{\"username\":\"{}\",\"password\":\"x\"}}",
        "a".repeat(100 * 1024)
    );
    let r = s.send(raw("application/json", big)).await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let r = s
        .post_json(
            "/api/token",
            &json!({"username": "alice", "password": PW, "grant_type": "client_credentials"}),
        )
        .await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::BAD_REQUEST, "unsupported_grant_type")
    );
    let r = s
        .send(raw("application/json", "\u{0}\u{1}".to_owned()))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = s.get("/api/token").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.error(), "method_not_allowed");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let first = s.tokens("alice").await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let second = s
        .post_json("/api/token/refresh", &json!({"refresh_token": r1}))
        .await;
    assert_eq!(second.status, StatusCode::OK, "{second:?}");
    let second = second.json();
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);
    assert_eq!(second["token_type"], "Bearer");
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(
        s.bearer(Method::GET, "/protected", access).await.status,
        StatusCode::OK
    );

    // The retired token again: refused, and the whole family with it.
    let reuse = s
        .post_json("/api/token/refresh", &json!({"refresh_token": r1}))
        .await;
    assert_eq!(
        (reuse.status, reuse.error()),
        (StatusCode::UNAUTHORIZED, "invalid_grant")
    );
    let after = s
        .post_json("/api/token/refresh", &json!({"refresh_token": r2}))
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);

    let garbage = s
        .post_json("/api/token/refresh", &json!({"refresh_token": "nope"}))
        .await;
    assert_eq!(
        (garbage.status, garbage.error()),
        (StatusCode::UNAUTHORIZED, "invalid_grant")
    );
    let missing = s.post_json("/api/token/refresh", &json!({})).await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn revoke_is_200_always_and_revokes() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let pair = s.tokens("alice").await;
    let access = pair["access_token"].as_str().unwrap();
    let refresh = pair["refresh_token"].as_str().unwrap();

    let r = s
        .post_json("/api/token/revoke", &json!({"token": access}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_no_store(&r);
    let r = s.bearer(Method::GET, "/protected", access).await;
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Invalid token!"))
    );

    let r = s
        .post_json(
            "/api/token/revoke",
            &json!({"token": refresh, "token_type_hint": "refresh_token"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = s
        .post_json("/api/token/refresh", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    for unknown in ["", "garbage", "a.b.c"] {
        let r = s
            .post_json("/api/token/revoke", &json!({"token": unknown}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{unknown:?}");
    }
    let r = s.post_json("/api/token/revoke", &json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

// --- sessions: index, expiry ----------------------------------------------------------

#[tokio::test]
async fn session_index_list_revoke_one_revoke_all() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    s.add_user("bob", "user").await;
    let mut laptop = Browser::new();
    laptop.login(&s, "alice", PW).await;
    s.clock.advance(10);
    let mut phone = Browser::from_addr("198.51.100.7:5000");
    phone.login(&s, "alice", PW).await;
    let mut bob = Browser::new();
    bob.login(&s, "bob", PW).await;

    let list = phone.get(&s, "/api/sessions").await;
    assert_eq!(list.status, StatusCode::OK);
    let sessions = list.json()["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    assert_eq!(
        sessions[0]["current"], true,
        "newest first, and it is this one"
    );
    assert_eq!(sessions[0]["ip"], "198.51.100.7");
    assert_eq!(sessions[0]["user_agent"], "test-browser/1.0");
    assert_eq!(sessions[1]["current"], false);
    let laptop_id = sessions[1]["id"].as_str().unwrap().to_owned();

    // Bob cannot end Alice's session: it is "no such session" to him.
    let r = bob
        .api(&s, Method::DELETE, &format!("/api/sessions/{laptop_id}"))
        .await;
    assert_eq!((r.status, r.error()), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(laptop.get(&s, "/protected").await.status, StatusCode::OK);

    // A cookie-authenticated DELETE needs the CSRF token.
    let bare = phone
        .request(Method::DELETE, &format!("/api/sessions/{laptop_id}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(phone.go(&s, bare).await.status, StatusCode::FORBIDDEN);

    let r = phone
        .api(&s, Method::DELETE, &format!("/api/sessions/{laptop_id}"))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    assert_eq!(
        laptop.get(&s, "/protected").await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = phone
        .api(&s, Method::DELETE, &format!("/api/sessions/{laptop_id}"))
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let bad = phone
        .api(&s, Method::DELETE, "/api/sessions/not-an-id")
        .await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND);

    // Log out everywhere also ends bearer tokens and refresh families.
    let pair = s.tokens("alice").await;
    let r = phone
        .api(&s, Method::POST, "/api/sessions/revoke-all")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json()["revoked_sessions"], 1);
    assert!(phone.session().is_none(), "the cookie is cleared");
    let access = pair["access_token"].as_str().unwrap();
    assert_eq!(
        s.bearer(Method::GET, "/protected", access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let refresh = pair["refresh_token"].as_str().unwrap();
    let r = s
        .post_json("/api/token/refresh", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Bob is untouched.
    assert_eq!(bob.get(&s, "/protected").await.status, StatusCode::OK);
}

#[tokio::test]
async fn session_index_by_bearer_token() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    b.login(&s, "alice", PW).await;
    let access = s.tokens("alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = s.bearer(Method::GET, "/api/sessions", &access).await.json();
    let id = list["sessions"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list["sessions"][0]["current"], false);
    // Bearer requests need no CSRF token.
    let r = s
        .bearer(Method::DELETE, &format!("/api/sessions/{id}"), &access)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        b.get(&s, "/protected").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn sessions_page_lists_and_ends_sessions() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut other = Browser::from_addr("203.0.113.9:1");
    other.login(&s, "alice", PW).await;
    let other_id = other.get(&s, "/api/sessions").await.json()["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut b = Browser::new();
    assert_eq!(
        b.get(&s, "/account/sessions").await.header("location"),
        Some("/login")
    );
    b.login(&s, "alice", PW).await;
    let page = b.get(&s, "/account/sessions").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("This session"));
    assert!(page.body.contains("203.0.113.9"));
    assert!(page.body.contains(&other_id));
    assert!(page.body.contains("Log out everywhere"));

    let r = b
        .submit(
            &s,
            "/account/sessions",
            "/account/sessions/revoke",
            &[("id", &other_id)],
        )
        .await;
    assert_eq!(r.header("location"), Some("/account/sessions"), "{r:?}");
    assert_eq!(
        other.get(&s, "/protected").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(b.get(&s, "/protected").await.status, StatusCode::OK);

    // Ending this very session logs out here.
    let mine = b.get(&s, "/api/sessions").await.json()["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = b
        .submit(
            &s,
            "/account/sessions",
            "/account/sessions/revoke",
            &[("id", &mine)],
        )
        .await;
    assert_eq!(r.header("location"), Some("/"), "{r:?}");
    assert!(b.session().is_none());

    let mut c = Browser::new();
    c.login(&s, "alice", PW).await;
    let r = c
        .submit(
            &s,
            "/account/sessions",
            "/account/sessions/revoke",
            &[("id", "junk")],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sessions_page_log_out_everywhere() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut other = Browser::new();
    other.login(&s, "alice", PW).await;
    let mut b = Browser::new();
    b.login(&s, "alice", PW).await;
    let r = b
        .submit(&s, "/account/sessions", "/account/sessions/revoke-all", &[])
        .await;
    assert_eq!(
        (r.status, r.header("location")),
        (StatusCode::SEE_OTHER, Some("/"))
    );
    assert!(b.session().is_none());
    assert_eq!(
        other.get(&s, "/protected").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn idle_timeout_ends_a_session_and_use_extends_it() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    b.login(&s, "alice", PW).await;
    // Used every 20 minutes, it lives on (the idle timeout is 30).
    for _ in 0..3 {
        s.clock.advance(20 * 60);
        assert_eq!(b.get(&s, "/protected").await.status, StatusCode::OK);
    }
    s.clock.advance(30 * 60);
    let r = b.get(&s, "/protected").await;
    assert_eq!(
        (r.status, r.error()),
        (StatusCode::UNAUTHORIZED, "invalid_session")
    );
}

#[tokio::test]
async fn absolute_lifetime_ends_even_a_busy_session() {
    let s = Server::with(|c| {
        c.auth.sessions.idle_secs = 600;
        c.auth.sessions.absolute_secs = 3600;
    });
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    b.login(&s, "alice", PW).await;
    for _ in 0..6 {
        s.clock.advance(599);
        assert_eq!(b.get(&s, "/protected").await.status, StatusCode::OK);
    }
    // 3594 s in, used just now: alive until the absolute deadline at 3600, however busy.
    s.clock.advance(5);
    assert_eq!(b.get(&s, "/protected").await.status, StatusCode::OK);
    s.clock.advance(1);
    assert_eq!(
        b.get(&s, "/protected").await.status,
        StatusCode::UNAUTHORIZED
    );
}

// --- throttling, capacity, timing parity -----------------------------------------------

#[tokio::test]
async fn failed_logins_are_throttled_per_account_with_retry_after() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    for _ in 0..5 {
        assert_eq!(
            b.login(&s, "alice", "wrong password").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Even the right password waits now; the API too.
    let r = b.login(&s, "alice", PW).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    let retry: i64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert!(r.body.contains("Too many failed attempts"));
    let api = s
        .post_json("/api/token", &json!({"username": "alice", "password": PW}))
        .await;
    assert_eq!(
        (api.status, api.error()),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
    );
    assert!(api.header("retry-after").is_some());
    // No permanent lockout: after the window, the right password works.
    s.clock.advance(retry);
    assert_eq!(b.login(&s, "alice", PW).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_address() {
    let s = Server::with(|c| {
        c.auth.throttle = ThrottlePolicy {
            per_account: 100,
            per_address: 3,
            window_secs: 60,
            ..ThrottlePolicy::default()
        };
    });
    s.add_user("alice", "user").await;
    let mut spray = Browser::from_addr("192.0.2.66:1");
    for name in ["a1", "a2", "a3"] {
        assert_eq!(
            spray.login(&s, name, "password1!").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        spray.login(&s, "alice", PW).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let mut elsewhere = Browser::from_addr("192.0.2.67:1");
    assert_eq!(
        elsewhere.login(&s, "alice", PW).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_hashing_pool_answers_503_with_retry_after() {
    let s = Server::with(|c| {
        c.hash_workers = 1;
        c.hash_queue = 0;
        c.hash_params = HashParams {
            m_cost_kib: 4 * 1024,
            t_cost: 4,
            p_cost: 1,
        };
    });
    s.add_user("alice", "user").await;
    let hashing = || s.app.engine().hashing_stats();
    let router = s.router.clone();
    let slow = tokio::spawn(async move {
        let request = Request::post("/api/token")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"username": "alice", "password": PW}).to_string(),
            ))
            .unwrap();
        router.oneshot(request).await.unwrap().status()
    });
    for _ in 0..1_000_000 {
        if hashing().depth > 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(hashing().depth, 1, "the first login holds the only slot");
    // Another account's login finds the pool full (a second attempt on alice's account
    // would wait for the first: attempts on one account take turns).
    let r = s
        .post_json("/api/token", &json!({"username": "bob", "password": PW}))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
    assert_eq!(r.error(), "temporarily_unavailable");
    assert_eq!(r.header("retry-after"), Some("1"));
    let mut b = Browser::new();
    let form = b.login(&s, "bob", PW).await;
    assert_eq!(form.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(form.header("retry-after"), Some("1"));
    assert_eq!(slow.await.unwrap(), StatusCode::OK);
}

/// Every header but the request id (which is per request by design).
fn comparable(h: &HeaderMap) -> Vec<(String, String)> {
    let mut out: Vec<_> = h
        .iter()
        .filter(|(k, _)| k.as_str() != "x-request-id")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn unknown_user_and_wrong_password_look_and_cost_the_same() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let hashing = || s.app.engine().hashing_stats();

    // API: identical status, headers and body; one argon2 verify each.
    let before = hashing().verifications;
    let wrong = s
        .post_json(
            "/api/token",
            &json!({"username": "alice", "password": "wrong password"}),
        )
        .await;
    assert_eq!(hashing().verifications, before + 1);
    let unknown = s
        .post_json(
            "/api/token",
            &json!({"username": "nobody", "password": "wrong password"}),
        )
        .await;
    assert_eq!(hashing().verifications, before + 2);
    let invalid_name = s
        .post_json(
            "/api/token",
            &json!({"username": "<bad name>", "password": "x"}),
        )
        .await;
    assert_eq!(hashing().verifications, before + 3);
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    for other in [&unknown, &invalid_name] {
        assert_eq!(wrong.status, other.status);
        assert_eq!(wrong.body, other.body);
        assert_eq!(comparable(&wrong.headers), comparable(&other.headers));
    }

    // Form: identical but for the username echoed back.
    let mut b = Browser::new();
    let token = b.get(&s, "/login").await.form_token();
    let before = hashing().verifications;
    let wrong = b
        .go(
            &s,
            b.form(
                "/login",
                &[
                    ("username", "alice"),
                    ("password", "wrong password"),
                    ("csrf_token", &token),
                ],
            ),
        )
        .await;
    let unknown = b
        .go(
            &s,
            b.form(
                "/login",
                &[
                    ("username", "zelda"),
                    ("password", "wrong password"),
                    ("csrf_token", &token),
                ],
            ),
        )
        .await;
    assert_eq!(hashing().verifications, before + 2);
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(
        wrong.body.replace("alice", "NAME"),
        unknown.body.replace("zelda", "NAME")
    );
    assert_eq!(comparable(&wrong.headers), comparable(&unknown.headers));
}

// --- registration and escaping ---------------------------------------------------------

#[tokio::test]
async fn registration_closed_is_404() {
    let s = Server::new();
    assert_eq!(s.get("/register").await.status, StatusCode::NOT_FOUND);
    let mut b = Browser::new();
    let token = b.get(&s, "/login").await.form_token();
    let r = b
        .go(
            &s,
            b.form(
                "/register",
                &[
                    ("username", "eve"),
                    ("password", PW),
                    ("csrf_token", &token),
                ],
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!b.get(&s, "/").await.body.contains("/register"));
    assert!(s.app.engine().user_by_name("eve").await.unwrap().is_none());
}

#[tokio::test]
async fn registration_open_creates_and_logs_in() {
    let s = Server::with(|c| c.registration = Registration::Open);
    let mut b = Browser::new();
    let form = b.get(&s, "/register").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("<label for=\"password\">"));
    let r = b
        .submit(
            &s,
            "/register",
            "/register",
            &[("username", "carol"), ("password", PW)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert!(b.get(&s, "/").await.body.contains("Logged in as carol"));
    assert_eq!(b.get(&s, "/api/me").await.json()["role"], "user");

    let mut again = Browser::new();
    let r = again
        .submit(
            &s,
            "/register",
            "/register",
            &[("username", "carol"), ("password", PW)],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("taken"));
    let r = again
        .submit(
            &s,
            "/register",
            "/register",
            &[("username", "dave"), ("password", "short")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("at least 8"), "{r:?}");
    let r = again
        .submit(
            &s,
            "/register",
            "/register",
            &[("username", "dave"), ("password", "password123")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("common"), "{r:?}");
    // Without the CSRF token: refused.
    let r = again
        .go(
            &s,
            again.form("/register", &[("username", "dave"), ("password", PW)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn registration_is_throttled_per_address() {
    let s = Server::with(|c| {
        c.registration = Registration::Open;
        c.auth.throttle.registrations_per_address = 3;
    });
    let register = |b: &'static str, name: &'static str, password: &'static str| {
        let s = &s;
        async move {
            Browser::from_addr(b)
                .submit(
                    s,
                    "/register",
                    "/register",
                    &[("username", name), ("password", password)],
                )
                .await
        }
    };
    let user = |name: &'static str| {
        let s = &s;
        async move { s.app.engine().user_by_name(name).await.unwrap() }
    };
    // Every attempt from the address counts, whatever its port and outcome: a success, a
    // taken name, a refused password.
    let r = register("192.0.2.70:1001", "fay", PW).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    let r = register("192.0.2.70:1002", "fay", PW).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
    let r = register("192.0.2.70:1003", "gus", "short").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{r:?}");

    // The fourth: 429 with Retry-After and the form again, before any hashing.
    let hashes = s.app.engine().hashing_stats().hashes;
    let r = register("192.0.2.70:1004", "gus", PW).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{r:?}");
    let retry: i64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert!(r.body.contains("Too many registration attempts"), "{r:?}");
    assert!(r.body.contains("action=\"/register\""), "{r:?}");
    assert!(r.body.contains("value=\"gus\""), "{r:?}");
    assert_eq!(
        s.app.engine().hashing_stats().hashes,
        hashes,
        "no hash was computed"
    );
    assert!(user("gus").await.is_none());

    // Another address is not affected.
    let r = register("192.0.2.71:1001", "gus", PW).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert!(user("gus").await.is_some());
    assert_eq!(s.app.engine().hashing_stats().hashes, hashes + 1);

    // When the window ends, the address may register again.
    s.clock.advance(retry);
    let r = register("192.0.2.70:1005", "hal", PW).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
}

#[tokio::test]
async fn markup_in_input_is_refused_or_escaped() {
    let s = Server::with(|c| c.registration = Registration::Open);
    let mut b = Browser::new();
    let evil = "<script>alert(1)</script>";
    let r = b
        .submit(
            &s,
            "/register",
            "/register",
            &[("username", evil), ("password", PW)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!r.body.contains("<script>"), "{r:?}");
    assert!(
        r.body.contains("&lt;script&gt;") || r.body.contains("&#60;script&#62;"),
        "{r:?}"
    );
    assert!(s.app.engine().user_by_name(evil).await.unwrap().is_none());

    let attr = "\" autofocus onfocus=\"alert(1)";
    let r = b.login(&s, attr, "whatever pw").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!r.body.contains("\" autofocus"), "{r:?}");
}

// --- operations -------------------------------------------------------------------------

#[tokio::test]
async fn health_readiness_metrics() {
    let s = Server::new();
    s.add_user("alice", "user").await;
    let r = s.get("/healthz").await;
    assert_eq!(
        (r.status, r.json()),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let r = s.get("/readyz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "ready");

    let mut b = Browser::new();
    b.login(&s, "alice", PW).await;
    b.login(&s, "alice", "wrong password").await;
    s.get("/protected").await;
    let r = s.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    for name in [
        "countersign_logins_total{outcome=\"success\",via=\"form\"}",
        "countersign_logins_total{outcome=\"invalid\",via=\"form\"}",
        "countersign_auth_rejections_total{reason=\"missing_token\"}",
        "countersign_hash_queue_depth",
        "countersign_http_request_duration_seconds_bucket",
        "route=\"/protected\"",
    ] {
        assert!(r.body.contains(name), "{name} missing from\n{}", r.body);
    }
    assert!(!r.body.contains(PW));
}

#[tokio::test]
async fn request_metrics_keep_their_label_set_bounded() {
    let s = Server::new();
    // An invented method and raw paths must not become label values.
    let invented = Method::from_bytes(b"PURGE").unwrap();
    for path in ["/healthz", "/nope-1", "/nope-2"] {
        let r = s
            .send(
                Request::builder()
                    .method(invented.clone())
                    .uri(path)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert!(r.status.is_client_error(), "{r:?}");
    }
    for _ in 0..3 {
        s.get("/healthz").await;
    }
    let body = s.get("/metrics").await.body;
    let lines: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("countersign_http_requests_total{"))
        .collect();
    assert!(!body.contains("PURGE") && !body.contains("nope"), "{body}");
    assert!(
        lines.iter().any(|l| l.contains("method=\"other\"")
            && l.contains("route=\"/healthz\"")
            && l.contains("status=\"405\"")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("method=\"other\"")
            && l.contains("route=\"unmatched\"")
            && l.contains("status=\"404\"")),
        "{lines:#?}"
    );
    // The counter counts (the recorder is shared by the binary's tests: at least ours).
    let ok = lines
        .iter()
        .find(|l| {
            l.contains("method=\"GET\"")
                && l.contains("route=\"/healthz\"")
                && l.contains("status=\"200\"")
        })
        .unwrap_or_else(|| panic!("{lines:#?}"));
    let count: f64 = ok.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 3.0, "{ok}");
}

#[tokio::test]
async fn readyz_is_503_when_the_store_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let stores = Stores::open(&StorageConfig {
        data_dir: dir.path().to_owned(),
        database_url: None,
        ..StorageConfig::default()
    })
    .await
    .unwrap();
    let s = Server::build(&test_config(), stores.users(), stores.sessions());
    assert_eq!(s.get("/readyz").await.status, StatusCode::OK);
    stores.close().await;
    let r = s.get("/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{r:?}");
    assert_eq!(r.json()["status"], "unavailable");
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let s = Server::new();
    let r = s.get("/nope").await;
    assert_eq!((r.status, r.error()), (StatusCode::NOT_FOUND, "not_found"));
    // Not a CSRF refusal either: an unknown route changes nothing, whatever the method.
    let r = s
        .send(
            Request::post("/nope")
                .header("sec-fetch-site", "cross-site")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!((r.status, r.error()), (StatusCode::NOT_FOUND, "not_found"));
    assert_no_store(&r);
    assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()));
    // A client's request id is not echoed into our logs or answers.
    let r = s
        .send(
            Request::get("/healthz")
                .header("x-request-id", "forged-by-client")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_ne!(r.header("x-request-id"), Some("forged-by-client"));
}

#[tokio::test]
async fn openapi_documents_every_route_and_every_documented_route_exists() {
    let s = Server::with(|c| c.registration = Registration::Open);
    let r = s.get("/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for route in [
        "/",
        "/login",
        "/logout",
        "/register",
        "/account/sessions",
        "/protected",
        "/api/token",
        "/api/token/refresh",
        "/api/token/revoke",
        "/api/me",
        "/api/sessions",
        "/api/sessions/{id}",
        "/api/sessions/revoke-all",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(route), "{route} is not documented");
    }
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let uri = path.replace("{id}", "x");
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(uri)
                .body(Body::empty())
                .unwrap();
            let r = s.send(request).await;
            let routed = !(r.status == StatusCode::NOT_FOUND && r.body.contains("No such route"))
                && r.status != StatusCode::METHOD_NOT_ALLOWED;
            assert!(
                routed,
                "{method} {path} is documented but not routed: {r:?}"
            );
            assert!(!r.status.is_server_error(), "{method} {path}: {r:?}");
        }
    }
}

#[tokio::test]
async fn oversized_form_is_413() {
    let s = Server::new();
    let mut b = Browser::new();
    let big = "a".repeat(200 * 1024);
    let r = b
        .submit(
            &s,
            "/login",
            "/login",
            &[("username", &big), ("password", "x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.status);
}

// --- SQLite ------------------------------------------------------------------------------

#[tokio::test]
async fn the_whole_flow_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let stores = Stores::open(&StorageConfig {
        data_dir: dir.path().to_owned(),
        database_url: None,
        ..StorageConfig::default()
    })
    .await
    .unwrap();
    let s = Server::build(&test_config(), stores.users(), stores.sessions());
    s.add_user("alice", "user").await;
    let mut b = Browser::new();
    assert_eq!(b.login(&s, "alice", PW).await.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get(&s, "/protected").await.status, StatusCode::OK);
    let pair = s.tokens("alice").await;
    let r = s
        .post_json(
            "/api/token/refresh",
            &json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        b.get(&s, "/api/sessions").await.json()["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    s.clock.advance(31 * 60);
    assert_eq!(
        b.get(&s, "/protected").await.status,
        StatusCode::UNAUTHORIZED
    );
    let mut b = Browser::new();
    b.login(&s, "alice", PW).await;
    let stolen = b.clone();
    b.submit(&s, "/", "/logout", &[]).await;
    let mut replay = stolen;
    assert_eq!(
        replay.get(&s, "/protected").await.status,
        StatusCode::UNAUTHORIZED
    );
    stores.close().await;
}
