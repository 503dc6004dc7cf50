//! buggy-race: the buggy race project's editor as a multi-user web app, built only on
//! `countersign-axum` and the countersign engine's public API, to show that the library
//! embeds in any axum application.
//!
//! Each user has one buggy. `GET /buggy` shows *my* buggy and `POST /buggy` changes it:
//! whose buggy a request touches comes from the authenticated principal, never from the
//! request, so there is no id, name or field a user could send to reach someone else's
//! ("The other user can't see your buggy; you can't see theirs"). `GET /api/buggy` is the
//! same buggy as JSON, by session cookie or bearer token. `GET /admin/buggies` lists every
//! user's buggy and requires the `admin` role.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | 303 to `/buggy` |
//! | `GET /login`, `POST /login` | the login form (pre-session CSRF); 303 to `/buggy` with the session cookie, 401 and the form with "Invalid username or password", 429 when throttled |
//! | `POST /logout` | ends the session, clears the cookie, 303 to `/login` |
//! | `GET /buggy`, `POST /buggy` | my buggy: the page, or the form (+ CSRF) → 303 to `/buggy?saved`, 422 and the form with its errors; 303 to `/login` when not logged in |
//! | `GET /api/buggy` | `{"username", "buggy": {…}}` by bearer token or session; the library's 401s otherwise |
//! | `GET /admin/buggies` | every user's buggy; 403 without the `admin` role |
//!
//! Storage is in process: the engine's
//! [`MemoryStore`](countersign::memory::MemoryStore) for users and sessions, and
//! [`Buggies`] behind a mutex. Everything is lost when the process stops.
//!
//! # Examples
//! ```no_run
//! use buggy_race::{Account, AppState, Options, app};
//! use countersign::keys::SecretKey;
//! use countersign::password::Password;
//! use countersign::user::Role;
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let (key, _text) = SecretKey::generate(32)?;
//! let state = AppState::in_memory(key, &Options::default())?;
//! state
//!     .seed(vec![Account::new("alice", Role::user(), Password::new("a long passphrase"))])
//!     .await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, app(state)).await?;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod buggy;
pub mod cli;
mod pages;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::FromRef;
use countersign::auth::{AccountError, Auth, AuthConfig, BuildError};
use countersign::keys::{KeyRing, SecretKey};
use countersign::password::{HashParams, OWASP_PARAMS, Password};
use countersign::user::{Role, User, UserId};
use countersign_axum::{AuthState, CookieConfig};

use crate::buggy::Buggy;

pub use crate::pages::app;

/// Every user's buggy, by user id, in process.
///
/// A user who never saved one has the [`Buggy::default`]. The lock is held for a map
/// operation only, never across an await.
#[derive(Debug, Default)]
pub struct Buggies {
    inner: Mutex<HashMap<UserId, Buggy>>,
}

impl Buggies {
    fn lock(&self) -> MutexGuard<'_, HashMap<UserId, Buggy>> {
        // Every operation is a single map call that cannot leave the map half-updated, so
        // a poisoned lock still guards a consistent map.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The user's buggy (the default one if they never saved theirs).
    pub fn get(&self, user: UserId) -> Buggy {
        self.lock().get(&user).cloned().unwrap_or_default()
    }

    /// Replace the user's buggy.
    pub fn set(&self, user: UserId, buggy: Buggy) {
        self.lock().insert(user, buggy);
    }
}

/// How [`AppState::in_memory`] builds the engine.
#[derive(Clone, Debug)]
pub struct Options {
    /// argon2id parameters (default: OWASP's; tests use tiny ones to run fast).
    pub hash_params: HashParams,
    /// Cookie flags. The default is `Secure` with the `__Host-` prefix, which a browser
    /// only accepts over HTTPS; the binary turns it off for plain-HTTP development.
    pub cookies: CookieConfig,
    /// The engine's configuration (token and session lifetimes, throttling).
    pub auth: AuthConfig,
    /// Password hashes computed at once.
    pub hashing_workers: usize,
    /// Password hashes allowed to wait; past that, logins answer 503.
    pub hashing_queue: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            hash_params: OWASP_PARAMS,
            cookies: CookieConfig::default(),
            auth: AuthConfig::default(),
            hashing_workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            hashing_queue: 64,
        }
    }
}

/// An account to create at startup.
pub struct Account {
    /// The username.
    pub username: String,
    /// The role (`user` or `admin`).
    pub role: Role,
    /// The password.
    pub password: Password,
}

impl Account {
    /// An account with this name, role and password.
    pub fn new(username: impl Into<String>, role: Role, password: Password) -> Self {
        Self {
            username: username.into(),
            role,
            password,
        }
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// The application's state: countersign's [`AuthState`] (which the extractors find through
/// [`FromRef`]) and the buggies.
#[derive(Clone, Debug)]
pub struct AppState {
    auth: Arc<AuthState>,
    buggies: Arc<Buggies>,
}

impl FromRef<AppState> for Arc<AuthState> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.auth)
    }
}

impl AppState {
    /// State over an existing countersign setup, with no buggies yet.
    pub fn new(auth: Arc<AuthState>) -> Self {
        Self {
            auth,
            buggies: Arc::default(),
        }
    }

    /// State with everything in process: an engine over one
    /// [`MemoryStore`](countersign::memory::MemoryStore) (users and sessions) signing with
    /// `key`, on the system clock.
    ///
    /// # Errors
    /// When argon2 refuses `options.hash_params`.
    pub fn in_memory(key: SecretKey, options: &Options) -> Result<Self, BuildError> {
        let auth = Auth::builder(KeyRing::single(key))
            .config(options.auth.clone())
            .hash_params(options.hash_params)
            .hashing_workers(options.hashing_workers)
            .hashing_queue(options.hashing_queue)
            .build()?;
        let cookies = options.cookies.clone();
        Ok(Self::new(Arc::new(AuthState::new(auth, cookies))))
    }

    /// The authentication engine (to create users or issue tokens).
    pub fn auth(&self) -> &Arc<Auth> {
        &self.auth.auth
    }

    /// countersign-axum's state: the engine and the cookie settings.
    pub fn auth_state(&self) -> &Arc<AuthState> {
        &self.auth
    }

    /// The buggies.
    pub fn buggies(&self) -> &Buggies {
        &self.buggies
    }

    /// Create accounts, in order.
    ///
    /// # Errors
    /// The first account that could not be created: a bad or taken name, a password the
    /// policy refuses, or a store failure.
    pub async fn seed(&self, accounts: Vec<Account>) -> Result<Vec<User>, AccountError> {
        let mut users = Vec::with_capacity(accounts.len());
        for account in accounts {
            users.push(
                self.auth()
                    .create_user(&account.username, account.password, account.role)
                    .await?,
            );
        }
        Ok(users)
    }
}
