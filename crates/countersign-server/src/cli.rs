//! The command line as clap sees it.
//!
//! Each value is checked for its shape here (a duration, a `name=value` claim, a key size),
//! so a malformed argument is a clap usage error with status 2. Everything that needs the
//! environment (the keys) is resolved later, in [`crate::config`].
//!
//! Subcommands that need the keys flatten [`KeyArgs`]; those that touch storage flatten
//! [`StorageArgs`]. Settings that may also come from `COUNTERSIGN_*` variables or
//! `countersign.toml` are defined once, in [`crate::settings`]'s table, which makes their
//! flags; here they are kept as given ([`SettingFlags`]), and the settings layer them
//! (flags, then the environment, then the file, then defaults).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use countersign::jwt::{Algorithm, MAX_NUMERIC_DATE, REGISTERED};
use countersign::keys::MIN_KEY_BYTES;
use serde_json::Value;

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "countersign",
    version,
    propagate_version = true,
    about = "countersign: an authentication server and its admin tools",
    after_help = "Keys come from the environment, never from arguments: SECRET_KEY (or \
                  SECRET_KEY_FILE, a path) and SECRET_KEY_FALLBACKS (comma-separated older \
                  keys, verify only; or SECRET_KEY_FALLBACKS_FILE, a path); asymmetric \
                  signing keys from SIGNING_KEY_FILE or SIGNING_KEY_DIR. The files are \
                  read again on SIGHUP.\nExit status: 0 success, 1 a negative answer (e.g. an \
                  invalid token), 2 a usage or configuration error."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a new secret key: random bytes from the OS CSPRNG, base64url without padding;
    /// or, with `--alg EdDSA|ES256 --out FILE`, write a signing key and print its kid.
    Keygen(KeygenArgs),
    /// Inspect the configured keys; rotate and prune the signing keys of a key directory.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Issue, verify and decode JWTs with the configured keys.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run the server: web login, JSON API, sessions and tokens.
    Serve(Box<ServeArgs>),
    /// Manage accounts (works while the server runs).
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect and end sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Create or upgrade the database schema, then exit.
    Migrate(StorageArgs),
    /// Test the forward-auth access rules of the settings file.
    #[command(subcommand)]
    Access(AccessCommand),
}

/// `countersign access …`
#[derive(Debug, Subcommand)]
pub enum AccessCommand {
    /// Which `[[access]]` rule (or the default policy) decides a request, and the verdict:
    /// status 0 when it is let through, 1 when it is refused.
    Check(AccessCheckArgs),
}

/// `countersign access check`
#[derive(Debug, Args)]
pub struct AccessCheckArgs {
    /// The original URL, as the proxy would report it (`https://app.example.test/admin`).
    #[arg(long)]
    pub url: String,
    /// The original method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Ask as this user (their role is read from the user store); without it, as
    /// someone not logged in.
    #[arg(long, value_name = "NAME", conflicts_with = "role")]
    pub user: Option<String>,
    /// Ask as a user with this role, without looking anyone up.
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
    /// Ask as if the user had logged in with a second factor (for `policy = "mfa"`).
    #[arg(long)]
    pub mfa: bool,
    /// The default policy, over the settings file's [env: COUNTERSIGN_DEFAULT_POLICY]
    #[arg(long, value_name = "POLICY")]
    pub default_policy: Option<String>,
    /// Where accounts are stored, and the settings file.
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// `countersign user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; the password is read from standard input.
    Add(UserAddArgs),
    /// Set a user's password (read from standard input) and end their sessions and tokens.
    Passwd(UserPasswdArgs),
    /// List the accounts.
    List(StorageArgs),
    /// Remove an account and end its sessions and tokens.
    Remove(UserNameArgs),
    /// Change a user's role and end their sessions and tokens.
    SetRole(UserSetRoleArgs),
    /// Refuse an account's logins and refreshes and end its sessions and tokens, on every
    /// server sharing the stores.
    Disable(UserNameArgs),
    /// Let a disabled account log in again.
    Enable(UserNameArgs),
    /// Import users with the password hashes a Flask app stored (CSV with a header, or
    /// JSON lines: username, password_hash, optional role and id), in one transaction.
    Import(UserImportArgs),
    /// Second factors: `user mfa status NAME`, `user mfa reset NAME`.
    #[command(subcommand)]
    Mfa(UserMfaCommand),
}

