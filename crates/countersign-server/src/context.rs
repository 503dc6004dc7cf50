//! What every command runs with: the [`Context`] (clock, environment, standard streams)
//! and the exit statuses it may end with.

use std::io::{Read, Write};

use countersign::clock::Clock;

use crate::config::Env;

/// Exit status of a negative answer (e.g. `token verify` of a bad token).
pub const EXIT_NEGATIVE: u8 = 1;

/// Exit status of a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

/// Everything a command may touch outside its arguments.
///
/// The binary passes the wall clock, the process environment and the standard streams;
/// tests pass a `ManualClock`, a map and byte buffers. Nothing reads a global.
pub struct Context<'a> {
    /// The current time (the binary passes `SystemClock`).
    pub clock: &'a dyn Clock,
    /// Environment variables (the binary passes [`crate::config::ProcessEnv`]).
    pub env: &'a dyn Env,
    /// Standard input (read by `token verify -` and `token decode -`).
    pub stdin: &'a mut dyn Read,
    /// Standard output: the answer (a key, a token, JSON).
    pub stdout: &'a mut dyn Write,
    /// Standard error: reasons, warnings, banners.
    pub stderr: &'a mut dyn Write,
}
