//! One module per subcommand. Each takes its parsed arguments and the [`Context`] and
//! returns the exit status of a completed command, or an error (status 2).

use std::process::ExitCode;

use crate::{Context, EXIT_NEGATIVE};

pub mod access;
pub mod admin;
pub mod import;
pub mod keygen;
pub mod keys;
pub mod migrate;
pub mod rotate;
pub mod serve;
pub mod session;
pub mod token;
pub mod user;

/// A negative answer: `reason` on stderr, status [`EXIT_NEGATIVE`].
fn negative(ctx: &mut Context<'_>, reason: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    writeln!(ctx.stderr, "{reason}")?;
    Ok(ExitCode::from(EXIT_NEGATIVE))
}