/// `countersign user mfa …`
#[derive(Debug, Subcommand)]
pub enum UserMfaCommand {
    /// Show a user's second factors and recovery codes left.
    Status(UserNameArgs),
    /// Remove every second factor and recovery code of a user (a lost phone and lost
    /// codes) and end their sessions and tokens; logged.
    Reset(UserNameArgs),
}

/// `countersign session …`
#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// A user's live sessions, newest first.
    List(UserNameArgs),
    /// End one session, by the id `session list` shows.
    Revoke(SessionRevokeArgs),
    /// End every session, refresh token and access token of a user.
    RevokeAll(UserNameArgs),
}

/// The values of the layered settings' flags, as given on the command line.
///
/// The flags themselves (names, value names, help) are made from the settings' table,
/// [`crate::settings::SETTINGS`], which also reads these values, through the same parsers as
/// the environment and the settings file.
#[derive(Clone, Debug, Default)]
pub struct SettingFlags {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl SettingFlags {
    /// The values given for the setting `name` (none for a switch); `None` when its flag
    /// was not given.
    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.values.get(name).map(Vec::as_slice)
    }

    /// Record that the flag of `name` was given, with `values`.
    pub fn set(&mut self, name: &'static str, values: Vec<String>) {
        self.values.insert(name, values);
    }
}

/// Where accounts and sessions are stored, for every subcommand that touches storage: the
/// flags of the storage settings (`--data-dir`, `--database-url`, `--session-store`, …,
/// `--config`).
#[derive(Clone, Debug, Default)]
pub struct StorageArgs {
    /// Their values.
    pub flags: SettingFlags,
}

/// The flags of `serve`'s own settings (`--addr`, `--registration`, …).
#[derive(Clone, Debug, Default)]
pub struct ServeFlags {
    /// Their values.
    pub flags: SettingFlags,
}

/// `countersign serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the keys come from.
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Where accounts and sessions are stored.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Everything else `serve` is configured with.
    #[command(flatten)]
    pub settings: ServeFlags,
}

