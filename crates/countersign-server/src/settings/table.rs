//! Every setting, once: its flag, environment variable and settings-file key, its default
//! and what it does (for `--help` and `docs/settings.md`), and how its value is read,
//! checked and put into the configuration. The resolver walks [`SETTINGS`] in order; the
//! command line's flags and the settings reference are made from it too.

use std::net::SocketAddr;

use countersign::flask::bridge::FlaskBridge;

use super::config::{
    DatabaseUrl, LogFormat, MAX_DB_CONNECTIONS, MAX_HASH_POOL, MAX_LOGIN_LIMIT,
    MAX_REGISTRATION_LIMIT, RedisConfig, Registration, ServeConfig, SessionStoreConfig,
};
use super::error::Refusal;
use super::raw::Raw;
use crate::redirect::DomainPattern;

/// One setting.
pub struct Setting {
    /// Its name: the flag's clap id, and its name in the resolver's record of origins.
    pub name: &'static str,
    /// The flag, without its dashes (`addr` for `--addr`).
    pub flag: &'static str,
    /// What the flag takes.
    pub value: Value,
    /// The environment variable.
    pub env: Option<&'static str>,
    /// The settings file's keys for it, the first one present winning; none when it has no
    /// place in the file.
    pub keys: &'static [&'static str],
    /// Which commands take it.
    pub scope: Scope,
    /// Its default, as the reference shows it.
    pub default: Shown,
    /// What it does: the help text, one sentence or two, no full stop.
    pub doc: &'static str,
    /// How the reference shows the environment variable, when not just its name.
    pub env_shown: Option<&'static str>,
    /// How the reference shows the settings-file key, when not just its name.
    pub file_shown: Option<&'static str>,
    /// Read the value, check it, and put it into the configuration.
    pub apply: fn(&mut ServeConfig, &Raw<'_>) -> Result<(), Refusal>,
}

/// What a flag takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// Nothing: a switch (`--production`).
    Switch,
    /// One value, named so in the usage (`--addr <HOST:PORT>`).
    One(&'static str),
    /// A list: the flag may be repeated, and each value may be comma-separated; a
    /// comma-separated list in the environment, a list in the file.
    List(&'static str),
}

/// Which commands take a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every command that opens the stores: `serve`, `user …`, `session …`, `migrate`,
    /// `access check`.
    Storage,
    /// `serve`.
    Serve,
}

