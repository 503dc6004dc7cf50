//! The command line: flags and environment are parsed into a [`Config`], which [`serve`]
//! runs. Nothing is read from a global after that.
//!
//! Environment:
//! - `SECRET_KEY`: the signing key (at least 32 bytes, checked by countersign). Unset, a
//!   random key is made for this run, with a warning: sessions and tokens then end when
//!   the process stops.
//! - `BUGGY_ALICE_PASSWORD`, `BUGGY_BOB_PASSWORD`, `BUGGY_ADMIN_PASSWORD`: the seeded
//!   accounts' passwords. Unset, one is generated and printed once to stderr. Passwords
//!   are never taken from flags, which other local users can read in the process list.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use clap::Parser;
use countersign::keys::SecretKey;
use countersign::password::Password;
use countersign::user::{Role, Username};
use countersign_axum::CookieConfig;
use zeroize::Zeroizing;

use crate::{Account, AppState, Options, app};

/// The flags, as typed.
#[derive(Debug, Parser)]
#[command(
    name = "buggy-race",
    version,
    about = "The buggy race editor: each user edits their own buggy, an admin sees all.",
    after_help = "Environment: SECRET_KEY (generated for this run when unset), \
                  BUGGY_ALICE_PASSWORD, BUGGY_BOB_PASSWORD, BUGGY_ADMIN_PASSWORD \
                  (generated and printed once when unset)."
)]
pub struct Args {
    /// Address to listen on; port 0 picks a free one (the log line says which).
    #[arg(long, default_value = "127.0.0.1:5000", value_name = "ADDR")]
    pub addr: SocketAddr,
    /// Username of the admin account.
    #[arg(long, default_value = "admin", value_name = "NAME")]
    pub admin: String,
    /// Mark cookies `Secure` with the `__Host-` prefix: for serving behind an HTTPS proxy.
    /// Without it cookies work over plain HTTP, for local development only.
    #[arg(long)]
    pub secure_cookies: bool,
}

/// An account to create at startup, and whether its password was generated (to print it).
pub struct SeedAccount {
    /// The account.
    pub account: Account,
    /// The environment variable that would have set the password.
    pub env_var: &'static str,
    /// The generated password, when the variable was unset.
    pub generated: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for SeedAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedAccount")
            .field("account", &self.account)
            .field("env_var", &self.env_var)
            .field("generated", &self.generated.is_some())
            .finish()
    }
}

/// Everything `serve` needs, validated.
#[derive(Debug)]
pub struct Config {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The signing key.
    pub key: SecretKey,
    /// Whether the key was generated for this run (no `SECRET_KEY`).
    pub key_generated: bool,
    /// Cookie flags.
    pub cookies: CookieConfig,
    /// alice, bob and the admin.
    pub accounts: Vec<SeedAccount>,
}

impl Config {
    /// Validate the flags and read the environment through `env` (`Ok(None)` for an unset
    /// variable).
    ///
    /// # Errors
    /// A weak `SECRET_KEY`, a password the policy refuses, a bad or clashing admin name, or
    /// whatever `env` reports.
    pub fn from_args(
        args: Args,
        env: impl Fn(&str) -> anyhow::Result<Option<String>>,
    ) -> anyhow::Result<Self> {
        let (key, key_generated) = match env("SECRET_KEY")? {
            Some(value) => (
                SecretKey::parse(&value).context(
                    "SECRET_KEY is refused (make one with `countersign keygen`, or unset it \
                     to use a random key for this run)",
                )?,
                false,
            ),
            None => {
                let (key, _text) = SecretKey::generate(32)
                    .map_err(|e| anyhow!("the OS random source failed: {e}"))?;
                (key, true)
            }
        };
        Username::parse(&args.admin).with_context(|| format!("--admin {:?}", args.admin))?;
        if args.admin == "alice" || args.admin == "bob" {
            return Err(anyhow!(
                "--admin {:?}: alice and bob are the two ordinary users; choose another name",
                args.admin
            ));
        }
        let seeds = [
            ("alice".to_owned(), Role::user(), "BUGGY_ALICE_PASSWORD"),
            ("bob".to_owned(), Role::user(), "BUGGY_BOB_PASSWORD"),
            (args.admin, Role::admin(), "BUGGY_ADMIN_PASSWORD"),
        ];
        let mut accounts = Vec::with_capacity(seeds.len());
        for (username, role, env_var) in seeds {
            let (password, generated) = match env(env_var)? {
                Some(value) => {
                    let password = Password::new(value);
                    password
                        .check_policy()
                        .with_context(|| format!("{env_var} is refused"))?;
                    (password, None)
                }
                None => {
                    let text = Zeroizing::new(countersign::random::token_id());
                    (Password::new(text.as_str()), Some(text))
                }
            };
            accounts.push(SeedAccount {
                account: Account::new(username, role, password),
                env_var,
                generated,
            });
        }
        Ok(Self {
            addr: args.addr,
            key,
            key_generated,
            cookies: if args.secure_cookies {
                CookieConfig::secure()
            } else {
                CookieConfig::insecure()
            },
            accounts,
        })
    }
}

/// Parse the command line and serve until SIGINT or SIGTERM.
///
/// Exit codes: 0 after a clean shutdown (or `--help`), 2 for a usage or configuration
/// error.
///
/// # Errors
/// When the runtime cannot start, the address cannot be bound, or the server fails.
pub fn run() -> anyhow::Result<ExitCode> {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            e.print()?;
            return Ok(ExitCode::from(code));
        }
    };
    init_logging();
    let config = match Config::from_args(args, |name| match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(anyhow!("{name} is not valid UTF-8")),
    }) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("buggy-race: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Fails only if a subscriber is already installed, which then does the job.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Create the accounts, print generated passwords once, and serve `config.addr` until
/// SIGINT or SIGTERM, letting requests in flight finish.
///
/// # Errors
/// When an account cannot be created, the address cannot be bound, or the server fails.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    if config.key_generated {
        tracing::warn!(
            "SECRET_KEY is not set: signing with a random key made for this run; sessions \
             and tokens end when the process stops"
        );
    }
    if !config.cookies.is_secure() {
        tracing::warn!(
            "cookies are not Secure (plain HTTP, for local development); behind an HTTPS \
             proxy, pass --secure-cookies"
        );
    }
    let state = AppState::in_memory(
        config.key,
        &Options {
            cookies: config.cookies,
            ..Options::default()
        },
    )
    .context("setting up password hashing")?;
    let mut accounts = Vec::with_capacity(config.accounts.len());
    let mut generated = Vec::new();
    for seed in config.accounts {
        if let Some(password) = seed.generated {
            generated.push((seed.account.username.clone(), seed.env_var, password));
        }
        accounts.push(seed.account);
    }
    state
        .seed(accounts)
        .await
        .context("creating the accounts")?;
    for (username, env_var, password) in generated {
        // On the console once, never in the log: set the variable to choose a password.
        eprintln!(
            "generated password for {username}: {} (set {env_var} to choose one)",
            password.as_str()
        );
    }
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!("listening on http://{addr}");
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