/// `countersign user add`
#[derive(Debug, Args)]
pub struct UserAddArgs {
    /// The username: 1 to 64 of letters, digits, `.`, `_`, `-`, `@`.
    pub name: String,
    /// The role (`user`, `admin`, …).
    #[arg(long, default_value = "user")]
    pub role: String,
    /// Read the password from standard input (one line). Required: passwords are never
    /// arguments (they would show in `ps` and shell history).
    #[arg(long)]
    pub password_stdin: bool,
    /// Where accounts are stored.
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// `countersign user import`
#[derive(Debug, Args)]
pub struct UserImportArgs {
    /// The file: CSV with a header (`username`, `password_hash`, optional `role` and `id`;
    /// other columns are ignored) or JSON lines with the same keys; `-` reads standard
    /// input. Accepted hashes: Werkzeug `scrypt:`/`pbkdf2:`, bcrypt, argon2 (docs/flask.md).
    pub file: PathBuf,
    /// Leave out the records that are refused (each is reported with its line) and import
    /// the others; without it, one refused record imports nothing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Where accounts are stored.
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// `countersign user passwd`
#[derive(Debug, Args)]
pub struct UserPasswdArgs {
    /// The username.
    pub name: String,
    /// Read the new password from standard input (one line). Required.
    #[arg(long)]
    pub password_stdin: bool,
    /// Where accounts are stored.
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// A subcommand about one user.
#[derive(Debug, Args)]
pub struct UserNameArgs {
    /// The username.
    pub name: String,
    /// Where accounts and sessions are stored.
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// `countersign user set-role`
#[derive(Debug, Args)]
pub struct UserSetRoleArgs {
    /// The username.
    pub name: String,
    /// The new role.
    pub role: String,
    /// Where accounts are stored.
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// `countersign session revoke`
#[derive(Debug, Args)]
pub struct SessionRevokeArgs {
    /// The session id, as `session list` prints it.
    // base64url: one id in 64 starts with `-`, which is its value, not a flag.
    #[arg(allow_hyphen_values = true)]
    pub id: String,
    /// Where sessions are stored.
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// `countersign keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Check SECRET_KEY (or SECRET_KEY_FILE) and SECRET_KEY_FALLBACKS: kid, length and
    /// verdict of each key; status 2 if any is weak or missing. Never prints key material.
    Check(KeysCheckArgs),
    /// Create a key directory (SIGNING_KEY_DIR) with its first signing key.
    Init(KeysInitArgs),
    /// Staged rotation of a key directory's signing key: `--stage` a next key (published,
    /// signs nothing), then `--promote` it once the JWK Set max-age has passed.
    Rotate(KeysRotateArgs),
    /// Drop retired signing keys whose tokens have all expired (or one by `--kid`).
    Prune(KeysPruneArgs),
}

/// `countersign token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token signed with the current key and print it.
    Issue(TokenIssueArgs),
    /// Verify a token: status 0 and its claims as JSON, or status 1 and the reason.
    Verify(TokenVerifyArgs),
    /// Print a token's header and claims WITHOUT verifying anything (no key needed).
    Decode(TokenDecodeArgs),
}

/// Where the keys come from, for every subcommand that needs them.
///
/// The keys themselves are never arguments (they would show in `ps` and shell history):
/// `SECRET_KEY` or `SECRET_KEY_FILE`, and `SECRET_KEY_FALLBACKS`, are read from the
/// environment by [`crate::config::KeyConfig::load`].
#[derive(Debug, Clone, Default, Args)]
pub struct KeyArgs {
    /// Read the current key from this file (less one trailing newline). Overrides
    /// SECRET_KEY and SECRET_KEY_FILE.
    #[arg(long, value_name = "PATH")]
    pub secret_key_file: Option<PathBuf>,
    /// The asymmetric signing keys.
    #[command(flatten)]
    pub signing: SigningArgs,
}

/// Where the asymmetric signing keys come from ([`crate::signing`]); each flag overrides
/// its environment variable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct SigningArgs {
    /// Sign access tokens with this EdDSA or ES256 key (PKCS#8 PEM, from `countersign
    /// keygen --alg`) and publish it at /.well-known/jwks.json [env: SIGNING_KEY_FILE]
    #[arg(long, value_name = "PATH")]
    pub signing_key_file: Option<PathBuf>,
    /// Sign with the current key of this key directory (`countersign keys init`), publish
    /// its current, staged and retired keys [env: SIGNING_KEY_DIR]
    #[arg(long, value_name = "DIR")]
    pub signing_key_dir: Option<PathBuf>,
    /// Whether HS256 tokens signed with SECRET_KEY still verify (while moving to a signing
    /// key) [env: COUNTERSIGN_HS256_TOKENS] [default: accept]
    #[arg(long, value_enum, value_name = "accept|refuse")]
    pub hs256_tokens: Option<Hs256Tokens>,
    /// The `aud` claim of tokens signed with the signing key, required in every EdDSA or
    /// ES256 token verified [env: COUNTERSIGN_TOKEN_AUDIENCE] [default: none]
    #[arg(long, value_name = "AUD")]
    pub token_audience: Option<String>,
}

/// Whether HS256 tokens still verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Hs256Tokens {
    /// They verify (the default).
    Accept,
    /// They are refused: only the signing keys verify.
    Refuse,
}

/// A signing algorithm, as `keygen --alg` and `keys init --alg` take it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum KeygenAlg {
    /// A shared secret for HS256 (`SECRET_KEY`), printed.
    #[default]
    #[value(name = "HS256")]
    Hs256,
    /// An Ed25519 signing key (EdDSA, RFC 8037).
    #[value(name = "EdDSA")]
    EdDsa,
    /// A P-256 signing key (ES256).
    #[value(name = "ES256")]
    Es256,
}

impl KeygenAlg {
    /// The JOSE algorithm.
    pub fn algorithm(self) -> Algorithm {
        match self {
            Self::Hs256 => Algorithm::HS256,
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
        }
    }
}

/// `countersign keygen`
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// How many random bytes (at least 32, RFC 7518 §3.2; at most 1024). HS256 only.
    #[arg(long, value_name = "N", default_value = "32", value_parser = parse_key_bytes)]
    pub bytes: usize,
    /// HS256 prints a shared secret; EdDSA and ES256 write a private key to `--out`.
    #[arg(long, value_enum, default_value = "HS256")]
    pub alg: KeygenAlg,
    /// Where to write the EdDSA or ES256 key (PKCS#8 PEM, mode 0600; never overwritten).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `countersign keys init`
#[derive(Debug, Args)]
pub struct KeysInitArgs {
    /// The key directory's location.
    #[command(flatten)]
    pub dir: KeyDirArgs,
    /// The first key's algorithm.
    #[arg(long, value_enum, default_value = "EdDSA")]
    pub alg: KeygenAlg,
    /// How long verifiers may cache the JWK Set (`Cache-Control: max-age`); also the least
    /// time between staging a key and promoting it.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_seconds)]
    pub jwks_max_age: Seconds,
}

/// The key directory a `keys` subcommand works on.
#[derive(Debug, Clone, Args)]
pub struct KeyDirArgs {
    /// The key directory [env: SIGNING_KEY_DIR]
    #[arg(long, value_name = "DIR")]
    pub signing_key_dir: Option<PathBuf>,
}

/// `countersign keys rotate`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("step").required(true).args(["stage", "promote"])))]
pub struct KeysRotateArgs {
    /// The key directory's location.
    #[command(flatten)]
    pub dir: KeyDirArgs,
    /// Add a next key: published in the JWK Set after the next reload, signing nothing.
    #[arg(long)]
    pub stage: bool,
    /// Make the staged key current; the old one is retired (published until `--keep` has
    /// passed, its private key deleted).
    #[arg(long)]
    pub promote: bool,
    /// `--stage`: the new key's algorithm [default: the current key's].
    #[arg(long, value_enum, requires = "stage")]
    pub alg: Option<KeygenAlg>,
    /// `--promote`: how long the retired key stays published: at least the access-token
    /// lifetime plus the time to reload every instance.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_seconds, requires = "promote")]
    pub keep: Seconds,
    /// `--promote` before the JWK Set max-age has passed since staging (verifiers holding
    /// a cached set refuse the new key's tokens until they fetch it again).
    #[arg(long, requires = "promote")]
    pub force: bool,
}

/// `countersign keys prune`
#[derive(Debug, Args)]
pub struct KeysPruneArgs {
    /// The key directory's location.
    #[command(flatten)]
    pub dir: KeyDirArgs,
    /// Drop only this retired key.
    // base64url: a kid may start with `-`.
    #[arg(long, value_name = "KID", allow_hyphen_values = true)]
    pub kid: Option<String>,
    /// With `--kid`: drop it even though tokens it signed may still be valid (a leaked
    /// key: they stop verifying at once).
    #[arg(long, requires = "kid")]
    pub force: bool,
}

/// `countersign keys check`
#[derive(Debug, Args)]
pub struct KeysCheckArgs {
    /// Where the keys come from.
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// `countersign token issue`
#[derive(Debug, Args)]
pub struct TokenIssueArgs {
    /// Where the keys come from.
    #[command(flatten)]
    pub keys: KeyArgs,
    /// The `username` claim.
    #[arg(long)]
    pub username: String,
    /// The `role` claim (`user`, `admin`, …).
    #[arg(long)]
    pub role: String,
    /// The `sub` claim (the user's stable id).
    #[arg(long)]
    pub sub: Option<String>,
    /// Lifetime: seconds (`900`) or with a unit (`90s`, `15m`, `1h`, `7d`).
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_ttl)]
    pub ttl: Seconds,
    /// An extra claim, `name=value`; the value is JSON if it parses as JSON (`n=3`,
    /// `admin=true`, `o={"a":1}`), else a string. Repeatable. Registered names (`exp`,
    /// `sub`, …) are refused.
    #[arg(long = "claim", value_name = "NAME=VALUE", value_parser = parse_claim)]
    pub claims: Vec<ExtraClaim>,
    /// The `iss` claim.
    #[arg(long)]
    pub iss: Option<String>,
    /// The `aud` claim.
    #[arg(long)]
    pub aud: Option<String>,
}

