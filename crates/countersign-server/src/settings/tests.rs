//! The settings through their layers: flags over the environment over the file over the
//! defaults, and every error naming where the bad value came from.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser as _;
use countersign::auth::ThrottlePolicy;
use countersign::flask::bridge::{FlaskBridge, UserKey};
use countersign::password::OWASP_PARAMS;

use super::*;
use crate::access::{AccessRules, Policy};
use crate::cli::{Cli, Command, ServeArgs};

fn serve_args(args: &[&str]) -> ServeArgs {
    let argv = ["countersign", "serve"].iter().chain(args);
    match Cli::try_parse_from(argv).unwrap().command {
        Command::Serve(a) => *a,
        _ => unreachable!(),
    }
}

fn env(vars: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
    vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

fn resolve(
    args: &[&str],
    vars: &[(&'static str, &str)],
    toml: &str,
) -> Result<ServeConfig, SettingsError> {
    let file = SettingsFile::parse(Path::new("/etc/cs/countersign.toml"), toml)?;
    ServeConfig::resolve_with_file(&serve_args(args), &env(vars), &file)
}

#[test]
fn defaults() {
    let c = ServeConfig::resolve(&serve_args(&[]), &env(&[])).unwrap();
    assert_eq!(c.addr.to_string(), DEFAULT_ADDR);
    assert_eq!(c.storage.data_dir, PathBuf::from("data"));
    assert_eq!(c.storage.database_url, None);
    assert!(!c.production && !c.insecure_cookies);
    assert_eq!(c.registration, Registration::Closed);
    assert_eq!(c.auth.issuance.ttl_secs, 900);
    assert_eq!(c.auth.sessions.idle_secs, 1800);
    assert_eq!(c.auth.sessions.absolute_secs, 43_200);
    assert_eq!(c.hash_queue, 64);
    assert_eq!(c.hash_params, OWASP_PARAMS);
    assert_eq!(c.auth.cache_ttl, Duration::from_secs(1));
}

#[test]
fn flags_beat_env_beat_file_beat_defaults() {
    let file = "addr = \"127.0.0.1:3\"\nregistration = \"open\"\nsession_idle = 60\n\
                access_ttl = \"2m\"\nhash_queue = 5";
    let vars = [
        ("COUNTERSIGN_ADDR", "127.0.0.1:2"),
        ("COUNTERSIGN_ACCESS_TTL", "3m"),
    ];
    let c = resolve(&["--addr", "127.0.0.1:1"], &vars, file).unwrap();
    assert_eq!(c.addr.port(), 1);
    assert_eq!(c.auth.issuance.ttl_secs, 180);
    assert_eq!(c.registration, Registration::Open);
    assert_eq!(c.auth.sessions.idle_secs, 60);
    assert_eq!(c.hash_queue, 5);
    let c = resolve(&[], &vars, file).unwrap();
    assert_eq!(c.addr.port(), 2);
    let c = resolve(&["--access-ttl", "1h"], &[], file).unwrap();
    assert_eq!((c.addr.port(), c.auth.issuance.ttl_secs), (3, 3600));
}

#[test]
fn file_paths_are_relative_to_the_file() {
    let c = resolve(&[], &[], "data_dir = \"state\"").unwrap();
    assert_eq!(c.storage.data_dir, PathBuf::from("/etc/cs/state"));
    let c = resolve(
        &[],
        &[("COUNTERSIGN_DATA_DIR", "here")],
        "data_dir = \"state\"",
    )
    .unwrap();
    assert_eq!(c.storage.data_dir, PathBuf::from("here"));
}

#[test]
fn errors_name_their_origin() {
    let e = resolve(&["--addr", "nope"], &[], "").unwrap_err();
    assert_eq!(e.to_string().split(':').next(), Some("--addr"), "{e}");
    let e = resolve(&[], &[("COUNTERSIGN_HASH_WORKERS", "0")], "").unwrap_err();
    assert!(
        e.to_string().starts_with("COUNTERSIGN_HASH_WORKERS: "),
        "{e}"
    );
    let e = resolve(&[], &[], "session_absolute = 0").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/etc/cs/countersign.toml: session_absolute"),
        "{e}"
    );
    let e = resolve(&[], &[("COUNTERSIGN_INSECURE_COOKIES", "maybe")], "").unwrap_err();
    assert!(e.to_string().contains("true or false"), "{e}");
    let e = resolve(&[], &[], "adr = \"x\"").unwrap_err();
    assert!(matches!(e, SettingsError::ParseFile { .. }), "{e}");
    assert!(e.to_string().contains("adr"), "{e}");
}

#[test]
fn production_from_flag_env_or_file() {
    assert!(resolve(&["--production"], &[], "").unwrap().production);
    assert!(
        resolve(&[], &[("COUNTERSIGN_ENV", "production")], "")
            .unwrap()
            .production
    );
    assert!(
        resolve(&[], &[], "env = \"production\"")
            .unwrap()
            .production
    );
    assert!(
        !resolve(
            &[],
            &[("COUNTERSIGN_ENV", "development")],
            "env = \"production\""
        )
        .unwrap()
        .production
    );
    assert!(resolve(&[], &[("COUNTERSIGN_ENV", "staging")], "").is_err());
    let e = resolve(&["--production", "--insecure-cookies"], &[], "").unwrap_err();
    assert!(e.to_string().starts_with("--insecure-cookies: "), "{e}");
}

#[test]
fn redis_session_store() {
    let c = resolve(
        &["--session-store", "redis://:hunter2@127.0.0.1:6379/0"],
        &[],
        "",
    )
    .unwrap();
    let SessionStoreConfig::Redis(r) = &c.storage.session_store else {
        panic!("{c:?}")
    };
    assert_eq!(r.url.expose(), "redis://:hunter2@127.0.0.1:6379/0");
    assert_eq!(r.key_prefix, DEFAULT_REDIS_PREFIX);
    assert_eq!(r.timeout, DEFAULT_REDIS_TIMEOUT);
    assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");

    // Prefix and timeout through the layers.
    let c = resolve(
        &["--redis-timeout", "250ms"],
        &[
            ("COUNTERSIGN_SESSION_STORE", "redis://cache:6379"),
            ("COUNTERSIGN_REDIS_PREFIX", "env:"),
        ],
        "redis_prefix = \"file:\"\nredis_timeout = 3",
    )
    .unwrap();
    let SessionStoreConfig::Redis(r) = &c.storage.session_store else {
        panic!("{c:?}")
    };
    assert_eq!(r.key_prefix, "env:");
    assert_eq!(r.timeout, Duration::from_millis(250));
    let c = resolve(
        &[],
        &[],
        "session_store = \"redis://cache\"\nredis_timeout = \"2s\"",
    )
    .unwrap();
    let SessionStoreConfig::Redis(r) = &c.storage.session_store else {
        panic!("{c:?}")
    };
    assert_eq!(r.timeout, Duration::from_secs(2));

    let c = resolve(
        &[
            "--session-store",
            "rediss://:hunter2@x",
            "--redis-ca-file",
            "ca.pem",
        ],
        &[],
        "",
    )
    .unwrap();
    let SessionStoreConfig::Redis(r) = &c.storage.session_store else {
        panic!("{c:?}")
    };
    assert_eq!(r.ca_file.as_deref(), Some(Path::new("ca.pem")));
    assert!(!format!("{c:?}").contains("hunter2"));
    let e = resolve(&["--session-store", "memcached://x"], &[], "").unwrap_err();
    assert!(matches!(e, SettingsError::Invalid { .. }), "{e}");
    let e = resolve(
        &[],
        &[("COUNTERSIGN_REDIS_TIMEOUT", "0")],
        "session_store = \"redis://x\"",
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("COUNTERSIGN_REDIS_TIMEOUT: "),
        "{e}"
    );
    let c = resolve(&["--session-store", "database"], &[], "").unwrap();
    assert_eq!(c.storage.session_store, SessionStoreConfig::Database);
}

#[test]
fn db_max_connections() {
    assert_eq!(
        resolve(&[], &[], "").unwrap().storage.db_max_connections,
        None
    );
    let c = resolve(
        &["--db-max-connections", "7"],
        &[("COUNTERSIGN_DB_MAX_CONNECTIONS", "8")],
        "db_max_connections = 9",
    )
    .unwrap();
    assert_eq!(c.storage.db_max_connections, Some(7));
    let c = resolve(&[], &[("COUNTERSIGN_DB_MAX_CONNECTIONS", "8")], "").unwrap();
    assert_eq!(c.storage.db_max_connections, Some(8));
    let c = resolve(&[], &[], "db_max_connections = 9").unwrap();
    assert_eq!(c.storage.db_max_connections, Some(9));
    let e = resolve(&["--db-max-connections", "0"], &[], "").unwrap_err();
    assert!(e.to_string().starts_with("--db-max-connections: "), "{e}");
    let e = resolve(&[], &[("COUNTERSIGN_DB_MAX_CONNECTIONS", "x")], "").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("COUNTERSIGN_DB_MAX_CONNECTIONS: "),
        "{e}"
    );
}

#[test]
fn origins() {
    let c = resolve(
        &[],
        &[(
            "COUNTERSIGN_ALLOWED_ORIGINS",
            "https://a.example, http://b.example:8080",
        )],
        "",
    )
    .unwrap();
    assert_eq!(
        c.allowed_origins,
        ["https://a.example", "http://b.example:8080"]
    );
    assert!(resolve(&["--allowed-origin", "https://a.example/path"], &[], "").is_err());
    assert!(resolve(&["--allowed-origin", "a.example"], &[], "").is_err());
}

#[test]
fn public_urls_through_the_layers() {
    let c = resolve(&[], &[], "").unwrap();
    assert!(c.public_urls.is_empty());
    let c = resolve(
        &[
            "--public-url",
            "HTTPS://Auth.Example/",
            "--public-url",
            "http://127.0.0.1:8080/base",
        ],
        &[("COUNTERSIGN_PUBLIC_URL", "https://env.example")],
        "",
    )
    .unwrap();
    assert_eq!(
        c.public_urls,
        ["https://auth.example", "http://127.0.0.1:8080"]
    );
    let c = resolve(
        &[],
        &[(
            "COUNTERSIGN_PUBLIC_URL",
            "https://a.example, https://b.example",
        )],
        "",
    )
    .unwrap();
    assert_eq!(c.public_urls, ["https://a.example", "https://b.example"]);
    let c = resolve(&[], &[], "public_url = [\"https://file.example\"]").unwrap();
    assert_eq!(c.public_urls, ["https://file.example"]);
    let e = resolve(&["--public-url", "auth.example"], &[], "").unwrap_err();
    assert!(e.to_string().starts_with("--public-url: "), "{e}");
    let e = resolve(&[], &[("COUNTERSIGN_PUBLIC_URL", "ftp://x.example")], "").unwrap_err();
    assert!(e.to_string().starts_with("COUNTERSIGN_PUBLIC_URL: "), "{e}");
}

#[test]
fn trusted_proxies_through_the_layers() {
    let c = resolve(&[], &[], "").unwrap();
    assert!(c.trusted_proxies.is_empty(), "none by default");
    let c = resolve(&["--trusted-proxies", "127.0.0.1/32,10.0.0.0/8"], &[], "").unwrap();
    assert_eq!(c.trusted_proxies.blocks().len(), 2);
    assert!(c.trusted_proxies.contains("10.9.8.7".parse().unwrap()));
    let c = resolve(
        &[],
        &[("COUNTERSIGN_TRUSTED_PROXIES", "::1, 127.0.0.1")],
        "",
    )
    .unwrap();
    assert_eq!(c.trusted_proxies.blocks().len(), 2);
    let c = resolve(&[], &[], "trusted_proxies = [\"192.0.2.0/24\"]").unwrap();
    assert!(c.trusted_proxies.contains("192.0.2.9".parse().unwrap()));
    let e = resolve(&["--trusted-proxies", "127.0.0.1/40"], &[], "").unwrap_err();
    assert!(e.to_string().starts_with("--trusted-proxies: "), "{e}");
    assert!(e.to_string().contains("127.0.0.1/40"), "{e}");
    let e = resolve(&[], &[("COUNTERSIGN_TRUSTED_PROXIES", "everyone")], "").unwrap_err();
    assert!(
        e.to_string().starts_with("COUNTERSIGN_TRUSTED_PROXIES: "),
        "{e}"
    );
}

#[test]
fn registration_limit_through_the_layers() {
    let c = resolve(&[], &[], "").unwrap();
    assert_eq!(c.auth.throttle, ThrottlePolicy::default());
    assert_eq!(c.auth.throttle.registrations_per_address, 10);
    let vars = [("COUNTERSIGN_REGISTRATION_LIMIT", "4")];
    let file = "registration_limit = 5";
    let c = resolve(&["--registration-limit", "3"], &vars, file).unwrap();
    assert_eq!(c.auth.throttle.registrations_per_address, 3);
    assert_eq!(c.auth.throttle.registrations_per_address, 3);
    let c = resolve(&[], &vars, file).unwrap();
    assert_eq!(c.auth.throttle.registrations_per_address, 4);
    let c = resolve(&[], &[], file).unwrap();
    assert_eq!(c.auth.throttle.registrations_per_address, 5);
    // The other limits keep their defaults.
    assert_eq!(
        c.auth.throttle.per_account,
        ThrottlePolicy::default().per_account
    );

    let e = resolve(&["--registration-limit", "0"], &[], "").unwrap_err();
    assert!(e.to_string().starts_with("--registration-limit: "), "{e}");
    let e = resolve(&[], &[("COUNTERSIGN_REGISTRATION_LIMIT", "many")], "").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("COUNTERSIGN_REGISTRATION_LIMIT: "),
        "{e}"
    );
    let e = resolve(&[], &[], "registration_limit = 0").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/etc/cs/countersign.toml: registration_limit"),
        "{e}"
    );
}

