//! The `countersign` command and the server it runs.
//!
//! The binary is thin: `main` builds a [`Context`] from the process (wall clock,
//! environment, standard streams) and calls [`run`]. Everything else lives here so that
//! tests drive the same code in-process, with a [`ManualClock`](countersign::clock::ManualClock)
//! and buffers in place of the terminal.
//!
//! Exit statuses (the public contract, `docs/cli.md`): `0` success, [`EXIT_NEGATIVE`] (`1`)
//! a negative answer such as a token that does not verify, [`EXIT_USAGE`] (`2`) a usage or
//! configuration error. [`run`] returns `Ok` with the status of a completed command and
//! `Err` for an error, which [`report_error`] turns into status 2.
#![warn(missing_docs)]

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

pub mod access;
pub mod cli;
pub mod commands;
pub mod config;
mod context;
pub mod display;
pub mod redirect;
pub mod server;
pub mod settings;
pub mod signing;
pub mod storage;

pub use context::{Context, EXIT_NEGATIVE, EXIT_USAGE};

use crate::cli::{
    Cli, Command, KeysCommand, SessionCommand, TokenCommand, UserCommand, UserMfaCommand,
};

/// Parse `args` (the program name first, as in `std::env::args_os`) and run the command.
///
/// Help, version and clap's usage errors are written to `ctx` and returned as `Ok` with
/// clap's status (0, or 2 for a usage error).
///
/// # Errors
/// A configuration or usage error found after parsing (a weak or missing key, both
/// `SECRET_KEY` and `SECRET_KEY_FILE` set, …) or a failure writing the output. Pass it to
/// [`report_error`], which prints it and gives status 2. No error message contains key
/// material.
pub fn run<I, T>(args: I, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match <Cli as clap::Parser>::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => return render_clap_error(&err, ctx),
    };
    let code = match cli.command {
        Command::Keygen(args) => commands::keygen::run(&args, ctx)?,
        Command::Keys(KeysCommand::Check(args)) => commands::keys::check(&args, ctx)?,
        Command::Keys(KeysCommand::Init(args)) => commands::rotate::init(&args, ctx)?,
        Command::Keys(KeysCommand::Rotate(args)) => commands::rotate::rotate(&args, ctx)?,
        Command::Keys(KeysCommand::Prune(args)) => commands::rotate::prune(&args, ctx)?,
        Command::Token(TokenCommand::Issue(args)) => commands::token::issue(args, ctx)?,
        Command::Token(TokenCommand::Verify(args)) => commands::token::verify(&args, ctx)?,
        Command::Token(TokenCommand::Decode(args)) => commands::token::decode(&args, ctx)?,
        Command::Serve(args) => commands::serve::run(&args, ctx)?,
        Command::User(UserCommand::Add(args)) => commands::user::add(&args, ctx)?,
        Command::User(UserCommand::Passwd(args)) => commands::user::passwd(&args, ctx)?,
        Command::User(UserCommand::List(args)) => commands::user::list(&args, ctx)?,
        Command::User(UserCommand::Remove(args)) => commands::user::remove(&args, ctx)?,
        Command::User(UserCommand::SetRole(args)) => commands::user::set_role(&args, ctx)?,
        Command::User(UserCommand::Disable(args)) => {
            commands::user::set_disabled(&args, true, ctx)?
        }
        Command::User(UserCommand::Enable(args)) => {
            commands::user::set_disabled(&args, false, ctx)?
        }
        Command::User(UserCommand::Import(args)) => commands::import::import(&args, ctx)?,
        Command::User(UserCommand::Mfa(UserMfaCommand::Status(args))) => {
            commands::user::mfa_status(&args, ctx)?
        }
        Command::User(UserCommand::Mfa(UserMfaCommand::Reset(args))) => {
            commands::user::mfa_reset(&args, ctx)?
        }
        Command::Session(SessionCommand::List(args)) => commands::session::list(&args, ctx)?,
        Command::Session(SessionCommand::Revoke(args)) => commands::session::revoke(&args, ctx)?,
        Command::Session(SessionCommand::RevokeAll(args)) => {
            commands::session::revoke_all(&args, ctx)?
        }
        Command::Migrate(args) => commands::migrate::run(&args, ctx)?,
        Command::Access(cli::AccessCommand::Check(args)) => commands::access::check(&args, ctx)?,
    };
    ctx.stdout.flush()?;
    ctx.stderr.flush()?;
    Ok(code)
}

/// Write clap's message (help, version or usage error) where clap would, and give its
/// status. Rendered without colour, since `ctx` may not be a terminal.
fn render_clap_error(err: &clap::Error, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let text = err.render().to_string();
    let stream: &mut dyn Write = if err.use_stderr() {
        ctx.stderr
    } else {
        ctx.stdout
    };
    stream.write_all(text.as_bytes())?;
    stream.flush()?;
    let code = u8::try_from(err.exit_code()).unwrap_or(EXIT_USAGE);
    Ok(ExitCode::from(code))
}

/// Print an error returned by [`run`] to `stderr` as `error: …` (with its causes) and give
/// [`EXIT_USAGE`].
///
/// A closed output pipe (`countersign keygen | head -c0`) is not an error worth a
/// message: it gives status 0 silently, as ripgrep does.
pub fn report_error(err: &anyhow::Error, stderr: &mut dyn Write) -> ExitCode {
    let broken_pipe = err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    // Our messages often quote their cause already (`cannot read …: No such file`); add
    // each cause only when it says something new.
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
    }
    // If stderr itself is gone there is nowhere left to say so; the status still tells.
    let _ = writeln!(stderr, "error: {message}");
    let _ = stderr.flush();
    ExitCode::from(EXIT_USAGE)
}
