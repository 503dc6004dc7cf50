//! What the storage subcommands (`user …`, `session …`, `migrate`) share: the stores
//! opened as `serve` opens them, and an engine to change them through, so that an account
//! change ends the user's sessions exactly as it would in the server.
//!
//! The engine here signs nothing (no command issues a token or a cookie), so it runs on
//! a throwaway key and needs no `SECRET_KEY`. Its cache is off: every change goes
//! straight to the store, where a running server sees it within its own cache TTL.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use countersign::auth::{Auth, AuthConfig};
use countersign::clock::{Clock, UnixTime};
use countersign::keys::{KeyRing, SecretKey};
use countersign::password::{
    HashParams, Hasher, HashingPool, MAX_PASSWORD_BYTES, OWASP_PARAMS, Password,
};
use countersign::user::User;
use tokio::runtime::Runtime;
use zeroize::Zeroizing;

use crate::Context;
use crate::cli::StorageArgs;
use crate::settings::StorageConfig;
use crate::storage::Stores;

/// A clock stopped at the moment the command started: a command is short.
struct Fixed(UnixTime);

impl Clock for Fixed {
    fn now(&self) -> UnixTime {
        self.0
    }
}

/// Whether a command hashes passwords.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hashing {
    /// It sets a password.
    Passwords,
    /// It never hashes.
    None,
}

/// The stores and an engine over them, with the runtime to drive them.
pub struct Admin {
    /// The runtime the store calls run on.
    pub runtime: Runtime,
    /// The engine.
    pub auth: Auth,
    /// The stores.
    pub stores: Stores,
}

impl Admin {
    /// Open the stores `args` name (through the same layers as `serve`). `hashing`: the
    /// command hashes a password (with the OWASP parameters); otherwise the engine's pool
    /// gets the cheapest parameters, since it will never run (its start-up dummy hash
    /// would cost a full hash for nothing).
    ///
    /// # Errors
    /// A settings error, or a database that cannot be opened or migrated.
    pub fn open(args: &StorageArgs, ctx: &Context<'_>, hashing: Hashing) -> anyhow::Result<Self> {
        let config = StorageConfig::resolve(args, ctx.env)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let stores = runtime.block_on(Stores::open(&config))?;
        let (key, _) = SecretKey::generate(32)
            .context("the operating system's random number generator failed")?;
        let params = match hashing {
            Hashing::Passwords => OWASP_PARAMS,
            Hashing::None => HashParams {
                m_cost_kib: 8,
                t_cost: 1,
                p_cost: 1,
            },
        };
        let pool = HashingPool::new(Hasher::new(params)?, 1, 1)?;
        let auth = Auth::new(
            KeyRing::single(key),
            AuthConfig {
                cache_ttl: Duration::ZERO,
                ..AuthConfig::default()
            },
            stores.users(),
            stores.sessions(),
            pool,
            Arc::new(Fixed(ctx.clock.now())),
        );
        Ok(Self {
            runtime,
            auth,
            stores,
        })
    }

    /// The user called `name`, if any.
    ///
    /// # Errors
    /// When the store fails.
    pub fn user(&self, name: &str) -> anyhow::Result<Option<User>> {
        Ok(self.runtime.block_on(self.auth.user_by_name(name))?)
    }

    /// Close the stores.
    pub fn close(self) {
        self.runtime.block_on(self.stores.close());
    }
}

/// A password from standard input: one line, less its line ending.
///
/// # Errors
/// Without `--password-stdin`, with nothing or more than one line on stdin, or with
/// text that is not UTF-8.
pub fn read_password(password_stdin: bool, ctx: &mut Context<'_>) -> anyhow::Result<Password> {
    if !password_stdin {
        bail!(
            "pass --password-stdin and the password on standard input (passwords are never \
             arguments: they would show in `ps` and the shell history), e.g. \
             `printf '%s\\n' \"$PW\" | countersign user add NAME --password-stdin`"
        );
    }
    let mut bytes = Zeroizing::new(Vec::new());
    let limit = MAX_PASSWORD_BYTES as u64 + 3;
    (&mut *ctx.stdin)
        .take(limit)
        .read_to_end(&mut bytes)
        .context("cannot read standard input")?;
    let mut text: &[u8] = &bytes;
    if let Some(rest) = text.strip_suffix(b"\n") {
        text = rest.strip_suffix(b"\r").unwrap_or(rest);
    }
    if text.is_empty() {
        bail!("no password on standard input");
    }
    if text.contains(&b'\n') {
        bail!("standard input holds more than one line: give the password alone");
    }
    let text = std::str::from_utf8(text).context("the password is not UTF-8 text")?;
    Ok(Password::new(text))
}
