//! `countersign migrate`: create or upgrade the database schema, then exit.

use std::process::ExitCode;

use super::admin::{Admin, Hashing};
use crate::Context;
use crate::cli::StorageArgs;

/// Open the database (which migrates it) and report.
///
/// # Errors
/// A settings error, or a database that cannot be opened or migrated.
pub fn run(args: &StorageArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let admin = Admin::open(args, ctx, Hashing::None)?;
    let shown = admin.stores.describe().to_owned();
    admin.close();
    writeln!(ctx.stdout, "the database {shown} is up to date")?;
    Ok(ExitCode::SUCCESS)
}
