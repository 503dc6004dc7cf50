//! `countersign session list | revoke | revoke-all`.

use std::process::ExitCode;

use anyhow::bail;
use countersign::session::SessionKey;

use super::admin::{Admin, Hashing};
use super::negative;
use crate::Context;
use crate::cli::{SessionRevokeArgs, UserNameArgs};
use crate::display::{format_utc, write_table};

/// `session list NAME`: the user's live sessions, newest first.
///
/// # Errors
/// A storage error.
pub fn list(args: &UserNameArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let admin = Admin::open(&args.storage, ctx, Hashing::None)?;
    let Some(user) = admin.user(&args.name)? else {
        admin.close();
        return negative(ctx, format_args!("no such user: {}", args.name));
    };
    let sessions = admin.runtime.block_on(admin.auth.list_sessions(user.id));
    admin.close();
    let mut rows = vec![
        [
            "ID",
            "CREATED",
            "LAST SEEN",
            "EXPIRES",
            "ADDRESS",
            "USER AGENT",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    rows.extend(sessions?.into_iter().map(|s| {
        vec![
            s.key.to_string(),
            format_utc(s.created_at),
            format_utc(s.last_seen),
            format_utc(s.expires_at()),
            if s.ip.is_empty() {
                "-".to_owned()
            } else {
                s.ip.clone()
            },
            if s.user_agent.is_empty() {
                "-".to_owned()
            } else {
                s.user_agent.clone()
            },
        ]
    }));
    write_table(ctx.stdout, &rows)?;
    Ok(ExitCode::SUCCESS)
}

/// `session revoke ID`: end one session.
///
/// # Errors
/// An id that is not a session id, or a storage error.
pub fn revoke(args: &SessionRevokeArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let Some(key) = SessionKey::parse(args.id.trim()) else {
        bail!(
            "{:?} is not a session id (43 characters, as `countersign session list NAME` shows)",
            args.id
        );
    };
    let admin = Admin::open(&args.storage, ctx, Hashing::None)?;
    let ended = admin.runtime.block_on(admin.auth.end_session(&key));
    admin.close();
    if ended? {
        writeln!(ctx.stdout, "ended session {key}")?;
        Ok(ExitCode::SUCCESS)
    } else {
        negative(ctx, format_args!("no such session: {key}"))
    }
}

/// `session revoke-all NAME`: end every session, refresh token and access token of a
/// user.
///
/// # Errors
/// A storage error.
pub fn revoke_all(args: &UserNameArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let admin = Admin::open(&args.storage, ctx, Hashing::None)?;
    let Some(user) = admin.user(&args.name)? else {
        admin.close();
        return negative(ctx, format_args!("no such user: {}", args.name));
    };
    let ended = admin
        .runtime
        .block_on(admin.auth.logout_everywhere(user.id));
    admin.close();
    let n = ended?;
    writeln!(
        ctx.stdout,
        "ended {n} session{} of {}; their refresh and access tokens are revoked",
        if n == 1 { "" } else { "s" },
        user.username
    )?;
    Ok(ExitCode::SUCCESS)
}
