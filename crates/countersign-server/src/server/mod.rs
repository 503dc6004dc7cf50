//! `countersign serve`: the router and everything around it. Each part depends only on
//! those below it (`tests/it/architecture.rs` checks it):
//!
//! - [`router`](mod@router): the router and its layers;
//! - the handlers: [`pages`], [`api`], [`users`], [`ops`], [`forward`] (forward
//!   authentication), [`wellknown`] (the JWK Set, discovery), [`flask`] (the Flask bridge),
//!   [`mfa`] (second factors over the API), [`passkeys`] (WebAuthn), [`require_mfa`]
//!   (roles that must use a second factor), and the password login they share;
//! - [`state`]: what the handlers read (the engine, the site's settings); [`error`]: the
//!   JSON error answer and the messages several handlers give;
//! - [`envelope`]: request ids, access log, request metrics, security headers; middleware
//!   that knows none of the above;
//! - [`keys`]: the key ring, with the first-run key file;
//! - [`telemetry`]: logs (through [`batch_writer`]) and the metrics recorder.
//!
//! [`run`] starts it: keys, stores, router, listener; SIGHUP reloads the key ring without
//! dropping a request; SIGTERM (or Ctrl-C) stops accepting connections, lets the requests
//! in flight finish, and returns.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use countersign::auth::Auth;
use countersign::clock::{Clock, SystemClock};
use countersign::hash_costs;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::config::Env;
use crate::settings::ServeConfig;
use crate::signing::{self, SigningSource};
use crate::storage::Stores;

pub mod api;
pub mod batch_writer;
pub mod envelope;
pub mod error;
pub mod flask;
pub mod forward;
pub mod keys;
mod login;
pub mod mfa;
pub mod ops;
pub mod pages;
pub mod passkeys;
pub mod require_mfa;
pub mod router;
pub mod state;
pub mod telemetry;
pub mod users;
pub mod wellknown;

pub use router::router;
pub use state::App;

use keys::KeySource;