/// A default, as the reference shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// None: off for a switch, nothing for a value.
    Nothing,
    /// A value, as it would be written (the resolver's default is this value).
    Value(&'static str),
    /// Words (`the number of cores`).
    Prose(&'static str),
}

impl Setting {
    /// A setting of `serve` with nothing yet: the base of the table's entries.
    const SERVE: Self = Self {
        name: "",
        flag: "",
        value: Value::Switch,
        env: None,
        keys: &[],
        scope: Scope::Serve,
        default: Shown::Nothing,
        doc: "",
        env_shown: None,
        file_shown: None,
        apply: |_, _| Ok(()),
    };

    /// A storage setting with nothing yet.
    const STORAGE: Self = Self {
        scope: Scope::Storage,
        ..Self::SERVE
    };
}

/// The settings, in the order they are resolved and documented. A setting that depends on
/// another comes after it (the Redis options after `--session-store`); checks across
/// settings run after the walk ([`super::resolve`]).
pub static SETTINGS: &[Setting] = &[
    Setting {
        name: "data_dir",
        flag: "data-dir",
        value: Value::One("DIR"),
        env: Some("COUNTERSIGN_DATA_DIR"),
        keys: &["data_dir"],
        default: Shown::Prose("`./data`"),
        doc: "Directory for the SQLite database and the generated development key",
        apply: |c, v| {
            c.storage.data_dir = v.path()?;
            Ok(())
        },
        ..Setting::STORAGE
    },
    Setting {
        name: "database_url",
        flag: "database-url",
        value: Value::One("URL"),
        env: Some("COUNTERSIGN_DATABASE_URL"),
        keys: &["database_url"],
        default: Shown::Prose("SQLite in the data directory"),
        doc: "The database: `sqlite://PATH` or `postgres://…`",
        apply: |c, v| {
            let url = v.text()?;
            c.storage.database_url = (!url.is_empty()).then(|| DatabaseUrl::new(url));
            Ok(())
        },
        ..Setting::STORAGE
    },
    Setting {
        name: "session_store",
        flag: "session-store",
        value: Value::One("URL"),
        env: Some("COUNTERSIGN_SESSION_STORE"),
        keys: &["session_store"],
        default: Shown::Prose("the database"),
        doc: "Where sessions, refresh tokens, the denylist and login counters live: \
              `database`, or `redis://[user:password@]host:6379/0`",
        apply: |c, v| {
            c.storage.session_store = session_store(v.text()?)?;
            Ok(())
        },
        ..Setting::STORAGE
    },
    Setting {
        name: "db_max_connections",
        flag: "db-max-connections",
        value: Value::One("N"),
        env: Some("COUNTERSIGN_DB_MAX_CONNECTIONS"),
        keys: &["db_max_connections"],
        default: Shown::Prose("PostgreSQL 10; SQLite 4 per core, 4 to 16"),
        doc: "Largest number of database connections (PostgreSQL: the pool size; SQLite: \
              readers)",
        apply: |c, v| {
            let n = v.number(1, MAX_DB_CONNECTIONS.into())?;
            c.storage.db_max_connections = u32::try_from(n).ok();
            Ok(())
        },
        ..Setting::STORAGE
    },
    Setting {
        name: "redis_prefix",
        flag: "redis-prefix",
        value: Value::One("PREFIX"),
        env: Some("COUNTERSIGN_REDIS_PREFIX"),
        keys: &["redis_prefix"],
        default: Shown::Value("countersign:"),
        doc: "Prefix of every Redis key, so deployments can share one Redis",
        apply: |c, v| {
            let prefix = v.text()?;
            if let SessionStoreConfig::Redis(redis) = &mut c.storage.session_store {
                redis.key_prefix = prefix;
            }
            Ok(())
        },
        ..Setting::STORAGE
    },
    Setting {
        name: "redis_timeout",
        flag: "redis-timeout",
        value: Value::One("DURATION"),
        env: Some("COUNTERSIGN_REDIS_TIMEOUT"),
        keys: &["redis_timeout"],
        default: Shown::Value("1s"),
        doc: "How long one Redis connection attempt, and one command, may take before the \
              request is answered 503 (`250ms`, `1s`)",
        apply: |c, v| {
            let timeout = v.timeout()?;
            if let SessionStoreConfig::Redis(redis) = &mut c.storage.session_store {
                redis.timeout = timeout;
            }
            Ok(())
        },
        ..Setting::STORAGE
    },
    Setting {
        name: "redis_ca_file",
        flag: "redis-ca-file",
        value: Value::One("PATH"),
        env: Some("COUNTERSIGN_REDIS_CA_FILE"),
        keys: &["redis_ca_file"],
        default: Shown::Prose("the public root CAs"),
        doc: "For a `rediss://` session store: a PEM file of the CA certificates its server \
              certificate must chain to (a private CA)",
        apply: |c, v| {
            let path = v.path()?;
            if let SessionStoreConfig::Redis(redis) = &mut c.storage.session_store {
                redis.ca_file = Some(path);
            }
            Ok(())
        },
        ..Setting::STORAGE
    },
    Setting {
        name: "config",
        flag: "config",
        value: Value::One("PATH"),
        env: Some("COUNTERSIGN_CONFIG"),
        default: Shown::Prose("./countersign.toml, if present"),
        doc: "Settings file",
        // Read before the others, to find the file ([`super::SettingsFile::load`]).
        ..Setting::STORAGE
    },
    Setting {
        name: "addr",
        flag: "addr",
        value: Value::One("HOST:PORT"),
        env: Some("COUNTERSIGN_ADDR"),
        keys: &["addr"],
        default: Shown::Value("127.0.0.1:8080"),
        doc: "Address to listen on; port 0 picks a free port",
        apply: |c, v| {
            let text = v.text()?;
            c.addr = text
                .parse::<SocketAddr>()
                .map_err(|_| format!("expected HOST:PORT such as 127.0.0.1:8080, got {text:?}"))?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "production",
        flag: "production",
        value: Value::Switch,
        env: Some("COUNTERSIGN_ENV"),
        keys: &["env", "production"],
        doc: "Refuse to start without an explicit strong key, refuse insecure cookies",
        env_shown: Some("COUNTERSIGN_ENV=production"),
        file_shown: Some("`production`, or `env = \"production\"`"),
        apply: |c, v| {
            c.production = match v {
                Raw::Switch => true,
                Raw::File(toml::Value::Boolean(on), _) => *on,
                _ => {
                    let text = v.text()?;
                    match text.to_ascii_lowercase().as_str() {
                        "production" | "prod" => true,
                        "development" | "dev" => false,
                        _ => {
                            return Err(format!(
                                "expected production or development, got {text:?}"
                            )
                            .into());
                        }
                    }
                }
            };
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "insecure_cookies",
        flag: "insecure-cookies",
        value: Value::Switch,
        env: Some("COUNTERSIGN_INSECURE_COOKIES"),
        keys: &["insecure_cookies"],
        doc: "Cookies without `Secure` and the `__Host-` prefix, for plain-HTTP development",
        apply: |c, v| {
            c.insecure_cookies = v.bool()?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "registration",
        flag: "registration",
        value: Value::One("open|closed"),
        env: Some("COUNTERSIGN_REGISTRATION"),
        keys: &["registration"],
        default: Shown::Value("closed"),
        doc: "Whether anyone may create an account at /register",
        apply: |c, v| {
            c.registration = v.choice(&[
                ("open", Registration::Open),
                ("closed", Registration::Closed),
            ])?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "registration_limit",
        flag: "registration-limit",
        value: Value::One("N"),
        env: Some("COUNTERSIGN_REGISTRATION_LIMIT"),
        keys: &["registration_limit"],
        default: Shown::Value("10"),
        doc: "Registration attempts, successful or not, allowed from one client address per \
              15 minutes before 429",
        apply: |c, v| {
            c.auth.throttle.registrations_per_address = v.number(1, MAX_REGISTRATION_LIMIT)?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "login_limit",
        flag: "login-limit",
        value: Value::One("N"),
        env: Some("COUNTERSIGN_LOGIN_LIMIT"),
        keys: &["login_limit"],
        default: Shown::Value("5"),
        doc: "Failed logins allowed for one account name per window before 429; the right \
              password is refused too until the window ends",
        apply: |c, v| {
            c.auth.throttle.per_account = v.number(1, MAX_LOGIN_LIMIT)?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "login_address_limit",
        flag: "login-address-limit",
        value: Value::One("N"),
        env: Some("COUNTERSIGN_LOGIN_ADDRESS_LIMIT"),
        keys: &["login_address_limit"],
        default: Shown::Value("50"),
        doc: "Failed logins allowed from one client address per window before 429",
        apply: |c, v| {
            c.auth.throttle.per_address = v.number(1, MAX_LOGIN_LIMIT)?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "login_window",
        flag: "login-window",
        value: Value::One("DURATION"),
        env: Some("COUNTERSIGN_LOGIN_WINDOW"),
        keys: &["login_window"],
        default: Shown::Value("15m"),
        doc: "The first window of failed logins (each window that reaches its limit makes \
              the next one twice as long), and the window of registration attempts",
        apply: |c, v| {
            c.auth.throttle.window_secs = v.positive_secs()?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "login_max_window",
        flag: "login-max-window",
        value: Value::One("DURATION"),
        env: Some("COUNTERSIGN_LOGIN_MAX_WINDOW"),
        keys: &["login_max_window"],
        default: Shown::Value("24h"),
        doc: "The longest window of failed logins the back-off reaches",
        // Checked against --login-window after the walk.
        apply: |c, v| {
            c.auth.throttle.max_window_secs = v.positive_secs()?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "log_format",
        flag: "log-format",
        value: Value::One("json|pretty"),
        env: Some("COUNTERSIGN_LOG_FORMAT"),
        keys: &["log_format"],
        default: Shown::Value("pretty"),
        doc: "Log format",
        apply: |c, v| {
            c.log_format = v.choice(&[("json", LogFormat::Json), ("pretty", LogFormat::Pretty)])?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "access_ttl",
        flag: "access-ttl",
        value: Value::One("DURATION"),
        env: Some("COUNTERSIGN_ACCESS_TTL"),
        keys: &["access_ttl"],
        default: Shown::Value("15m"),
        doc: "Access token lifetime",
        apply: |c, v| {
            c.auth.issuance.ttl_secs = v.positive_secs()?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "session_idle",
        flag: "session-idle",
        value: Value::One("DURATION"),
        env: Some("COUNTERSIGN_SESSION_IDLE"),
        keys: &["session_idle"],
        default: Shown::Value("30m"),
        doc: "Session idle timeout",
        apply: |c, v| {
            c.auth.sessions.idle_secs = v.positive_secs()?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "session_absolute",
        flag: "session-absolute",
        value: Value::One("DURATION"),
        env: Some("COUNTERSIGN_SESSION_ABSOLUTE"),
        keys: &["session_absolute"],
        default: Shown::Value("12h"),
        doc: "Session absolute lifetime",
        apply: |c, v| {
            c.auth.sessions.absolute_secs = v.positive_secs()?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "hash_workers",
        flag: "hash-workers",
        value: Value::One("N"),
        env: Some("COUNTERSIGN_HASH_WORKERS"),
        keys: &["hash_workers"],
        default: Shown::Prose("the number of cores"),
        doc: "Password hashes computed at once",
        apply: |c, v| {
            c.hash_workers = hash_pool(v, 1)?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "hash_queue",
        flag: "hash-queue",
        value: Value::One("N"),
        env: Some("COUNTERSIGN_HASH_QUEUE"),
        keys: &["hash_queue"],
        default: Shown::Value("64"),
        doc: "Password hashes waiting before logins get 503",
        apply: |c, v| {
            c.hash_queue = hash_pool(v, 0)?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "cache_ttl",
        flag: "cache-ttl",
        value: Value::One("DURATION"),
        env: Some("COUNTERSIGN_CACHE_TTL"),
        keys: &["cache_ttl"],
        default: Shown::Value("1s"),
        doc: "How long a revocation or logout made by another process may take to be seen",
        apply: |c, v| {
            c.auth.cache_ttl = std::time::Duration::from_secs(v.secs()?.unsigned_abs());
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "allowed_origins",
        flag: "allowed-origin",
        value: Value::List("ORIGIN"),
        env: Some("COUNTERSIGN_ALLOWED_ORIGINS"),
        keys: &["allowed_origins"],
        doc: "An origin (`https://app.example`) allowed to make cookie-authenticated changes \
              besides this server's own",
        apply: |c, v| {
            let origins = v.list()?;
            if let Some(bad) = origins.iter().find(|o| !is_origin(o)) {
                return Err(format!(
                    "expected an origin such as https://app.example (scheme, host, optional \
                     port; no path), got {bad:?}"
                )
                .into());
            }
            c.allowed_origins = origins;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "public_urls",
        flag: "public-url",
        value: Value::List("URL"),
        env: Some("COUNTERSIGN_PUBLIC_URL"),
        keys: &["public_url"],
        doc: "A URL this server is reached at by browsers (`https://auth.example`), when it is \
              not the address it listens on (behind a proxy). Its origin may make \
              cookie-authenticated changes",
        apply: |c, v| {
            c.public_urls = v
                .list()?
                .iter()
                .map(|url| {
                    public_origin(url).ok_or_else(|| {
                        format!(
                            "expected the URL browsers reach this server at, such as \
                             https://auth.example or http://127.0.0.1:8080 (scheme, host, \
                             optional port, optional path), got {url:?}"
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "trusted_proxies",
        flag: "trusted-proxies",
        value: Value::List("CIDRS"),
        env: Some("COUNTERSIGN_TRUSTED_PROXIES"),
        keys: &["trusted_proxies"],
        doc: "Proxies (IP addresses or CIDR blocks) whose `Forwarded` / `X-Forwarded-For` / \
              `-Proto` / `-Host` headers are believed; from any other peer they are ignored",
        apply: |c, v| {
            c.trusted_proxies = countersign_axum::TrustedProxies::parse_all(v.list()?)
                .map_err(|e| e.to_string())?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "default_policy",
        flag: "default-policy",
        value: Value::One("POLICY"),
        env: Some("COUNTERSIGN_DEFAULT_POLICY"),
        keys: &["default_policy"],
        default: Shown::Value("authenticated"),
        doc: "What forward authentication requires when no `[[access]]` rule matches: \
              `authenticated`, `public`, `role:NAME` or `deny`",
        file_shown: Some("`default_policy`, or `[[access]]` tables (docs/forward-auth.md)"),
        // The rules are built after the walk, with this as their default.
        apply: |c, v| {
            let policy = v.text()?;
            c.forward.default_policy_override = v.is_override().then(|| policy.clone());
            // Checked here; kept as the default of rules without any, which the file's
            // `[[access]]` tables join after the walk.
            c.forward.access =
                crate::access::AccessRules::new(&[], Some(&policy)).map_err(|e| e.message)?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "forward_auth_domains",
        flag: "forward-auth-domains",
        value: Value::List("DOMAINS"),
        env: Some("COUNTERSIGN_FORWARD_AUTH_DOMAINS"),
        keys: &["forward_auth_domains"],
        doc: "Hosts besides the public URLs' that `/login?rd=` and `/logout?rd=` may send a \
              browser back to: `example.test`, `*.example.test`",
        apply: |c, v| {
            c.forward.domains = v
                .list()?
                .iter()
                .map(|d| DomainPattern::parse(d))
                .collect::<Result<_, _>>()?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "cookie_domain",
        flag: "cookie-domain",
        value: Value::One("DOMAIN"),
        env: Some("COUNTERSIGN_COOKIE_DOMAIN"),
        keys: &["cookie_domain"],
        default: Shown::Prose("this host only"),
        doc: "Share the session cookie with every host below this domain (single sign-on \
              across subdomains): it gets `Domain=` and the `__Secure-` prefix instead of \
              `__Host-`",
        // Checked against the public URLs after the walk.
        apply: |c, v| {
            let domain = v.text()?;
            c.forward.cookie_domain = (!domain.trim().is_empty()).then_some(domain);
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "require_mfa",
        flag: "require-mfa",
        value: Value::List("ROLES"),
        env: Some("COUNTERSIGN_REQUIRE_MFA"),
        keys: &["require_mfa"],
        doc: "Roles whose users must sign in with a second factor: a user of such a role \
              without one is sent to `/account/security` to enrol and reaches nothing else \
              (`admin`, or `admin,ops`; docs/mfa.md)",
        apply: |c, v| {
            c.require_mfa = v
                .list()?
                .iter()
                .map(|r| {
                    countersign::user::Role::parse(r).map_err(|_| {
                        Refusal::from(format!(
                            "{r:?} is not a role name (1 to 32 of a-z, 0-9, `_`, `-`, \
                             starting with a letter)"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok(())
        },
        ..Setting::SERVE
    },
    Setting {
        name: "flask_bridge",
        flag: "flask-bridge",
        value: Value::Switch,
        env: Some("COUNTERSIGN_FLASK_BRIDGE"),
        doc: "Sign in browsers that bring a Flask session cookie signed with SECRET_KEY (or a \
              fallback); a `[flask]` table in the settings file sets its options and turns it \
              on too (docs/flask.md)",
        file_shown: Some("a `[flask]` table (docs/flask.md)"),
        // A `[flask]` table, read after the walk, replaces these defaults with its values.
        apply: |c, v| {
            if v.bool()? && c.flask.is_none() {
                c.flask = Some(FlaskBridge::default());
            }
            Ok(())
        },
        ..Setting::SERVE
    },
];

/// The tables of the settings file that are not one setting each, and where they are
/// described: read after the walk ([`super::resolve`]).
pub static SECTIONS: &[(&str, &str)] = &[
    ("access", "docs/forward-auth.md"),
    ("flask", "docs/flask.md"),
];

/// The setting named `name`.
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// `--session-store`: `database`, or a Redis URL (`redis://`, `rediss://` for TLS,
/// `unix://`, `redis+unix://`). The messages never quote the URL (it may hold a password).
fn session_store(url: String) -> Result<SessionStoreConfig, Refusal> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("redis" | "rediss" | "unix" | "redis+unix") => Ok(SessionStoreConfig::Redis(
            RedisConfig::new(DatabaseUrl::new(url)),
        )),
        _ if url.eq_ignore_ascii_case("database") => Ok(SessionStoreConfig::Database),
        _ => Err("expected `database` (the default) or a redis:// URL".into()),
    }
}

/// A size of the hashing pool: `min` to [`MAX_HASH_POOL`].
fn hash_pool(v: &Raw<'_>, min: usize) -> Result<usize, Refusal> {
    let max = u64::try_from(MAX_HASH_POOL).unwrap_or(u64::MAX);
    let n = v.number(u64::try_from(min).unwrap_or(0), max)?;
    Ok(usize::try_from(n).unwrap_or(MAX_HASH_POOL))
}

/// The origin of a public URL (`https://auth.example/base/` → `https://auth.example`),
/// lowercased; `None` for anything that is not an `http(s)` URL with a host.
fn public_origin(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next()?;
    let origin = format!("{scheme}://{}", authority.to_ascii_lowercase());
    is_origin(&origin).then_some(origin)
}

/// `scheme://host[:port]`, nothing after.
fn is_origin(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
}
