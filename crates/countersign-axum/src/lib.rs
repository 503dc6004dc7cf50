//! countersign for axum: the authenticated user of a request (by bearer token or session
//! cookie), role guards, CSRF protection, ready login and logout handlers, and rejections
//! that answer as the HTTP contract says (`docs/http.md` in the repository).
//!
//! The seeds' JWT + session app, from `SECRET_KEY` to a protected route: a login form for
//! browsers, a token endpoint for scripts, `/protected` for both. It is
//! `examples/quickstart` in the repository, whose tests run it; start it with
//! `SECRET_KEY=… DEMO_PASSWORD=… cargo run -p quickstart` (`countersign keygen` prints a
//! key). It is compiled here, not run, only because it serves until it is stopped.
//!
//! ```no_run
//! //! The seeds' JWT + session app: a login form, a token endpoint and a protected route.
//! use std::{net::SocketAddr, sync::Arc};
//!
//! use axum::{Json, Router, extract::State, routing::get, routing::post};
//! use countersign::{auth::Auth, keys::KeyRing, keys::SecretKey, password::Password, user::Role};
//! use countersign_axum::handlers::{self, Credentials, LoginRejection};
//! use countersign_axum::{AuthState, Authenticated, ClientAddr, CookieConfig, CsrfLayer};
//! use serde_json::{Value, json};
//!
//! /// `GET /protected`, with a bearer token or the session cookie.
//! async fn protected(Authenticated(user): Authenticated) -> Json<Value> {
//!     let name = user.username;
//!     Json(json!({ "message": format!("Hello {name}, you have access to this protected route.") }))
//! }
//!
//! /// `POST /api/token`: `{"username", "password"}` for an access token and a refresh token.
//! async fn token(
//!     State(state): State<Arc<AuthState>>,
//!     ClientAddr(address): ClientAddr,
//!     Json(credentials): Json<Credentials>,
//! ) -> Result<Json<Value>, LoginRejection> {
//!     let Credentials { username, password } = credentials;
//!     let user = state.auth.login(&username, password, &address).await?;
//!     let tokens = state.auth.issue_tokens(&user).await?;
//!     Ok(Json(json!({
//!         "access_token": tokens.access_token,
//!         "token_type": "Bearer",
//!         "expires_in": tokens.expires_in,
//!         "refresh_token": *tokens.refresh_token,
//!     })))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let key = std::env::var("SECRET_KEY").map_err(|_| "set SECRET_KEY to a long random key")?;
//!     let auth = Auth::builder(KeyRing::single(SecretKey::parse(&key)?)).build()?;
//!     let password = std::env::var("DEMO_PASSWORD").map_err(|_| "set DEMO_PASSWORD")?;
//!     auth.create_user("john_doe", Password::new(password), Role::user())
//!         .await?;
//!
//!     let state = Arc::new(AuthState::new(auth, CookieConfig::secure()));
//!     let app = Router::new()
//!         .route("/login", get(handlers::login_form).post(handlers::login))
//!         .route("/logout", post(handlers::logout))
//!         .route("/protected", get(protected))
//!         .route("/api/token", post(token))
//!         .layer(CsrfLayer::new(Arc::clone(&state)).skip_routes(["/api/token"]))
//!         .with_state(state);
//!
//!     let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
//!     let listener = tokio::net::TcpListener::bind(addr).await?;
//!     println!("listening on http://{}", listener.local_addr()?);
//!     let app = app.into_make_service_with_connect_info::<SocketAddr>();
//!     Ok(axum::serve(listener, app).await?)
//! }
//! ```
//!
//! The parts:
//! - [`Authenticated`]: the user, or a 401 ([`AuthRejection`]).
//! - [`MaybeAuthenticated`]: the user if any, for pages anyone may see.
//! - [`RequireRole`]: the user, who must have a role ([`Admin`], or your own
//!   [`RoleName`]), else 403.
//! - [`CsrfLayer`]: refuses cross-site state changes; [`csrf_token_for`] and
//!   [`issue_pre_session_csrf`] give forms their tokens.
//! - [`sign_in`], [`sign_out`]: a fresh session id at every sign-in, the record deleted at
//!   sign-out.
//! - [`handlers`]: a ready login form, login and logout, for forms and JSON.
//! - [`CookieConfig`]: the session and CSRF cookies' names and `Set-Cookie` values.
//! - [`ClientAddr`], [`UserAgent`]: who sent a request, through the proxies you trust
//!   ([`TrustedProxies`]).
//!
//! The extractors work with any router state `S` for which `Arc<AuthState>: FromRef<S>`.
//!
//! # Roles
//! ```
//! use std::sync::Arc;
//! use axum::{Json, Router, routing::get};
//! use countersign_axum::{Admin, AuthState, Authenticated, CsrfLayer, RequireRole};
//! use serde_json::{Value, json};
//!
//! async fn protected(Authenticated(user): Authenticated) -> Json<Value> {
//!     Json(json!({
//!         "message": format!("Hello {}, you have access to this protected route.", user.username)
//!     }))
//! }
//!
//! async fn admin(RequireRole(user): RequireRole<Admin>) -> String {
//!     format!("Hello admin {}", user.username)
//! }
//!
//! fn router(state: Arc<AuthState>) -> Router {
//!     Router::new()
//!         .route("/protected", get(protected))
//!         .route("/admin", get(admin))
//!         .layer(CsrfLayer::new(Arc::clone(&state)))
//!         .with_state(state)
//! }
//! ```
//!
//! # Metrics
//! Through the [`metrics`] facade (the application installs a recorder):
//! `countersign_auth_rejections_total{reason}` (`missing_token`, `expired_token`,
//! `invalid_token`, `invalid_session`, `insufficient_scope`, `csrf_failed`,
//! `payload_too_large`, `unavailable`) and `countersign_auth_success_total{method}`
//! (`bearer`, `session`). Why a token failed is logged at `debug` with the engine's stable
//! code, never with the token, and never sent to the client.
#![warn(missing_docs)]

mod cookie;
mod csrf;
mod extract;
mod forwarded;
pub mod handlers;
mod proxies;
mod rejection;
mod sign;
mod step_up;

pub use crate::cookie::{
    BadCookieDomain, BadCookieName, CookieConfig, DEFAULT_COOKIE_NAME, MAX_COOKIE_NAME, read_cookie,
};
pub use crate::csrf::{
    CSRF_FIELD, CSRF_HEADER, CsrfFuture, CsrfGuard, CsrfLayer, FORM_LIMIT, RejectionPage,
    issue_pre_session_csrf, pre_session_csrf,
};
pub use crate::extract::{
    Admin, AuthState, Authenticated, MaybeAuthenticated, RequireRole, RoleHolder, RoleName,
    authenticate, csrf_token_for,
};
pub use crate::forwarded::{ClientAddr, Origin, UserAgent};
pub use crate::proxies::{BadProxy, TrustedProxies};
pub use crate::rejection::{AuthRejection, wants_html};
pub use crate::sign::{SignedIn, sign_in, sign_out};
pub use crate::step_up::{RequireFreshAuth, RequireMfa};
pub use countersign::auth::{Method, Principal};