#[test]
fn database_url_is_never_shown() {
    let c = resolve(&["--database-url", "postgres://u:hunter2@db/x"], &[], "").unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
    assert_eq!(
        c.storage.database_url.unwrap().expose(),
        "postgres://u:hunter2@db/x"
    );
}

#[test]
fn login_limits_through_the_layers() {
    let c = resolve(&[], &[], "").unwrap();
    assert_eq!(c.auth.throttle, ThrottlePolicy::default());
    assert_eq!(
        (c.auth.throttle.per_account, c.auth.throttle.per_address),
        (5, 50)
    );
    assert_eq!(
        (c.auth.throttle.window_secs, c.auth.throttle.max_window_secs),
        (900, 86_400)
    );
    let file = "login_limit = 3\nlogin_address_limit = 30\nlogin_window = \"5m\"\n\
                login_max_window = \"1h\"";
    let c = resolve(&[], &[], file).unwrap();
    assert_eq!(
        (
            c.auth.throttle.per_account,
            c.auth.throttle.per_address,
            c.auth.throttle.window_secs,
            c.auth.throttle.max_window_secs
        ),
        (3, 30, 300, 3600)
    );
    let c = resolve(
        &["--login-limit", "7", "--login-window", "1m"],
        &[("COUNTERSIGN_LOGIN_ADDRESS_LIMIT", "70")],
        file,
    )
    .unwrap();
    assert_eq!(
        (
            c.auth.throttle.per_account,
            c.auth.throttle.per_address,
            c.auth.throttle.window_secs
        ),
        (7, 70, 60)
    );
    // The engine is configured with exactly these limits.
    assert_eq!(c.auth.throttle.per_account, 7);
    // The registration limit is its own setting.
    assert_eq!(c.auth.throttle.registrations_per_address, 10);
}

