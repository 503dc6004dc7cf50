//! `countersign user import FILE [--skip-invalid]`: users with the password hashes a Flask
//! app stored (Werkzeug scrypt or pbkdf2, bcrypt, argon2), from CSV with a header or JSON
//! lines (`-` reads standard input). The format, the checks and the cost caps:
//! `countersign::flask::import` and `docs/flask.md`.
//!
//! One transaction: without `--skip-invalid`, one refused record imports nothing (status
//! 1, every refused record named by its line on standard error); with it, the refused
//! records are reported the same way and the rest are committed (status 0). No password
//! is hashed here: each imported hash becomes argon2id at its user's first login.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context as _;
use countersign::flask::import::ImportOptions;

use super::admin::{Admin, Hashing};
use super::negative;
use crate::Context;
use crate::cli::UserImportArgs;

/// `user import FILE [--skip-invalid]`.
///
/// # Errors
/// A file that cannot be read, a CSV header without `username` or `password_hash`, or a
/// storage error.
pub fn import(args: &UserImportArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let admin = Admin::open(&args.storage, ctx, Hashing::None)?;
    let options = ImportOptions {
        skip_invalid: args.skip_invalid,
    };
    let outcome = if args.file.as_os_str() == "-" {
        let stdin: &mut dyn Read = &mut *ctx.stdin;
        admin
            .runtime
            .block_on(admin.auth.import_users(stdin, options))
    } else {
        let file = std::fs::File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        admin
            .runtime
            .block_on(admin.auth.import_users(file, options))
    };
    admin.close();
    let report = outcome?;
    for refusal in &report.refusals {
        writeln!(ctx.stderr, "{}: {refusal}", args.file.display())?;
    }
    if report.refused > report.refusals.len() as u64 {
        writeln!(
            ctx.stderr,
            "… and {} more refused records",
            report.refused - report.refusals.len() as u64
        )?;
    }
    if !report.committed {
        return negative(
            ctx,
            format_args!(
                "nothing imported: {} record(s) refused (fix them, or run again with \
                 --skip-invalid to import the others)",
                report.refused
            ),
        );
    }
    let formats: Vec<String> = report
        .formats
        .iter()
        .map(|(format, n)| format!("{format}: {n}"))
        .collect();
    writeln!(
        ctx.stdout,
        "imported {} user(s){}{}; each password becomes argon2id at its first login",
        report.imported,
        if formats.is_empty() {
            String::new()
        } else {
            format!(" ({})", formats.join(", "))
        },
        if report.refused > 0 {
            format!(", skipped {} refused record(s)", report.refused)
        } else {
            String::new()
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
