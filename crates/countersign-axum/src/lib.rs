//! countersign for axum: the authenticated user of a request (by bearer token or session
//! cookie), role guards, CSRF protection, and rejections that answer as the HTTP contract
//! says (`docs/http.md` in the repository).
//!
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
//! # Examples
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
mod rejection;
mod sign;

pub use crate::cookie::{
    BadCookieName, CookieConfig, DEFAULT_COOKIE_NAME, MAX_COOKIE_NAME, read_cookie,
};
pub use crate::csrf::{
    CSRF_FIELD, CSRF_HEADER, CsrfFuture, CsrfGuard, CsrfLayer, FORM_LIMIT, RejectionPage,
    issue_pre_session_csrf, pre_session_csrf,
};
pub use crate::extract::{
    Admin, AuthState, Authenticated, MaybeAuthenticated, RequireRole, RoleHolder, RoleName,
    csrf_token_for,
};
pub use crate::forwarded::{BadProxy, ClientAddr, Origin, TrustedProxies, UserAgent};
pub use crate::rejection::{AuthRejection, wants_html};
pub use crate::sign::{SignedIn, sign_in, sign_out};
pub use countersign::auth::{Method, Principal};
