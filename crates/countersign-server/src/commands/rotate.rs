//! `countersign keys init | rotate | prune`: a key directory's signing keys
//! ([`crate::signing`], `docs/keys.md` "Staged rotation").
//!
//! Each command changes the directory's state file and prints what it did; the servers
//! that read the directory see the change on their next SIGHUP (or restart).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::Context;
use crate::cli::{KeyDirArgs, KeygenAlg, KeysInitArgs, KeysPruneArgs, KeysRotateArgs};
use crate::display::rfc3339;
use crate::signing::{KeyDir, SIGNING_KEY_DIR};

/// The directory from `--signing-key-dir`, else `SIGNING_KEY_DIR`.
fn key_dir(args: &KeyDirArgs, ctx: &Context<'_>) -> anyhow::Result<KeyDir> {
    let dir = args.signing_key_dir.clone().or_else(|| {
        ctx.env
            .var_os(SIGNING_KEY_DIR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    match dir {
        Some(dir) => Ok(KeyDir::new(&dir)),
        None => bail!("no key directory: pass --signing-key-dir DIR or set {SIGNING_KEY_DIR}"),
    }
}

const RELOAD: &str = "reload every server that reads this directory (SIGHUP) to apply it";

/// `keys init`: create the directory with its first key.
///
/// # Errors
/// An existing directory state, HS256 as the algorithm, I/O errors.
pub fn init(args: &KeysInitArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    if args.alg == KeygenAlg::Hs256 {
        bail!("a key directory holds EdDSA or ES256 keys: --alg EdDSA or --alg ES256");
    }
    let dir = key_dir(&args.dir, ctx)?;
    let key = dir.init(args.alg.algorithm(), args.jwks_max_age.0.unsigned_abs())?;
    writeln!(ctx.stdout, "{}", key.kid())?;
    writeln!(
        ctx.stderr,
        "created the key directory with a current {} key; serve with SIGNING_KEY_DIR (or \
         --signing-key-dir) pointing at it",
        key.alg()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `keys rotate --stage | --promote`.
///
/// # Errors
/// A step out of order (nothing staged, already staged, promoting before the JWK Set
/// max-age without `--force`), I/O errors.
pub fn rotate(args: &KeysRotateArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let dir = key_dir(&args.dir, ctx)?;
    let now = ctx.clock.now();
    if args.stage {
        let alg = match args.alg {
            Some(KeygenAlg::Hs256) => bail!("a key directory holds EdDSA or ES256 keys"),
            Some(alg) => Some(alg.algorithm()),
            None => None,
        };
        let key = dir.stage(alg, now)?;
        let max_age = dir.load()?.jwks_max_age;
        writeln!(ctx.stdout, "{}", key.kid())?;
        writeln!(
            ctx.stderr,
            "staged a next {} key: it is published and signs nothing; {RELOAD}, then promote \
             it with `countersign keys rotate --promote` after {max_age}s (the JWK Set \
             max-age)",
            key.alg()
        )?;
    } else {
        let promoted = dir.promote(now, args.keep.0, args.force)?;
        writeln!(ctx.stdout, "{}", promoted.current)?;
        writeln!(
            ctx.stderr,
            "promoted {} to current; {} is retired, published until {} (prune it then with \
             `countersign keys prune`); {RELOAD}",
            promoted.current,
            promoted.retired,
            rfc3339(promoted.keep_until)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `keys prune`.
///
/// # Errors
/// `--kid` naming no retired key, or one still needed without `--force`; I/O errors.
pub fn prune(args: &KeysPruneArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let dir = key_dir(&args.dir, ctx)?;
    let dropped = dir.prune(ctx.clock.now(), args.kid.as_deref(), args.force)?;
    for kid in &dropped {
        writeln!(ctx.stdout, "{kid}")?;
    }
    if dropped.is_empty() {
        writeln!(
            ctx.stderr,
            "no retired key is past its time: nothing pruned"
        )?;
    } else {
        writeln!(
            ctx.stderr,
            "pruned {} retired key(s): tokens they signed no longer verify once {RELOAD}",
            dropped.len()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
