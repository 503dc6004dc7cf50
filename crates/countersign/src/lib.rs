//! countersign: the authentication engine. Keys, tokens, sessions, passwords and the
//! stores behind them, for any web layer; `countersign-axum` puts it on axum.
//!
//! The seeds' JWT + session app, from `SECRET_KEY` to a protected route: a login form for
//! browsers, a token endpoint for scripts, `/protected` for both.
//! [`Auth::builder`](auth::Auth::builder) makes the engine from the key with sound
//! defaults (argon2id with OWASP's parameters, an in-process store; see the builder for
//! the rest). The program is `examples/quickstart` in the repository, whose tests run it;
//! start it with `SECRET_KEY=… DEMO_PASSWORD=… cargo run -p quickstart`
//! (`countersign keygen` prints a key). It is compiled here, not run, only because it
//! serves until it is stopped.
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
//! The modules:
//! - [`keys`]: secret keys that refuse to be weak, the key ring with rotation, purpose
//!   subkeys.
//! - [`jwt`]: strict HS256 JWT issue and verify, interoperable with PyJWT; EdDSA and ES256
//!   with [`signing`] keys, published as a JWK Set.
//! - [`clock`]: time as a parameter.
//! - [`user`], [`password`]: accounts, argon2id on a bounded pool.
//! - [`session`], [`refresh`]: server-side sessions and refresh-token families.
//! - [`auth`]: the service a web layer calls (login, sessions, tokens, revocation).
//! - [`flask`]: importing a Flask app's users and reading its session cookie.
//! - [`setup`]: the one-time link that creates the first administrator.
//! - [`store`]: the storage traits; [`memory`] implements them in process; [`redact`]: store
//!   URLs without their secrets. `testing` (feature of that name): a store wrapper that
//!   fails operations on demand, for tests. [`sweep`]: removing what has expired, one trait
//!   and one background loop for every store.
//! - [`attempts`]: login throttling's rules, which every store applies in one atomic step
//!   per attempt; [`invalidation`]: revocations pushed to every instance's cache.
//!
//! No HTTP and no database driver live here: the web and storage crates depend on this
//! one, never the reverse (the example above builds with them as dev-dependencies only).
#![warn(missing_docs)]

pub mod attempts;
pub mod auth;
mod b64;
pub mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod flask;
pub mod hash_costs;
pub mod invalidation;
pub mod jwt;
pub mod keys;
pub mod memory;
pub mod mfa;
pub mod password;
mod password_hash;
pub mod random;
pub mod redact;
pub mod refresh;
pub mod session;
pub mod setup;
pub mod signing;
pub mod store;
pub mod sweep;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod user;
