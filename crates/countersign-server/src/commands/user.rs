//! `countersign user add | passwd | list | remove | set-role | disable | enable | mfa`.
//!
//! Every change goes through the engine, so removing a user, changing a password or a
//! role ends that user's sessions, refresh tokens and access tokens. Works while the server
//! runs (SQLite in WAL mode; a running server sees the change within its cache TTL).
//!
//! Status 1 for a negative answer (no such user, the name is taken), 2 for bad input (an
//! invalid name or role, a password the policy refuses) or a storage error.

use std::process::ExitCode;

use countersign::auth::AccountError;
use countersign::user::Role;

use super::admin::{Admin, Hashing, read_password};
use super::negative;
use crate::Context;
use crate::cli::{StorageArgs, UserAddArgs, UserNameArgs, UserPasswdArgs, UserSetRoleArgs};
use crate::display::{format_utc, write_table};

/// `user add NAME --role R --password-stdin`.
///
/// # Errors
/// An invalid name, role or password, or a storage error.
pub fn add(args: &UserAddArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let role = Role::parse(&args.role)?;
    let password = read_password(args.password_stdin, ctx)?;
    let admin = Admin::open(&args.storage, ctx, Hashing::Passwords)?;
    let created = admin
        .runtime
        .block_on(admin.auth.create_user(&args.name, password, role));
    admin.close();
    match created {
        Ok(user) => {
            writeln!(
                ctx.stdout,
                "created user {} (id {}, role {})",
                user.username, user.id, user.role
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(AccountError::Taken) => {
            negative(ctx, format_args!("user {} already exists", args.name))
        }
        Err(e) => Err(e.into()),
    }
}

/// `user passwd NAME --password-stdin`: ends the user's sessions and tokens.
///
/// # Errors
/// A password the policy refuses, or a storage error.
pub fn passwd(args: &UserPasswdArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let password = read_password(args.password_stdin, ctx)?;
    let admin = Admin::open(&args.storage, ctx, Hashing::Passwords)?;
    let Some(user) = admin.user(&args.name)? else {
        admin.close();
        return negative(ctx, format_args!("no such user: {}", args.name));
    };
    let changed = admin
        .runtime
        .block_on(admin.auth.change_password(user.id, password));
    admin.close();
    match changed {
        Ok(()) => {
            writeln!(
                ctx.stdout,
                "changed the password of {}; their sessions and tokens are ended",
                user.username
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(AccountError::NoSuchUser) => negative(ctx, format_args!("no such user: {}", args.name)),
        Err(e) => Err(e.into()),
    }
}

/// `user list`.
///
/// # Errors
/// A storage error.
pub fn list(args: &StorageArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let admin = Admin::open(args, ctx, Hashing::None)?;
    let users = admin.runtime.block_on(admin.auth.list_users());
    admin.close();
    let mut rows = vec![vec![
        "ID".to_owned(),
        "USERNAME".to_owned(),
        "ROLE".to_owned(),
        "CREATED".to_owned(),
        "STATUS".to_owned(),
    ]];
    rows.extend(users?.into_iter().map(|u| {
        vec![
            u.id.to_string(),
            u.username.to_string(),
            u.role.to_string(),
            format_utc(u.created_at),
            if u.disabled { "disabled" } else { "active" }.to_owned(),
        ]
    }));
    write_table(ctx.stdout, &rows)?;
    Ok(ExitCode::SUCCESS)
}

/// `user remove NAME`: ends the user's sessions and tokens.
///
/// # Errors
/// A storage error.
pub fn remove(args: &UserNameArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let admin = Admin::open(&args.storage, ctx, Hashing::None)?;
    let Some(user) = admin.user(&args.name)? else {
        admin.close();
        return negative(ctx, format_args!("no such user: {}", args.name));
    };
    let removed = admin.runtime.block_on(admin.auth.remove_user(user.id));
    admin.close();
    match removed {
        Ok(()) => {
            writeln!(
                ctx.stdout,
                "removed user {}; their sessions and tokens are ended",
                user.username
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(AccountError::NoSuchUser) => negative(ctx, format_args!("no such user: {}", args.name)),
        Err(e) => Err(e.into()),
    }
}

/// `user set-role NAME ROLE`: ends the user's sessions and tokens (a privilege change
/// needs a new login).
///
/// # Errors
/// An invalid role, or a storage error.
pub fn set_role(args: &UserSetRoleArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let role = Role::parse(&args.role)?;
    let admin = Admin::open(&args.storage, ctx, Hashing::None)?;
    let Some(user) = admin.user(&args.name)? else {
        admin.close();
        return negative(ctx, format_args!("no such user: {}", args.name));
    };
    let changed = admin.runtime.block_on(admin.auth.set_role(user.id, &role));
    admin.close();
    match changed {
        Ok(()) => {
            writeln!(
                ctx.stdout,
                "{} now has role {role}; their sessions and tokens are ended",
                user.username
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(AccountError::NoSuchUser) => negative(ctx, format_args!("no such user: {}", args.name)),
        Err(e) => Err(e.into()),
    }
}

/// `user disable NAME` / `user enable NAME`: disabling ends the user's sessions and tokens
/// on every server sharing the stores, and refuses their logins until enabled.
///
/// # Errors
/// A storage error.
pub fn set_disabled(
    args: &UserNameArgs,
    disabled: bool,
    ctx: &mut Context<'_>,
) -> anyhow::Result<ExitCode> {
    let admin = Admin::open(&args.storage, ctx, Hashing::None)?;
    let Some(user) = admin.user(&args.name)? else {
        admin.close();
        return negative(ctx, format_args!("no such user: {}", args.name));
    };
    let changed = admin.runtime.block_on(async {
        if disabled {
            admin.auth.disable_user(user.id).await
        } else {
            admin.auth.enable_user(user.id).await
        }
    });
    admin.close();
    match changed {
        Ok(()) if disabled => {
            writeln!(
                ctx.stdout,
                "disabled user {}; their sessions and tokens are ended",
                user.username
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(()) => {
            writeln!(ctx.stdout, "enabled user {}", user.username)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(AccountError::NoSuchUser) => negative(ctx, format_args!("no such user: {}", args.name)),
        Err(e) => Err(e.into()),
    }
}

/// `user mfa status NAME`: the user's second factors (kind, name, added, last used) and
/// how many recovery codes are left.
///
/// # Errors
/// A storage error.
pub fn mfa_status(args: &UserNameArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let admin = Admin::open(&args.storage, ctx, Hashing::None)?;
    let Some(user) = admin.user(&args.name)? else {
        admin.close();
        return negative(ctx, format_args!("no such user: {}", args.name));
    };
    let read = admin.runtime.block_on(async {
        let factors = admin.auth.factors(user.id).await?;
        let methods = admin.auth.mfa_methods(user.id).await?;
        Ok::<_, countersign::store::StoreError>((factors, methods))
    });
    admin.close();
    let (factors, methods) = read?;
    let out = &mut *ctx.stdout;
    if factors.is_empty() {
        writeln!(out, "{} has no second factor", user.username)?;
        return Ok(ExitCode::SUCCESS);
    }
    for f in &factors {
        let state = if f.confirmed {
            ""
        } else {
            " (enrolment not finished)"
        };
        let used = f
            .last_used_at
            .map_or_else(|| "never".to_owned(), crate::display::format_utc);
        writeln!(
            out,
            "{}\t{}\tadded {}\tlast used {used}{state}",
            f.kind.as_str(),
            f.name,
            crate::display::format_utc(f.created_at),
        )?;
    }
    writeln!(out, "recovery codes left: {}", methods.recovery_codes_left)?;
    Ok(ExitCode::SUCCESS)
}

/// `user mfa reset NAME`: removes every second factor and recovery code of the user and
/// ends their sessions and tokens, so that whoever holds them must log in again with the
/// password alone and enrol anew. Logged.
///
/// # Errors
/// A storage error.
pub fn mfa_reset(args: &UserNameArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let admin = Admin::open(&args.storage, ctx, Hashing::None)?;
    let Some(user) = admin.user(&args.name)? else {
        admin.close();
        return negative(ctx, format_args!("no such user: {}", args.name));
    };
    let removed = admin.runtime.block_on(admin.auth.reset_mfa(user.id));
    admin.close();
    let removed = removed?;
    tracing::warn!(user = %user.username, factors = removed, "user mfa reset");
    writeln!(
        ctx.stdout,
        "removed {removed} second factor(s) and the recovery codes of {}; their sessions \
         and tokens are ended",
        user.username
    )?;
    Ok(ExitCode::SUCCESS)
}