#[test]
fn bad_login_limits_name_their_origin() {
    let e = resolve(&["--login-limit", "0"], &[], "").unwrap_err();
    assert!(e.to_string().starts_with("--login-limit"), "{e}");
    let e = resolve(&[], &[("COUNTERSIGN_LOGIN_LIMIT", "many")], "").unwrap_err();
    assert!(e.to_string().starts_with("COUNTERSIGN_LOGIN_LIMIT"), "{e}");
    let e = resolve(&[], &[], "login_window = \"1h\"\nlogin_max_window = \"5m\"").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/etc/cs/countersign.toml: login_max_window"),
        "{e}"
    );
}

#[test]
fn rules_and_default_policy_through_the_layers() {
    let file = "default_policy = \"deny\"\n[[access]]\nhost = \"a.test\"\npolicy = \"public\"";
    let c = resolve(&[], &[], file).unwrap();
    assert_eq!(c.forward.access.rules().len(), 1);
    assert_eq!(c.forward.access.default_policy(), &Policy::Deny);
    let c = resolve(&[], &[("COUNTERSIGN_DEFAULT_POLICY", "public")], file).unwrap();
    assert_eq!(c.forward.access.default_policy(), &Policy::Public);
    let c = resolve(&["--default-policy", "role:ops"], &[], file).unwrap();
    assert_eq!(
        c.forward.access.default_policy(),
        &Policy::Role("ops".to_owned())
    );
    let c = resolve(&[], &[], "").unwrap();
    assert_eq!(c.forward.access, AccessRules::default());
}

