//! `buggy-race`: the buggy race editor, served on plain HTTP (see `buggy-race --help`).

use std::process::ExitCode;

fn main() -> ExitCode {
    match buggy_race::cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("buggy-race: {e:#}");
            ExitCode::FAILURE
        }
    }
}