/// `countersign token verify`
#[derive(Debug, Args)]
pub struct TokenVerifyArgs {
    /// Where the keys come from.
    #[command(flatten)]
    pub keys: KeyArgs,
    /// The token, or `-` to read it from standard input.
    #[arg(value_name = "JWT", value_parser = parse_token_source)]
    pub token: TokenSource,
    /// Verify against this JWK Set instead of the configured keys: an `http(s)://` URL
    /// (a `/.well-known/jwks.json`) or a file. Any issuer's EdDSA or ES256 tokens.
    #[arg(long, value_name = "URL|FILE")]
    pub jwks: Option<String>,
    /// Clock-skew allowance for `exp`, `nbf` and `iat`.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_seconds)]
    pub leeway: Seconds,
    /// Require this `iss`.
    #[arg(long)]
    pub iss: Option<String>,
    /// Require this audience in `aud` (without it, a token that has an `aud` is refused).
    #[arg(long)]
    pub aud: Option<String>,
}

/// `countersign token decode`
#[derive(Debug, Args)]
pub struct TokenDecodeArgs {
    /// The token, or `-` to read it from standard input.
    #[arg(value_name = "JWT", value_parser = parse_token_source)]
    pub token: TokenSource,
}

/// A duration in whole seconds, never negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seconds(pub i64);