/// Run the server with `config` until SIGTERM or SIGINT, then drain and return.
///
/// `env` is read for the keys, at start and again on SIGHUP.
///
/// # Errors
/// A refused or missing key (the message names `countersign keygen`), a database that
/// cannot be opened or migrated, an address that cannot be bound.
pub async fn run(
    config: ServeConfig,
    env: &dyn Env,
    metrics: Option<PrometheusHandle>,
) -> anyhow::Result<()> {
    let (ring, source) = keys::load_ring(
        env,
        config.secret_key_file.as_deref(),
        &config.storage.data_dir,
        config.production,
    )?;
    match &source {
        KeySource::Configured => {}
        KeySource::Generated(path) | KeySource::Reused(path) => {
            let verb = if matches!(source, KeySource::Generated(_)) {
                "generated a development secret key in"
            } else {
                "using the development secret key generated earlier in"
            };
            tracing::warn!(
                "{verb} {}: fine on this machine, but production must set SECRET_KEY or \
                 SECRET_KEY_FILE (make one with `countersign keygen`) and run with --production",
                path.display()
            );
            if keys::is_exposed(path) {
                tracing::warn!(
                    "the key file {} can be read by other users: chmod 600 it",
                    path.display()
                );
            }
        }
    }
    if config.insecure_cookies {
        tracing::warn!(
            "--insecure-cookies: the session cookie is sent without Secure and the __Host- \
             prefix, for plain-HTTP development only"
        );
    }
    if let Some(warning) = plain_http_warning(&config) {
        tracing::warn!("{warning}");
    }

    // Signal handlers first: SIGHUP's default action would end the process.
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;

    // Read before anything is opened: a bad signing key stops the start here.
    let signing_config = signing::SigningConfig::resolve(&config.signing, env)?;
    let signing = signing_config.load()?;
    if let SigningSource::File(path) = &signing_config.source
        && signing::is_exposed(path)
    {
        tracing::warn!(
            "the signing key file {} can be read by other users: chmod 600 it",
            path.display()
        );
    }

    let stores = Stores::open(&config.storage).await?;
    tracing::info!(
        database = %stores.describe(),
        session_store = %stores.describe_sessions(),
        "database ready"
    );
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let app = App::new(
        &config,
        ring,
        stores.users(),
        stores.sessions(),
        Arc::clone(&clock),
        metrics,
    )?;
    tracing::info!(
        kids = ?app.engine().kids(),
        registration = ?config.registration,
        hash_workers = config.hash_workers,
        hash_queue = config.hash_queue,
        "key ring loaded"
    );
    // The password-hash formats the users have set what every failed login costs (the
    // equal-time rule, docs/flask.md): surveyed before the first login, then every ten
    // minutes.
    let survey = app
        .engine()
        .survey_password_hashes()
        .await
        .context("cannot survey the stored password hashes")?;
    log_survey(&survey);
    let surveyor = tokio::spawn(
        Arc::clone(app.engine()).keep_surveying_password_hashes(hash_costs::SURVEY_EVERY),
    );
    let sweepers = stores.spawn_sweepers(clock);
    // Revocations made on other instances reach this one's cache (Redis or PostgreSQL
    // sessions); until subscribed, requests read the store.
    let invalidations = stores.spawn_invalidation_listener(
        Arc::clone(app.engine()) as Arc<dyn countersign::invalidation::Receiver>
    );

    let listener = TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let local = listener.local_addr()?;
    // The issuer (discovery's, and `iss` of signed tokens): the first public URL, else the
    // address we listen on. Set before the first request can arrive.
    let issuer = config
        .public_urls
        .first()
        .cloned()
        .unwrap_or_else(|| format!("http://{}", link_addr(local)));
    let token_keys = signing.token_keys(Some(issuer.clone()))?;
    tracing::info!(
        issuer,
        signing = %token_keys.signing_algorithm(),
        published = ?token_keys.public().keys().map(|k| k.kid()).collect::<Vec<_>>(),
        hs256_tokens = if token_keys.accepts_hs256() { "accept" } else { "refuse" },
        "token signing keys loaded"
    );
    app.engine().set_token_keys(token_keys);
    tracing::info!("listening on http://{local}");
    // While no user exists: the one-time link to make the first admin in a browser. The one
    // place a secret is shown: the operator's own console (the access log never records a
    // query string).
    let setup = app
        .engine()
        .open_setup()
        .await
        .context("cannot open the first-run setup link")?;
    if let Some(secret) = setup {
        // Behind a proxy the first public URL is where a browser reaches us.
        let base = config
            .public_urls
            .first()
            .cloned()
            .unwrap_or_else(|| format!("http://{}", link_addr(local)));
        tracing::warn!(
            "first run: create the admin at {base}/setup?token={} (valid for 1 hour, once; \
             or run `countersign user add NAME --role admin --password-stdin`)",
            secret.expose()
        );
    }

    let engine = Arc::clone(app.engine());
    let site = Arc::clone(&app.site);
    let server = axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown(terminate, interrupt));
    let result = tokio::select! {
        served = server.into_future() => served.context("the server failed"),
        never = reload_on_hangup(&mut hangup, &engine, &site.forward, env, &config) => match never {},
    };
    for task in sweepers.into_iter().chain(invalidations).chain([surveyor]) {
        task.abort();
    }
    stores.close().await;
    tracing::info!("stopped");
    result
}

/// What the start's survey of password hashes found, for the operator.
fn log_survey(survey: &hash_costs::Survey) {
    let others: u64 = survey.users_by_class.iter().map(|(_, n)| n).sum();
    tracing::info!(
        classes = %hash_costs::ClassList(&survey.budget),
        users_with_other_hashes = others,
        "a failed login does one check of each password hash class"
    );
    if survey.unchecked > 0 {
        tracing::warn!(
            users = survey.unchecked,
            "stored password hashes that cannot be checked (unknown format, over the cost \
             caps): these users cannot log in until their password is set again"
        );
    }
    if survey.over_caps > 0 {
        tracing::warn!(
            users = survey.over_caps,
            "argon2 hashes over the import caps: checked at their users' logins, but a \
             failed login of theirs costs more than others'"
        );
    }
}