#[test]
fn a_bad_rule_is_a_startup_error_naming_it() {
    let file = "[[access]]\npolicy = \"public\"\n[[access]]\nname = \"ops\"\npath = \"/ops\"\npolicy = \"role:\"";
    let e = resolve(&[], &[], file).unwrap_err().to_string();
    assert!(
        e.starts_with("/etc/cs/countersign.toml: access: access rule 2 (\"ops\"): "),
        "{e}"
    );
    let e = resolve(&["--default-policy", "allow"], &[], "")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("--default-policy: "), "{e}");
    let e = resolve(&[], &[], "[[access]]\npolicy = \"deny\"\nhots = \"x\"").unwrap_err();
    assert!(e.to_string().contains("hots"), "{e}");
}

#[test]
fn forward_auth_domains() {
    let c = resolve(
        &["--forward-auth-domains", "example.test,*.example.test"],
        &[],
        "",
    )
    .unwrap();
    assert_eq!(c.forward.domains.len(), 2);
    let c = resolve(&[], &[("COUNTERSIGN_FORWARD_AUTH_DOMAINS", "a.test")], "").unwrap();
    assert_eq!(c.forward.domains[0].to_string(), "a.test");
    let c = resolve(&[], &[], "forward_auth_domains = [\"*.b.test\"]").unwrap();
    assert_eq!(c.forward.domains[0].to_string(), "*.b.test");
    let e = resolve(&["--forward-auth-domains", "https://a.test"], &[], "").unwrap_err();
    assert!(e.to_string().starts_with("--forward-auth-domains: "), "{e}");
}

