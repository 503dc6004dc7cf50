//! The `countersign` binary: wires the process (wall clock, environment, standard streams)
//! into [`countersign_server::run`]. Everything else lives in the library.

use std::process::ExitCode;

use countersign::clock::SystemClock;
use countersign_server::Context;
use countersign_server::config::ProcessEnv;

/// mimalloc rather than the system allocator: a request makes dozens of small, short-lived
/// allocations (headers, claims, the response), often freed on another worker thread than
/// the one that made them; glibc's malloc spent a sixth of the server's CPU time on them
/// (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let mut ctx = Context {
        clock: &SystemClock,
        env: &ProcessEnv,
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
    };
    match countersign_server::run(std::env::args_os(), &mut ctx) {
        Ok(code) => code,
        Err(err) => countersign_server::report_error(&err, &mut std::io::stderr()),
    }
}
