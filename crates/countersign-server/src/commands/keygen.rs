//! `countersign keygen`: a new secret key from the OS CSPRNG, or a new signing key.

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use countersign::keys::SecretKey;
use countersign::signing::SigningKey;

use crate::Context;
use crate::cli::{KeygenAlg, KeygenArgs};
use crate::signing::write_new_private;

/// HS256: print `args.bytes` random bytes (at least 32, checked by the parser) as base64url
/// without padding: 43 characters for 32 bytes. EdDSA, ES256: write a new private key to
/// `--out` (PKCS#8 PEM, mode 0600, never over an existing file) and print its kid.
///
/// # Errors
/// When the operating system's random source fails, `--out` is missing, exists or cannot
/// be written, or stdout cannot be written.
pub fn run(args: &KeygenArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    if args.alg == KeygenAlg::Hs256 {
        if args.out.is_some() {
            bail!(
                "--out is for EdDSA and ES256 keys; an HS256 secret is printed: \
                 (umask 077; countersign keygen > FILE)"
            );
        }
        let (_key, text) = SecretKey::generate(args.bytes)
            .context("the operating system's random number generator failed")?;
        // Written as bytes, not through `format!`, so no extra copy of the key is made here.
        ctx.stdout.write_all(text.as_bytes())?;
        ctx.stdout.write_all(b"\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(out) = &args.out else {
        bail!(
            "--alg {} writes a private key to a file: add --out FILE (it is created with mode \
             0600; a private key is never printed)",
            args.alg.algorithm()
        );
    };
    let (key, pem) = SigningKey::generate(args.alg.algorithm())
        .context("the operating system's random number generator failed")?;
    write_new_private(out, pem.as_bytes())?;
    writeln!(ctx.stdout, "{}", key.kid())?;
    writeln!(
        ctx.stderr,
        "wrote a new {} key to {} (mode 0600); use it with SIGNING_KEY_FILE={}",
        key.alg(),
        out.display(),
        out.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