#[test]
fn cookie_domain() {
    let c = resolve(
        &[
            "--cookie-domain",
            "Example.Test",
            "--public-url",
            "https://auth.example.test",
        ],
        &[],
        "",
    )
    .unwrap();
    assert_eq!(c.forward.cookie_domain.as_deref(), Some("example.test"));
    let c = resolve(&[], &[], "cookie_domain = \".example.test\"").unwrap();
    assert_eq!(c.forward.cookie_domain.as_deref(), Some("example.test"));
    for bad in [
        "*.example.test",
        "example.test:443",
        "https://example.test",
        "127.0.0.1",
    ] {
        let e = resolve(&["--cookie-domain", bad], &[], "").unwrap_err();
        assert!(e.to_string().starts_with("--cookie-domain: "), "{bad}: {e}");
    }
    let e = resolve(
        &[
            "--cookie-domain",
            "example.test",
            "--public-url",
            "https://auth.other.test",
        ],
        &[],
        "",
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("not within the cookie domain"),
        "{e}"
    );
}

#[test]
fn reload_reads_the_file_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("countersign.toml");
    std::fs::write(&path, "[[access]]\npolicy = \"deny\"").unwrap();
    let rules = rules_in(&path, None).unwrap();
    assert_eq!(rules.rules().len(), 1);
    std::fs::write(&path, "[[access]]\npolicy = \"nope\"").unwrap();
    let e = rules_in(&path, None).unwrap_err();
    assert!(e.to_string().contains("access rule 1"), "{e}");
    std::fs::write(&path, "default_policy = \"public\"").unwrap();
    assert_eq!(
        rules_in(&path, Some("deny")).unwrap().default_policy(),
        &Policy::Deny
    );
    assert_eq!(
        rules_in(&path, None).unwrap().default_policy(),
        &Policy::Public
    );
}

