//! The fixture (the app on an in-memory engine with fast argon2, alice, bob and an admin)
//! and a tiny browser: a cookie jar in front of `oneshot`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use buggy_race::buggy::Buggy;
use buggy_race::{Account, AppState, Options, app};
use countersign::auth::AuthConfig;
use countersign::keys::SecretKey;
use countersign::password::{HashParams, Password};
use countersign::user::{Role, User};
use http::{HeaderMap, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

pub const PW: &str = "a long and unusual passphrase";
pub const BOB_PW: &str = "another long passphrase, bob's";
pub const ADMIN_PW: &str = "the admin's own long passphrase";

/// Fast argon2 for tests: the production parameters cost ~19 MiB and tens of ms a hash.
pub const FAST: HashParams = HashParams {
    m_cost_kib: 64,
    t_cost: 1,
    p_cost: 1,
};

/// The session cookie's name under the default (secure) cookie settings.
pub const SESSION: &str = "__Host-countersign";
/// The pre-session CSRF cookie's name under the default settings.
pub const PRE_SESSION: &str = "__Host-countersign-csrf";

pub const HOST: &str = "buggy.example";

pub struct Fx {
    pub state: AppState,
    pub app: Router,
    pub alice: User,
    pub bob: User,
    pub admin: User,
}

pub async fn fixture() -> Fx {
    let (key, _) = SecretKey::generate(32).unwrap();
    let options = Options {
        hash_params: FAST,
        hashing_workers: 1,
        auth: AuthConfig {
            // Read the store on every request, so a logout is seen at once.
            cache_ttl: Duration::ZERO,
            ..AuthConfig::default()
        },
        ..Options::default()
    };
    let state = AppState::in_memory(key, &options).unwrap();
    let mut users = state
        .seed(vec![
            Account::new("alice", Role::user(), Password::new(PW)),
            Account::new("bob", Role::user(), Password::new(BOB_PW)),
            Account::new("admin", Role::admin(), Password::new(ADMIN_PW)),
        ])
        .await
        .unwrap()
        .into_iter();
    let (alice, bob, admin) = (
        users.next().unwrap(),
        users.next().unwrap(),
        users.next().unwrap(),
    );
    Fx {
        app: app(state.clone()),
        state,
        alice,
        bob,
        admin,
    }
}

impl Fx {
    pub fn browser(&self) -> Browser {
        Browser {
            app: self.app.clone(),
            jar: BTreeMap::new(),
        }
    }

    /// A browser logged in through the form.
    pub async fn logged_in(&self, username: &str, password: &str) -> Browser {
        let mut b = self.browser();
        let reply = b.login(username, password).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{reply:?}");
        assert_eq!(reply.location(), Some("/buggy"));
        b
    }

    pub async fn alice(&self) -> Browser {
        self.logged_in("alice", PW).await
    }

    pub async fn bob(&self) -> Browser {
        self.logged_in("bob", BOB_PW).await
    }

    pub async fn admin_browser(&self) -> Browser {
        self.logged_in("admin", ADMIN_PW).await
    }

    /// A fresh access token for a user.
    pub async fn token(&self, user: &User) -> String {
        self.state
            .auth()
            .issue_tokens(user)
            .await
            .unwrap()
            .access_token
    }

    /// One request without cookies.
    pub async fn call(&self, request: Request<Body>) -> Reply {
        call(&self.app, request).await
    }

    /// A user's stored buggy, read from the app's state.
    pub fn buggy_of(&self, user: &User) -> Buggy {
        self.state.buggies().get(user.id)
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

/// `application/x-www-form-urlencoded` text for `fields`.
pub fn encode(fields: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

pub fn form_post(uri: &str) -> http::request::Builder {
    Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
}

/// The default buggy as form fields, with `changes` applied.
pub fn buggy_fields<'a>(changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("qty_wheels", "4"),
        ("tyres", "knobbly"),
        ("qty_tyres", "4"),
        ("power_type", "petrol"),
        ("power_units", "1"),
        ("flag_color", "white"),
        ("flag_pattern", "plain"),
        ("flag_color_secondary", "black"),
        ("armour", "none"),
        ("algo", "steady"),
    ];
    for &(k, v) in changes {
        match fields.iter_mut().find(|(name, _)| *name == k) {
            Some(field) => field.1 = v,
            None => fields.push((k, v)),
        }
    }
    fields
}

/// A cookie jar in front of the router: what a browser keeps between requests.
pub struct Browser {
    app: Router,
    pub jar: BTreeMap<String, String>,
}

impl Browser {
    /// Send a request with the jar's cookies; keep the cookies the response sets.
    pub async fn send(&mut self, mut builder: http::request::Builder, body: Body) -> Reply {
        if !self.jar.is_empty() {
            let cookies = self
                .jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            builder = builder.header(header::COOKIE, cookies);
        }
        let reply = call(&self.app, builder.body(body).unwrap()).await;
        for set in reply.set_cookies() {
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        reply
    }

    pub async fn get(&mut self, uri: &str) -> Reply {
        self.send(Request::builder().uri(uri), Body::empty()).await
    }

    pub async fn post_form(&mut self, uri: &str, fields: &[(&str, &str)]) -> Reply {
        self.send(form_post(uri), Body::from(encode(fields))).await
    }

    /// Log in through the form: fetch it (and its pre-session CSRF pair), post it.
    pub async fn login(&mut self, username: &str, password: &str) -> Reply {
        let page = self.get("/login").await;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        let token = page.csrf();
        self.post_form(
            "/login",
            &[
                ("csrf_token", &token),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// The CSRF token of my session, from my buggy page.
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/buggy").await;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        page.csrf()
    }

    /// Save my buggy through the form: the default buggy with `changes`.
    pub async fn save_buggy(&mut self, changes: &[(&str, &str)]) -> Reply {
        let token = self.csrf().await;
        let mut fields = buggy_fields(changes);
        fields.push(("csrf_token", &token));
        self.post_form("/buggy", &fields).await
    }

    /// The session cookie's value, if I have one.
    pub fn session(&self) -> Option<String> {
        self.jar.get(SESSION).cloned()
    }
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

    pub fn location(&self) -> Option<&str> {
        self.header("location")
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

    /// The value of the form's hidden `csrf_token` field.
    #[track_caller]
    pub fn csrf(&self) -> String {
        let marker = r#"name="csrf_token" value=""#;
        let start = self.body.find(marker).unwrap_or_else(|| {
            panic!("no csrf_token field in {self:?}");
        }) + marker.len();
        let len = self.body[start..].find('"').unwrap();
        self.body[start..start + len].to_owned()
    }

    /// A number input's value, as shown.
    #[track_caller]
    pub fn field(&self, name: &str) -> String {
        let marker = format!(r#"name="{name}" value=""#);
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} field in {self:?}"))
            + marker.len();
        let len = self.body[start..].find('"').unwrap();
        self.body[start..start + len].to_owned()
    }

    /// The option a select shows as chosen.
    #[track_caller]
    pub fn selected(&self, name: &str) -> Option<String> {
        let start = self
            .body
            .find(&format!(r#"<select id="{name}""#))
            .unwrap_or_else(|| panic!("no {name} select in {self:?}"));
        let end = start + self.body[start..].find("</select>").unwrap();
        let select = &self.body[start..end];
        let marker = "\" selected>";
        let at = select.find(marker)?;
        let open = select[..at].rfind("value=\"").unwrap() + "value=\"".len();
        Some(select[open..at].to_owned())
    }

    #[track_caller]
    pub fn assert_redirect(&self, to: &str) {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{self:?}");
        assert_eq!(self.location(), Some(to), "{self:?}");
    }
}

pub fn get(uri: &str) -> http::request::Builder {
    Request::builder().uri(uri)
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

pub const MISSING: &str = r#"{"error":"missing_token","message":"Token is missing!"}"#;
pub const INVALID: &str = r#"{"error":"invalid_token","message":"Invalid token!"}"#;
pub const INVALID_SESSION: &str = r#"{"error":"invalid_session","message":"Unauthorized"}"#;
pub const CSRF_FAILED: &str = r#"{"error":"csrf_failed","message":"The request failed the CSRF check: reload the page and try again."}"#;
