//! A password login, shared by the form (`POST /login`) and the API (`POST /api/token`):
//! the engine's answer, counted in `countersign_logins_total{outcome, via}` and logged.
//!
//! A failed attempt is logged without its username: people type passwords into the
//! username field, and the log must never hold one.
//!
//! A password that matches for a user with a second factor is not yet a login:
//! [`challenge`] asks the engine for the challenge the second step answers.

use countersign::auth::{LoginError, MfaChallenge};
use countersign::mfa::Amr;
use countersign::password::Password;
use countersign::store::StoreError;
use countersign::user::User;

use super::state::App;

/// How the credentials arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The login form.
    Form,
    /// `POST /api/token`.
    Api,
}

impl Via {
    fn label(self) -> &'static str {
        match self {
            Self::Form => "form",
            Self::Api => "api",
        }
    }
}

/// What a login attempt came to.
#[derive(Debug)]
pub enum Outcome {
    /// The password matched.
    Success(Box<User>),
    /// Unknown user or wrong password (deliberately indistinguishable).
    Invalid,
    /// Too many failures; retry after this many seconds.
    Throttled(i64),
    /// The hashing pool is full.
    Busy,
    /// A store failed.
    Failed(StoreError),
}

/// Check `username` and `password` from `address`.
pub async fn attempt(
    app: &App,
    username: &str,
    password: Password,
    address: &str,
    via: Via,
) -> Outcome {
    let outcome = match app.engine().login(username, password, address).await {
        Ok(user) => Outcome::Success(Box::new(user)),
        Err(LoginError::Invalid) => Outcome::Invalid,
        Err(LoginError::Throttled { retry_after }) => Outcome::Throttled(retry_after.max(1)),
        Err(LoginError::Busy) => Outcome::Busy,
        Err(LoginError::Store(e)) => Outcome::Failed(e),
        // A kind added to the engine later: refuse, as for bad credentials.
        Err(_) => Outcome::Invalid,
    };
    let label = match &outcome {
        Outcome::Success(user) => {
            tracing::info!(user = %user.username, via = via.label(), "login succeeded");
            "success"
        }
        Outcome::Invalid => {
            tracing::info!(
                via = via.label(),
                "login failed: invalid username or password"
            );
            "invalid"
        }
        Outcome::Throttled(secs) => {
            tracing::warn!(via = via.label(), retry_after = secs, "login throttled");
            "throttled"
        }
        Outcome::Busy => {
            tracing::warn!(via = via.label(), "login refused: the hashing pool is full");
            "busy"
        }
        Outcome::Failed(e) => {
            tracing::error!(via = via.label(), error = %e, "login failed: store error");
            "error"
        }
    };
    metrics::counter!("countersign_logins_total", "outcome" => label, "via" => via.label())
        .increment(1);
    outcome
}

/// After a matching password: the second-factor challenge when `user` has a second
/// factor (counted in `countersign_mfa_challenges_total{via}` and logged), `None` when
/// the password is the whole login.
///
/// # Errors
/// When the store fails.
pub async fn challenge(
    app: &App,
    user: &User,
    via: Via,
) -> Result<Option<MfaChallenge>, StoreError> {
    let challenge = app.engine().mfa_challenge(user, Amr::PWD).await?;
    if let Some(c) = &challenge {
        tracing::info!(
            user = %user.username,
            via = via.label(),
            methods = ?c.methods.names(),
            "second factor required"
        );
        metrics::counter!("countersign_mfa_challenges_total", "via" => via.label()).increment(1);
    }
    Ok(challenge)
}

/// Count and log the outcome of a second step (`countersign_mfa_total{outcome, via}`):
/// the code is never logged.
pub fn second_step(via: Via, username: Option<&str>, outcome: &'static str) {
    match (outcome, username) {
        ("success", Some(user)) => {
            tracing::info!(user, via = via.label(), "second factor accepted");
        }
        ("throttled" | "error", _) => {
            tracing::warn!(via = via.label(), outcome, "second factor refused");
        }
        _ => tracing::info!(via = via.label(), outcome, "second factor refused"),
    }
    metrics::counter!("countersign_mfa_total", "outcome" => outcome, "via" => via.label())
        .increment(1);
}
