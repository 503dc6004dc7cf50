//! `countersign migrate`: create or upgrade the database schema, then exit.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::Context;
use crate::cli::StorageArgs;
use crate::settings::StorageConfig;
use crate::storage::Stores;

/// Open the database (which migrates it) and report. The session store is not touched:
/// Redis has no schema, and a database session store is migrated with the database.
///
/// # Errors
/// A settings error, or a database that cannot be opened or migrated.
pub fn run(args: &StorageArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let config = StorageConfig::resolve(args, ctx.env)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let shown = runtime.block_on(async {
        let stores = Stores::migrate_only(&config).await?;
        let shown = stores.describe().to_owned();
        stores.close().await;
        anyhow::Ok(shown)
    })?;
    writeln!(ctx.stdout, "the database {shown} is up to date")?;
    Ok(ExitCode::SUCCESS)
}
