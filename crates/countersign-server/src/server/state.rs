//! The router's state: the engine, inside the extractors' [`AuthState`], and the site's
//! settings. Handlers read it; it knows no handler.

use std::sync::Arc;

use axum::extract::FromRef;
use countersign::auth::{Auth, Principal};
use countersign::clock::Clock;
use countersign::keys::KeyRing;
use countersign::mfa::passkey::PasskeyConfig;
use countersign::password::{Hasher, HashingPool};
use countersign::store::{EphemeralStore, StoreError, UserStore};
use countersign::user::UserId;
use countersign_axum::{AuthState, CookieConfig};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::settings::{Registration, ServeConfig};

/// The client's address (after the trusted-proxy rules) and `User-Agent`, as the library
/// extracts them.
pub use countersign_axum::{ClientAddr, UserAgent};

/// The router's state: the engine (inside the extractors' [`AuthState`]) and the site's
/// settings.
#[derive(Clone, Debug)]
pub struct App {
    /// What the `countersign-axum` extractors and CSRF guard use.
    pub auth: Arc<AuthState>,
    /// Everything else the handlers need.
    pub site: Arc<Site>,
}

/// Site settings the handlers read.
#[derive(Debug)]
pub struct Site {
    /// Whether `/register` is open.
    pub registration_open: bool,
    /// The Prometheus exposition of the process's metrics recorder, when one is installed.
    pub metrics: Option<PrometheusHandle>,
    /// The largest request body, bytes.
    pub max_body_bytes: usize,
    /// The Flask bridge (`--flask-bridge`), when on.
    pub flask: Option<countersign::flask::bridge::FlaskBridge>,
    /// Forward authentication: the access rules, the return-URL allow-list, assertions.
    pub forward: super::forward::ForwardAuth,
    /// The issuer an authenticator app shows above the account: the first public URL's
    /// host, else `countersign`.
    pub totp_issuer: String,
    /// Roles whose users must sign in with a second factor (`--require-mfa`).
    pub require_mfa: Vec<countersign::user::Role>,
}

impl FromRef<App> for Arc<AuthState> {
    fn from_ref(app: &App) -> Self {
        Arc::clone(&app.auth)
    }
}

impl App {
    /// The service for `config`, over these stores, keys and clock.
    ///
    /// # Errors
    /// When argon2 refuses the configured cost parameters.
    pub fn new(
        config: &ServeConfig,
        ring: KeyRing,
        users: Arc<dyn UserStore>,
        store: Arc<dyn EphemeralStore>,
        clock: Arc<dyn Clock>,
        metrics: Option<PrometheusHandle>,
    ) -> anyhow::Result<Self> {
        let pool = HashingPool::new(
            Hasher::new(config.hash_params)?,
            config.hash_workers,
            config.hash_queue,
        )?;
        let mut auth_config = config.auth.clone();
        if auth_config.passkeys.is_none() {
            auth_config.passkeys = passkey_relying_party(&config.public_urls);
        }
        let auth = Arc::new(Auth::new(ring, auth_config, users, store, pool, clock));
        let auth = Arc::new(AuthState {
            auth,
            cookies: {
                let cookies = if config.insecure_cookies {
                    CookieConfig::insecure()
                } else {
                    CookieConfig::secure()
                };
                match &config.forward.cookie_domain {
                    Some(domain) => cookies.with_domain(domain)?,
                    None => cookies,
                }
            },
            allowed_origins: config
                .allowed_origins
                .iter()
                .chain(&config.public_urls)
                .cloned()
                .collect(),
            trusted_proxies: config.trusted_proxies.clone(),
        });
        Ok(Self {
            auth,
            site: Arc::new(Site {
                registration_open: config.registration == Registration::Open,
                metrics,
                max_body_bytes: config.max_body_bytes,
                flask: config.flask.clone(),
                totp_issuer: totp_issuer(&config.public_urls),
                require_mfa: config.require_mfa.clone(),
                forward: super::forward::ForwardAuth::new(
                    config.forward.access.clone(),
                    &config.public_urls,
                    crate::redirect::ReturnTo::new(&config.public_urls, &config.forward.domains),
                ),
            }),
        })
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Auth> {
        &self.auth.auth
    }

    /// Whether `/register` is open.
    pub fn registration_open(&self) -> bool {
        self.site.registration_open
    }

    /// The user id of a principal: from the credential, or (for a token made elsewhere that
    /// names only a `username`, as the seeds' PyJWT tokens do) by name.
    ///
    /// # Errors
    /// When the user store fails.
    pub async fn user_id_of(&self, principal: &Principal) -> Result<Option<UserId>, StoreError> {
        if let Some(id) = principal.user_id {
            return Ok(Some(id));
        }
        Ok(self
            .engine()
            .user_by_name(&principal.username)
            .await?
            .map(|u| u.id))
    }
}

/// The passkey relying party of the public URLs: the first one's host is the RP ID and its
/// origin an allowed origin; each further public URL on that domain is another origin.
/// `None` (passkeys off, and logged) without a public URL, or when the first is not a
/// place browsers offer WebAuthn (an IP address, plain HTTP other than on localhost).
pub fn passkey_relying_party(public_urls: &[String]) -> Option<PasskeyConfig> {
    let Some(first) = public_urls.first() else {
        tracing::info!(
            "passkeys are off: they need a --public-url (https://, or http://localhost)"
        );
        return None;
    };
    let mut rp = match PasskeyConfig::from_url(first) {
        Ok(rp) => rp,
        Err(e) => {
            tracing::warn!("passkeys are off: {e}");
            return None;
        }
    };
    for url in &public_urls[1..] {
        match rp.clone().with_origin(url) {
            Ok(more) => rp = more,
            Err(e) => tracing::warn!("passkeys are not offered at {url}: {e}"),
        }
    }
    tracing::info!(rp_id = rp.rp_id(), origins = ?rp.origins(), "passkeys are on");
    Some(rp)
}

/// The host of the first public URL, else `countersign`: what an authenticator app shows
/// above the account name.
fn totp_issuer(public_urls: &[String]) -> String {
    public_urls
        .first()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "countersign".to_owned())
}