#[test]
fn flask_bridge_off_by_default_on_by_flag_env_or_table() {
    assert_eq!(resolve(&[], &[], "").unwrap().flask, None);
    let on = Some(FlaskBridge::default());
    assert_eq!(resolve(&["--flask-bridge"], &[], "").unwrap().flask, on);
    let vars = [("COUNTERSIGN_FLASK_BRIDGE", "true")];
    assert_eq!(resolve(&[], &vars, "").unwrap().flask, on);
    let vars = [("COUNTERSIGN_FLASK_BRIDGE", "false")];
    assert_eq!(resolve(&[], &vars, "").unwrap().flask, None);
    // The table turns it on with its values, whatever the flag says.
    let c = resolve(&["--flask-bridge"], &[], "[flask]\nuser_key = \"_user_id\"").unwrap();
    assert_eq!(c.flask.map(|f| f.user_key), Some(UserKey::FlaskLogin));
    let e = resolve(&[], &[("COUNTERSIGN_FLASK_BRIDGE", "maybe")], "").unwrap_err();
    assert!(
        e.to_string().starts_with("COUNTERSIGN_FLASK_BRIDGE: "),
        "{e}"
    );
    let e = resolve(&[], &[], "[flask]\nmax_age = 0").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/etc/cs/countersign.toml: flask.max_age: "),
        "{e}"
    );
}

/// A default the reference shows as a value is what the resolver leaves when nothing sets
/// the setting: reading that value changes nothing.
#[test]
fn the_documented_defaults_are_the_defaults() {
    let default = format!("{:?}", resolve(&[], &[], "").unwrap());
    for s in SETTINGS {
        let Shown::Value(text) = s.default else {
            continue;
        };
        let mut c = resolve(&[], &[], "").unwrap();
        let value = toml::Value::String(text.to_owned());
        (s.apply)(&mut c, &raw::Raw::File(&value, Path::new(""))).unwrap();
        assert_eq!(format!("{c:?}"), default, "--{}'s default {text:?}", s.flag);
    }
}

/// Every setting's names are its own: no two settings share a flag, a variable or a key.
#[test]
fn no_two_settings_share_a_name() {
    let flags: Vec<&str> = SETTINGS.iter().map(|s| s.flag).collect();
    let envs: Vec<&str> = SETTINGS.iter().filter_map(|s| s.env).collect();
    let keys: Vec<&str> = SETTINGS
        .iter()
        .flat_map(|s| s.keys.iter().copied())
        .collect();
    for list in [&flags, &envs, &keys] {
        let unique: std::collections::BTreeSet<&&str> = list.iter().collect();
        assert_eq!(unique.len(), list.len(), "{list:?}");
    }
}

#[test]
fn storage_settings_resolve_alone() {
    let argv = ["countersign", "migrate", "--db-max-connections", "3"];
    let Command::Migrate(args) = Cli::try_parse_from(argv).unwrap().command else {
        unreachable!()
    };
    let c = StorageConfig::resolve(&args, &env(&[("COUNTERSIGN_DATA_DIR", "d")])).unwrap();
    assert_eq!(
        (c.db_max_connections, c.data_dir),
        (Some(3), PathBuf::from("d"))
    );
    // `serve`'s own settings are not read: a bad one does not stop `migrate`.
    assert!(StorageConfig::resolve(&args, &env(&[("COUNTERSIGN_ADDR", "nope")])).is_ok());
}
