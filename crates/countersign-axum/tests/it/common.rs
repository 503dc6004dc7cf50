//! The fixture: an `Auth` over a memory store that can be switched off and counts session
//! loads (`FaultyStore`), a manual clock, two users, and a test router.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Form, FromRef};
use axum::routing::{get, post};
use axum::{Json, Router};
use countersign::auth::{Auth, AuthConfig};
use countersign::clock::{ManualClock, UnixTime};
use countersign::keys::{KeyRing, SecretKey};
use countersign::memory::MemoryStore;
use countersign::password::{HashParams, Hasher, HashingPool, Password};
use countersign::session::SessionRecord;
use countersign::testing::FaultyStore;
use countersign::user::{Role, User};
use countersign_axum::{
    Admin, AuthState, Authenticated, CookieConfig, CsrfLayer, MaybeAuthenticated, RequireFreshAuth,
    RequireMfa, RequireRole, RoleName,
};
use http::{HeaderMap, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const START: UnixTime = UnixTime(1_700_000_000);
pub const HOST: &str = "auth.example";

pub struct Fx {
    pub auth: Arc<Auth>,
    pub state: Arc<AuthState>,
    pub clock: ManualClock,
    pub store: Arc<FaultyStore<MemoryStore>>,
    pub alice: User,
    pub root: User,
    pub app: Router,
}

pub async fn fixture() -> Fx {
    fixture_with(CookieConfig::secure()).await
}

pub async fn fixture_with(cookies: CookieConfig) -> Fx {
    let ring = KeyRing::single(SecretKey::generate(32).unwrap().0);
    let config = AuthConfig {
        cache_ttl: Duration::ZERO,
        ..AuthConfig::default()
    };
    let hasher = Hasher::new(HashParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    })
    .unwrap();
    let pool = HashingPool::new(hasher, 1, 16).unwrap();
    let clock = ManualClock::new(START);
    // Only the session store fails when a test switches it off; users live apart.
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let auth = Arc::new(Auth::new(
        ring,
        config,
        Arc::new(MemoryStore::new()),
        Arc::clone(&store) as _,
        pool,
        Arc::new(clock.clone()),
    ));
    let password = || Password::new("a long and unusual passphrase");
    let alice = auth
        .create_user("alice", password(), Role::user())
        .await
        .unwrap();
    let root = auth
        .create_user("root", password(), Role::admin())
        .await
        .unwrap();
    let state = Arc::new(
        AuthState::new(Arc::clone(&auth), cookies).with_allowed_origins(["https://app.example"]),
    );
    Fx {
        app: router(Arc::clone(&state)),
        auth,
        state,
        clock,
        store,
        alice,
        root,
    }
}

pub struct Editor;
impl RoleName for Editor {
    const NAME: &'static str = "editor";
}

async fn protected(Authenticated(user): Authenticated) -> Json<Value> {
    Json(json!({
        "message": format!("Hello {}, you have access to this protected route.", user.username)
    }))
}

async fn page(MaybeAuthenticated(user): MaybeAuthenticated) -> String {
    match user {
        Some(user) => format!("Logged in as {}", user.username),
        None => "You are not logged in".to_owned(),
    }
}

async fn admin(RequireRole(user): RequireRole<Admin>) -> String {
    format!("admin {}", user.username)
}

async fn editor(RequireRole(user): RequireRole<Editor>) -> String {
    format!("editor {}", user.username)
}

async fn mfa_only(RequireMfa(user): RequireMfa) -> String {
    format!("mfa {}", user.username)
}

async fn fresh_only(RequireFreshAuth(user): RequireFreshAuth<300>) -> String {
    format!("fresh {}", user.username)
}

async fn submit(
    Authenticated(user): Authenticated,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    Json(json!({ "user": user.username, "form": form }))
}

async fn act(Authenticated(user): Authenticated) -> String {
    format!("done by {}", user.username)
}

async fn login(
    MaybeAuthenticated(user): MaybeAuthenticated,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    Json(json!({ "user": user.map(|u| u.username), "form": form }))
}

