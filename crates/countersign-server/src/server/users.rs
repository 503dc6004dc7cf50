//! The admin API for accounts: `POST /api/users/{username}/disable` and `…/enable`.
//!
//! Disabling refuses the account's logins and refreshes and ends every session and token
//! it holds, on every instance sharing the stores (the engine publishes the revocation:
//! `docs/operations.md`). Admins only (403 `insufficient_scope` for others); an admin
//! cannot disable their own account (409), so a site is never left without one by a
//! slip. `countersign user disable NAME` does the same from the command line.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use countersign::auth::AccountError;
use countersign_axum::{Admin, RequireRole};
use serde_json::{Value, json};

use super::error::ApiError;
use super::state::App;

/// `POST /api/users/{username}/disable`.
///
/// # Errors
/// 404 for an unknown user, 409 for the caller's own account, a store failure (503).
pub async fn disable_user(
    State(app): State<App>,
    RequireRole(admin): RequireRole<Admin>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(&app, &admin, name, true).await
}

/// `POST /api/users/{username}/enable`.
///
/// # Errors
/// 404 for an unknown user, a store failure (503).
pub async fn enable_user(
    State(app): State<App>,
    RequireRole(admin): RequireRole<Admin>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(&app, &admin, name, false).await
}

async fn set_disabled(
    app: &App,
    admin: &countersign::auth::Principal,
    name: Result<Path<String>, PathRejection>,
    disabled: bool,
) -> Result<Json<Value>, ApiError> {
    let no_such = || ApiError::not_found("No such user.");
    let Path(name) = name.map_err(|_| no_such())?;
    let user = app
        .engine()
        .user_by_name(&name)
        .await?
        .ok_or_else(no_such)?;
    if disabled && admin.user_id == Some(user.id) {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            error: "conflict",
            message: "You cannot disable your own account.".into(),
            retry_after: None,
        });
    }
    let done = if disabled {
        app.engine().disable_user(user.id).await
    } else {
        app.engine().enable_user(user.id).await
    };
    match done {
        Ok(()) => {}
        Err(AccountError::NoSuchUser) => return Err(no_such()),
        Err(AccountError::Store(e)) => return Err(e.into()),
        Err(e) => {
            tracing::error!(error = %e, "changing an account failed");
            return Err(ApiError::store(&countersign::store::backend(e)));
        }
    }
    tracing::info!(
        admin = %admin.username,
        user = %user.username,
        disabled,
        "account {}",
        if disabled { "disabled" } else { "enabled" }
    );
    Ok(Json(json!({
        "username": user.username.as_str(),
        "disabled": disabled,
    })))
}
