//! `countersign token issue | verify | decode`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use countersign::jwt::{
    self, Algorithm, Issuance, MAX_NUMERIC_DATE, PublicKeys, Signer, Subject, Validation,
};
use countersign::keys::KeyRing;
use serde_json::{Map, Value};

use super::negative;
use crate::Context;
use crate::cli::{KeyArgs, TokenDecodeArgs, TokenIssueArgs, TokenSource, TokenVerifyArgs};
use crate::config::{KeyConfig, KeyOrigin, KeyRole};
use crate::signing::{Loaded, SigningConfig};

/// The largest JWK Set `token verify --jwks` reads, in bytes.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// How long fetching a JWK Set may take.
pub const JWKS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The configured keys: the signing keys, and the HS256 ring — required when no signing
/// key is set, optional (`None` when `SECRET_KEY` is unset) when one is.
fn configured_keys(keys: &KeyArgs, ctx: &Context<'_>) -> anyhow::Result<(Loaded, Option<KeyRing>)> {
    let signing = SigningConfig::resolve(&keys.signing, ctx.env)?.load()?;
    let config = KeyConfig::load(ctx.env, keys.secret_key_file.as_deref())?;
    let ring = if signing.signer.is_some() && config.current.origin == KeyOrigin::Unset {
        None
    } else {
        Some(config.ring()?)
    };
    Ok((signing, ring))
}

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
    let (signing, ring) = configured_keys(&args.keys, ctx)?;
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
    let issued = match (signing.signer, ring) {
        (Some(key), _) => jwt::issue_signed(&Signer::new(key), &issuance, subject, now)?,
        (None, Some(ring)) => jwt::issue(&ring, &issuance, subject, now)?,
        (None, None) => unreachable!("without a signing key the ring is required"),
    };
    writeln!(ctx.stdout, "{}", issued.token)?;
    Ok(ExitCode::SUCCESS)
}

/// Verify a token: status 0 with the claims as pretty JSON on stdout and the key that
/// verified on stderr; status 1 with the reason on stderr. With `--jwks`, against that JWK
/// Set only (EdDSA and ES256); else against the configured keys (the HS256 ring while
/// accepted, and the signing keys).
///
/// # Errors
/// A key configuration error, a JWK Set that cannot be read or used, or a failure reading
/// stdin or writing the output.
pub fn verify(args: &TokenVerifyArgs, ctx: &mut Context<'_>) -> anyhow::Result<ExitCode> {
    if let Some(source) = &args.jwks {
        return verify_with_jwks(args, source, ctx);
    }
    let (signing, ring) = configured_keys(&args.keys, ctx)?;
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
    let accept_hs256 = signing.accept_hs256 && ring.is_some();
    let public = PublicKeys::new(signing.public)?;
    let now = ctx.clock.now();
    let result = match &ring {
        Some(ring) if public.is_empty() => jwt::verify(ring, &validation, &token, now),
        ring => jwt::verify_any(
            ring.as_ref().filter(|_| accept_hs256),
            &public,
            &validation,
            &token,
            now,
        ),
    };
    let verified = match result {
        Ok(verified) => verified,
        Err(reason) => return negative(ctx, format_args!("invalid token: {reason}")),
    };
    serde_json::to_writer_pretty(&mut *ctx.stdout, &verified.claims)?;
    writeln!(ctx.stdout)?;
    let ring = match (verified.algorithm, ring) {
        (Algorithm::HS256, Some(ring)) => ring,
        _ => {
            let kid = public.get(verified.key_index).map_or("?", |k| k.kid());
            writeln!(
                ctx.stderr,
                "verified with the signing key {kid} ({})",
                verified.algorithm
            )?;
            return Ok(ExitCode::SUCCESS);
        }
    };
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

/// `token verify --jwks URL|FILE`.
fn verify_with_jwks(
    args: &TokenVerifyArgs,
    source: &str,
    ctx: &mut Context<'_>,
) -> anyhow::Result<ExitCode> {
    let document = read_jwks(source)?;
    let public = PublicKeys::from_jwks(&document)
        .with_context(|| format!("the JWK Set {source} cannot be used"))?;
    if public.is_empty() {
        bail!("the JWK Set {source} holds no EdDSA or ES256 signing key");
    }
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
    let verified = match jwt::verify_any(None, &public, &validation, &token, ctx.clock.now()) {
        Ok(verified) => verified,
        Err(reason) => return negative(ctx, format_args!("invalid token: {reason}")),
    };
    serde_json::to_writer_pretty(&mut *ctx.stdout, &verified.claims)?;
    writeln!(ctx.stdout)?;
    let kid = public.get(verified.key_index).map_or("?", |k| k.kid());
    writeln!(
        ctx.stderr,
        "verified with the key {kid} ({}) of the JWK Set",
        verified.algorithm
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The JWK Set document at `source`: fetched when it is an `http://` or `https://` URL
/// (status 200, at most [`MAX_JWKS_BYTES`], within [`JWKS_TIMEOUT`]), else read from the
/// file of that name.
fn read_jwks(source: &str) -> anyhow::Result<Vec<u8>> {
    let is_url = ["http://", "https://"]
        .iter()
        .any(|p| source.len() > p.len() && source[..p.len()].eq_ignore_ascii_case(p));
    if !is_url {
        let bytes = std::fs::read(source)
            .with_context(|| format!("cannot read the JWK Set file {source}"))?;
        if bytes.len() > MAX_JWKS_BYTES {
            bail!("the JWK Set file {source} is over {MAX_JWKS_BYTES} bytes");
        }
        return Ok(bytes);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(JWKS_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .context("cannot build the HTTP client")?;
        let mut response = client
            .get(source)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .with_context(|| format!("cannot fetch the JWK Set {source}"))?;
        if response.status() != reqwest::StatusCode::OK {
            bail!(
                "fetching the JWK Set {source} answered {}",
                response.status()
            );
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("cannot fetch the JWK Set {source}"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                bail!("the JWK Set {source} is over {MAX_JWKS_BYTES} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    })
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