/// An extra claim given as `--claim name=value`, its name not a registered one.
#[derive(Clone, Debug, PartialEq)]
pub struct ExtraClaim {
    /// The claim's name.
    pub name: String,
    /// Its value: the JSON the text parsed as, or the text as a string.
    pub value: Value,
}

/// Where a token comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// Given as the argument.
    Arg(String),
    /// `-`: read from standard input.
    Stdin,
}

/// The largest `keygen --bytes`: far past any use, small enough to print.
pub const MAX_KEYGEN_BYTES: usize = 1024;

/// `--bytes N`: an integer from [`MIN_KEY_BYTES`] to [`MAX_KEYGEN_BYTES`].
fn parse_key_bytes(s: &str) -> Result<usize, String> {
    let n: usize = s
        .parse()
        .map_err(|_| format!("expected a whole number of bytes, got {s:?}"))?;
    if n < MIN_KEY_BYTES {
        return Err(format!(
            "{n} bytes is too short: an HS256 key needs at least {MIN_KEY_BYTES} (RFC 7518 §3.2)"
        ));
    }
    if n > MAX_KEYGEN_BYTES {
        return Err(format!("at most {MAX_KEYGEN_BYTES} bytes"));
    }
    Ok(n)
}

/// A duration: whole seconds (`900`) or a whole number with one unit `s`, `m`, `h`, `d`.
/// Zero is allowed (a leeway may be zero); anything past year 9999 is refused.
pub fn parse_seconds(s: &str) -> Result<Seconds, String> {
    let bad = || format!("invalid duration {s:?}: expected e.g. 900, 90s, 15m, 1h or 7d");
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let per_unit: i64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit))
        .filter(|secs| *secs <= MAX_NUMERIC_DATE)
        .map(Seconds)
        .ok_or_else(|| format!("duration {s:?} is too long"))
}

/// A token lifetime: a duration ([`parse_seconds`]) greater than zero.
pub fn parse_ttl(s: &str) -> Result<Seconds, String> {
    match parse_seconds(s)? {
        Seconds(0) => Err("a token's lifetime must be more than zero".to_owned()),
        ttl => Ok(ttl),
    }
}

/// `name=value`: the value as JSON if it parses, else as a string. The name must not be a
/// claim the issuer sets itself ([`REGISTERED`]).
pub fn parse_claim(s: &str) -> Result<ExtraClaim, String> {
    let Some((name, text)) = s.split_once('=') else {
        return Err(format!("expected NAME=VALUE, got {s:?}"));
    };
    if name.is_empty() {
        return Err("the claim name is empty".to_owned());
    }
    if REGISTERED.contains(&name) {
        return Err(format!(
            "claim {name:?} is registered and set by the issuer: use --ttl, --sub, --username, \
             --role, --iss or --aud instead"
        ));
    }
    let value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
    Ok(ExtraClaim {
        name: name.to_owned(),
        value,
    })
}

/// The longest `--redis-timeout`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// A short timeout: whole milliseconds (`250ms`) or seconds (`2s`, `2`), more than zero
/// and at most [`MAX_TIMEOUT`].
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid timeout {s:?}: expected e.g. 250ms, 1s or 2");
    let (digits, per_unit_ms) = if let Some(d) = s.strip_suffix("ms") {
        (d, 1)
    } else if let Some(d) = s.strip_suffix('s') {
        (d, 1000)
    } else {
        (s, 1000)
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let ms = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(per_unit_ms))
        .ok_or_else(bad)?;
    let d = Duration::from_millis(ms);
    if d.is_zero() {
        return Err("a timeout must be more than zero".to_owned());
    }
    if d > MAX_TIMEOUT {
        return Err(format!("at most {}s", MAX_TIMEOUT.as_secs()));
    }
    Ok(d)
}

