//! `countersign serve`.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::Context;
use crate::cli::ServeArgs;
use crate::server::{self, telemetry};
use crate::settings::ServeConfig;

/// Resolve the settings, install logging and metrics, and run the server until SIGTERM.
///
/// Logs go to stderr (`--log-format`; the level from `COUNTERSIGN_LOG`, default `info`).
///
/// # Errors
/// A settings or key error (status 2: the message names the fix), or a failure to start.
pub fn run(args: &ServeArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let config = ServeConfig::resolve(args, ctx.env)?;
    let filter = ctx
        .env
        .var_os("COUNTERSIGN_LOG")
        .and_then(|v| v.into_string().ok())
        .filter(|v| !v.is_empty());
    // Held to the end: dropping it writes the log lines still buffered.
    let _log_writer = telemetry::init_logging(config.log_format, filter.as_deref())?;
    let metrics = telemetry::init_metrics()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("countersign")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(server::run(config, ctx.env, Some(metrics)))?;
    Ok(ExitCode::SUCCESS)
}