pub fn router(state: Arc<AuthState>) -> Router {
    Router::new()
        .route("/protected", get(protected))
        .route("/page", get(page))
        .route("/admin", get(admin))
        .route("/editor", get(editor))
        .route("/mfa", get(mfa_only))
        .route("/fresh", get(fresh_only))
        .route("/submit", post(submit))
        .route("/act", post(act).delete(act))
        .route("/login", post(login))
        .layer(CsrfLayer::new(Arc::clone(&state)))
        .with_state(state)
}

/// An application state holding the auth state, as a real app would.
#[derive(Clone)]
pub struct AppState {
    pub auth: Arc<AuthState>,
    pub greeting: &'static str,
}

impl FromRef<AppState> for Arc<AuthState> {
    fn from_ref(s: &AppState) -> Self {
        Arc::clone(&s.auth)
    }
}

pub fn app_state_router(state: AppState) -> Router {
    async fn hello(
        axum::extract::State(s): axum::extract::State<AppState>,
        Authenticated(user): Authenticated,
    ) -> String {
        format!("{} {}", s.greeting, user.username)
    }
    async fn admin(RequireRole(user): RequireRole<Admin>) -> String {
        user.username
    }
    async fn maybe(MaybeAuthenticated(user): MaybeAuthenticated) -> String {
        user.map_or_else(|| "nobody".to_owned(), |u| u.username)
    }
    Router::new()
        .route("/hello", get(hello))
        .route("/admin", get(admin))
        .route("/maybe", get(maybe))
        .with_state(state)
}

impl Fx {
    /// A fresh access token for a user.
    pub async fn token(&self, user: &User) -> String {
        self.auth.issue_tokens(user).await.unwrap().access_token
    }

    /// A fresh session for a user: the cookie value and the session's CSRF token.
    pub async fn session(&self, user: &User) -> (String, SessionRecord) {
        let (cookie, record) = self
            .auth
            .start_session(user, "test", "127.0.0.1")
            .await
            .unwrap();
        (cookie.to_string(), record)
    }

    /// `name=value` for the session cookie.
    pub fn session_cookie(&self, value: &str) -> String {
        format!("{}={value}", self.state.cookies.session_name())
    }

    pub async fn call(&self, request: Request<Body>) -> Reply {
        call(&self.app, request).await
    }
}

pub async fn call(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

pub fn get_req(uri: &str) -> http::request::Builder {
    Request::builder().method("GET").uri(uri)
}

pub fn post_req(uri: &str) -> http::request::Builder {
    Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::HOST, HOST)
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// The reply is exactly this rejection: status, `WWW-Authenticate` (or none),
    /// `Cache-Control: no-store`, JSON content type, and the body byte for byte.
    #[track_caller]
    pub fn assert_rejection(&self, status: u16, www_authenticate: Option<&str>, body: &str) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(
            self.header("www-authenticate"),
            www_authenticate,
            "{self:?}"
        );
        assert_eq!(self.header("cache-control"), Some("no-store"), "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.body, body);
    }

    #[track_caller]
    pub fn assert_ok(&self) {
        assert_eq!(self.status, StatusCode::OK, "{self:?}");
    }
}

pub const MISSING: &str = r#"{"error":"missing_token","message":"Token is missing!"}"#;
pub const EXPIRED: &str = r#"{"error":"invalid_token","message":"Token has expired!"}"#;
pub const INVALID: &str = r#"{"error":"invalid_token","message":"Invalid token!"}"#;
pub const INVALID_SESSION: &str = r#"{"error":"invalid_session","message":"Unauthorized"}"#;
pub const WWW_REALM: &str = r#"Bearer realm="countersign""#;
pub const WWW_INVALID: &str = r#"Bearer realm="countersign", error="invalid_token""#;
pub const WWW_EXPIRED: &str = r#"Bearer realm="countersign", error="invalid_token", error_description="The access token expired""#;
pub const WWW_SCOPE: &str = r#"Bearer realm="countersign", error="insufficient_scope""#;
pub const CSRF_FAILED: &str = r#"{"error":"csrf_failed","message":"The request failed the CSRF check: reload the page and try again."}"#;
