//! `countersign token issue | verify | decode`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::bail;
use countersign::jwt::{self, Issuance, MAX_NUMERIC_DATE, Subject, Validation};
use serde_json::{Map, Value};

use super::negative;
use crate::Context;
use crate::cli::{TokenDecodeArgs, TokenIssueArgs, TokenSource, TokenVerifyArgs};
use crate::config::{KeyConfig, KeyRole};

/// The most read from standard input for a token (the verifier's own limit is far lower).
pub const MAX_STDIN_TOKEN_BYTES: usize = 1024 * 1024;

/// What `token decode` writes to stderr before the unverified contents.
pub const UNVERIFIED_BANNER: &str = "\
!!! UNVERIFIED: neither the signature nor any claim (exp, nbf, iss, aud) was checked.
!!! Anyone can make a token that decodes like this; do not trust its contents.
!!! To check it: countersign token verify
";

/// Issue a token signed with the current key and print it.
///
/// # Errors
/// A key configuration error, an expiry past year 9999, or a claim given twice.
pub fn issue(args: TokenIssueArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let ring = KeyConfig::load(ctx.env, args.keys.secret_key_file.as_deref())?.ring()?;
    let now = ctx.clock.now();
    if now
        .secs()
        .checked_add(args.ttl.0)
        .is_none_or(|exp| exp > MAX_NUMERIC_DATE)
    {
        bail!("--ttl is too long: the token would expire after the year 9999");
    }
    let mut extra = Map::new();
    for claim in args.claims {
        if extra.contains_key(&claim.name) {
            bail!("claim {:?} is given twice", claim.name);
        }
        extra.insert(claim.name, claim.value);
    }
    let issuance = Issuance {
        ttl_secs: args.ttl.0,
        issuer: args.iss,
        audience: args.aud,
    };
    let subject = Subject {
        sub: args.sub,
        username: Some(args.username),
        role: Some(args.role),
        extra,
    };
    let issued = jwt::issue(&ring, &issuance, subject, now)?;
    writeln!(ctx.stdout, "{}", issued.token)?;
    Ok(ExitCode::SUCCESS)
}

/// Verify a token: status 0 with the claims as pretty JSON on stdout and the key that
/// verified on stderr; status 1 with the reason on stderr.
///
/// # Errors
/// A key configuration error, or a failure reading stdin or writing the output.
pub fn verify(args: &TokenVerifyArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let ring = KeyConfig::load(ctx.env, args.keys.secret_key_file.as_deref())?.ring()?;
    let token = match read_token(&args.token, ctx)? {
        Ok(token) => token,
        Err(reason) => return negative(ctx, format_args!("invalid token: {reason}")),
    };
    let validation = Validation {
        leeway_secs: args.leeway.0,
        issuer: args.iss.clone(),
        audience: args.aud.clone(),
        ..Validation::default()
    };
    let verified = match jwt::verify(&ring, &validation, &token, ctx.clock.now()) {
        Ok(verified) => verified,
        Err(reason) => return negative(ctx, format_args!("invalid token: {reason}")),
    };
    serde_json::to_writer_pretty(&mut *ctx.stdout, &verified.claims)?;
    writeln!(ctx.stdout)?;
    let role = match verified.key_index {
        0 => KeyRole::Current,
        n => KeyRole::Fallback(n),
    };
    let kid = ring
        .kids()
        .nth(verified.key_index)
        .map_or("?", |kid| kid.as_str());
    writeln!(ctx.stderr, "verified with the {role} key (kid {kid})")?;
    Ok(ExitCode::SUCCESS)
}

/// Print a token's header and claims as JSON, unverified, under [`UNVERIFIED_BANNER`];
/// status 1 when it does not decode.
///
/// # Errors
/// A failure reading stdin or writing the output.
pub fn decode(args: &TokenDecodeArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    let token = match read_token(&args.token, ctx)? {
        Ok(token) => token,
        Err(reason) => return negative(ctx, format_args!("cannot decode token: {reason}")),
    };
    let (header, claims) = match jwt::dangerous::decode_unverified(&token) {
        Ok(parts) => parts,
        Err(reason) => return negative(ctx, format_args!("cannot decode token: {reason}")),
    };
    ctx.stderr.write_all(UNVERIFIED_BANNER.as_bytes())?;
    ctx.stderr.flush()?;
    let mut out = Map::new();
    out.insert("header".to_owned(), Value::Object(header));
    out.insert("claims".to_owned(), Value::Object(claims));
    serde_json::to_writer_pretty(&mut *ctx.stdout, &out)?;
    writeln!(ctx.stdout)?;
    Ok(ExitCode::SUCCESS)
}

/// The token from the argument or, for `-`, from stdin (surrounding whitespace trimmed).
/// The inner `Err` is why there is no token to look at: a negative answer, not an error.
fn read_token(
    source: &TokenSource,
    ctx: &mut Context<'_>,
) -> anyhow::Result<Result<String, String>> {
    if let TokenSource::Arg(token) = source {
        return Ok(Ok(token.clone()));
    }
    let mut bytes = Vec::new();
    let limit = MAX_STDIN_TOKEN_BYTES as u64 + 1;
    (&mut *ctx.stdin).take(limit).read_to_end(&mut bytes)?;
    if bytes.len() > MAX_STDIN_TOKEN_BYTES {
        return Ok(Err(format!(
            "standard input holds over {MAX_STDIN_TOKEN_BYTES} bytes"
        )));
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return Ok(Err("standard input is not UTF-8 text".to_owned()));
    };
    let token = text.trim();
    if token.is_empty() {
        return Ok(Err("no token on standard input".to_owned()));
    }
    Ok(Ok(token.to_owned()))
}