fn parse_token_source(s: &str) -> Result<TokenSource, String> {
    Ok(match s {
        "-" => TokenSource::Stdin,
        token => TokenSource::Arg(token.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn cli_is_well_formed() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn ids_that_start_with_a_hyphen_are_values() {
        // Session ids and kids are base64url: one in 64 starts with `-`.
        for args in [
            &["countersign", "session", "revoke", "-nX3_a"][..],
            &[
                "countersign",
                "session",
                "revoke",
                "--data-dir",
                "d",
                "-nX3_a",
            ],
            &[
                "countersign",
                "session",
                "revoke",
                "-nX3_a",
                "--data-dir",
                "d",
            ],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            let Command::Session(SessionCommand::Revoke(a)) = cli.command else {
                panic!("{args:?}")
            };
            assert_eq!(a.id, "-nX3_a", "{args:?}");
        }
        let cli = Cli::try_parse_from(["countersign", "keys", "prune", "--kid", "-k1d"]).unwrap();
        let Command::Keys(KeysCommand::Prune(a)) = cli.command else {
            panic!()
        };
        assert_eq!(a.kid.as_deref(), Some("-k1d"));
    }

    #[test]
    fn durations() {
        for (text, secs) in [
            ("900", 900),
            ("0", 0),
            ("90s", 90),
            ("15m", 900),
            ("1h", 3_600),
            ("7d", 604_800),
        ] {
            assert_eq!(parse_seconds(text), Ok(Seconds(secs)), "{text}");
        }
        for text in [
            "", "s", "-5", "1.5h", "1h30m", "10w", " 10", "10 s", "+5", "1é",
        ] {
            assert!(parse_seconds(text).is_err(), "{text} was accepted");
        }
    }

    #[test]
    fn durations_refuse_overflow() {
        assert!(parse_seconds("99999999999999999999").is_err());
        assert!(parse_seconds("9223372036854775807d").is_err());
        assert!(parse_seconds(&format!("{}", MAX_NUMERIC_DATE + 1)).is_err());
        assert_eq!(
            parse_seconds(&MAX_NUMERIC_DATE.to_string()),
            Ok(Seconds(MAX_NUMERIC_DATE))
        );
    }

    #[test]
    fn timeouts() {
        for (text, ms) in [("250ms", 250), ("1s", 1000), ("2", 2000), ("60s", 60_000)] {
            assert_eq!(parse_timeout(text), Ok(Duration::from_millis(ms)), "{text}");
        }
        for text in [
            "",
            "0",
            "0ms",
            "ms",
            "1.5s",
            "61s",
            "1m",
            "-1",
            "99999999999999999999",
        ] {
            assert!(parse_timeout(text).is_err(), "{text} was accepted");
        }
    }

    #[test]
    fn ttl_must_be_positive() {
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("0h").is_err());
        assert_eq!(parse_ttl("1s"), Ok(Seconds(1)));
    }

    #[test]
    fn claims_parse_json_else_string() {
        let cases = [
            ("n=3", json!(3)),
            ("ok=true", json!(true)),
            ("o={\"a\":1}", json!({"a": 1})),
            ("l=[1,\"x\"]", json!([1, "x"])),
            ("s=\"quoted\"", json!("quoted")),
            ("name=john doe", json!("john doe")),
            ("e=", json!("")),
            ("eq=a=b", json!("a=b")),
            ("z=null", Value::Null),
        ];
        for (text, value) in cases {
            let claim = parse_claim(text).unwrap();
            assert_eq!(claim.value, value, "{text}");
        }
        assert_eq!(parse_claim("eq=a=b").unwrap().name, "eq");
    }

    #[test]
    fn claims_refuse_registered_and_malformed() {
        for name in REGISTERED {
            let err = parse_claim(&format!("{name}=1")).unwrap_err();
            assert!(err.contains("registered"), "{err}");
        }
        assert!(parse_claim("novalue").is_err());
        assert!(parse_claim("=1").is_err());
    }

    #[test]
    fn key_bytes_bounds() {
        assert_eq!(parse_key_bytes("32"), Ok(32));
        assert_eq!(parse_key_bytes("1024"), Ok(1024));
        assert!(parse_key_bytes("31").unwrap_err().contains("RFC 7518"));
        assert!(parse_key_bytes("1025").is_err());
        assert!(parse_key_bytes("-1").is_err());
        assert!(parse_key_bytes("x").is_err());
    }
}
