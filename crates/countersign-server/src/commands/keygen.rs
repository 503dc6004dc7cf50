//! `countersign keygen`: a new secret key from the OS CSPRNG.

use std::process::ExitCode;

use anyhow::Context as _;
use countersign::keys::SecretKey;

use crate::Context;
use crate::cli::KeygenArgs;

/// Print `args.bytes` random bytes (at least 32, checked by the parser) as base64url
/// without padding: 43 characters for 32 bytes.
///
/// # Errors
/// When the operating system's random source fails, or stdout cannot be written.
pub fn run(args: &KeygenArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let (_key, text) = SecretKey::generate(args.bytes)
        .context("the operating system's random number generator failed")?;
    // Written as bytes, not through `format!`, so no extra copy of the key is made here.
    ctx.stdout.write_all(text.as_bytes())?;
    ctx.stdout.write_all(b"\n")?;
    Ok(ExitCode::SUCCESS)
}