/// The address to put in a link to this server: a wildcard bind (`0.0.0.0`, `::`) is
/// reached at the loopback address of its family.
fn link_addr(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown(mut terminate: Signal, mut interrupt: Signal) {
    let name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!("{name}: finishing the requests in flight, then stopping");
}

/// On each SIGHUP, read the keys again (the same sources as at start) and swap the ring,
/// and the access rules of the settings file.
/// A bad new key is logged and the current ring kept: a typo must not take the server
/// down. Requests in flight finish with the ring they began with.
async fn reload_on_hangup(
    hangup: &mut Signal,
    auth: &Auth,
    forward: &forward::ForwardAuth,
    env: &dyn Env,
    config: &ServeConfig,
) -> std::convert::Infallible {
    loop {
        if hangup.recv().await.is_none() {
            // The signal stream ended (never on Unix); stop listening for it.
            std::future::pending::<()>().await;
        }
        match keys::load_ring(
            env,
            config.secret_key_file.as_deref(),
            &config.storage.data_dir,
            config.production,
        ) {
            Ok((ring, _)) => {
                auth.set_keys(ring);
                tracing::info!(kids = ?auth.kids(), "SIGHUP: key ring reloaded");
            }
            Err(e) => tracing::error!(
                error = %e,
                "SIGHUP: the new keys were refused; still using the current ones"
            ),
        }
        match config.forward.reload_rules() {
            Ok(rules) => {
                tracing::info!(rules = rules.rules().len(), "SIGHUP: access rules reloaded");
                forward.set_rules(rules);
            }
            Err(e) => tracing::error!(
                error = %e,
                "SIGHUP: the new access rules were refused; still using the current ones"
            ),
        }
        let issuer = auth.token_keys().issuer().map(str::to_owned);
        let reloaded = signing::SigningConfig::resolve(&config.signing, env)
            .and_then(|s| s.load())
            .and_then(|loaded| loaded.token_keys(issuer));
        match reloaded {
            Ok(token_keys) => {
                tracing::info!(
                    signing = %token_keys.signing_algorithm(),
                    published = ?token_keys.public().keys().map(|k| k.kid()).collect::<Vec<_>>(),
                    "SIGHUP: token signing keys reloaded"
                );
                auth.set_token_keys(token_keys);
            }
            Err(e) => tracing::error!(
                error = %e,
                "SIGHUP: the new signing keys were refused; still using the current ones"
            ),
        }
    }
}

/// The startup warning for a configuration in which browsers cannot keep the cookies:
/// `Secure` cookies served over plain HTTP on an address other than loopback (browsers
/// treat only `localhost` and loopback addresses as secure without TLS), with no TLS proxy
/// in front (no trusted proxies, no `https` public URL).
pub fn plain_http_warning(config: &ServeConfig) -> Option<String> {
    let behind_tls = !config.trusted_proxies.is_empty()
        || config
            .public_urls
            .iter()
            .any(|url| url.starts_with("https://"));
    (!config.insecure_cookies && !config.addr.ip().is_loopback() && !behind_tls).then(|| {
        format!(
            "serving plain HTTP on {} with Secure cookies: a browser that reaches this \
             server at an address other than localhost or 127.0.0.1 drops the session and \
             CSRF cookies and cannot log in. Put TLS in front (a reverse proxy, with \
             --trusted-proxies PROXY_ADDR and --public-url https://HOST) or, for development \
             only, add --insecure-cookies",
            config.addr
        )
    })
}

#[cfg(test)]
mod plain_http_tests {
    use super::*;

    fn config(addr: &str) -> ServeConfig {
        ServeConfig {
            addr: addr
                .parse()
                .unwrap_or_else(|_| unreachable!("test address")),
            ..ServeConfig::default()
        }
    }

    #[test]
    fn warns_only_when_browsers_would_drop_the_cookies() {
        assert_eq!(plain_http_warning(&config("127.0.0.1:8080")), None);
        assert_eq!(plain_http_warning(&config("[::1]:8080")), None);
        let warning = plain_http_warning(&config("0.0.0.0:8080")).unwrap_or_default();
        assert!(warning.contains("--insecure-cookies"), "{warning}");
        assert!(warning.contains("--trusted-proxies"), "{warning}");
        assert!(warning.contains("0.0.0.0:8080"), "{warning}");
        assert!(plain_http_warning(&config("192.0.2.10:80")).is_some());
        let mut c = config("0.0.0.0:8080");
        c.insecure_cookies = true;
        assert_eq!(plain_http_warning(&c), None);
        let mut c = config("0.0.0.0:8080");
        c.trusted_proxies = "127.0.0.1".parse().unwrap_or_default();
        assert_eq!(plain_http_warning(&c), None);
        let mut c = config("0.0.0.0:8080");
        c.public_urls = vec!["https://auth.example".to_owned()];
        assert_eq!(plain_http_warning(&c), None);
        c.public_urls = vec!["http://auth.example".to_owned()];
        assert!(plain_http_warning(&c).is_some());
    }
}
