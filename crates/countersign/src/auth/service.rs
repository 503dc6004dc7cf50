//! The service's state: the keys derived from the ring, the stores, the caches. Its
//! methods are in `auth/mod.rs` (construction, key reload, readiness) and in the modules
//! beside this one, one per topic; each of them imports the state from here.

use std::fmt;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;

use super::AuthConfig;
use super::cache::{Gate, TtlCache};
use crate::clock::{Clock, UnixTime};
use crate::invalidation::Broadcast;
use crate::jwt::TokenKeys;
use crate::keys::{KeyRing, Purpose, Subkey};
use crate::mfa::seal::Sealer;
use crate::password::HashingPool;
use crate::refresh::RefreshHasher;
use crate::session::{CookieSigner, SessionKey, SessionRecord};
use crate::setup::SetupToken;
use crate::store::{EphemeralStore, UserStore};
use crate::user::UserId;

/// What is derived from a key ring; swapped as a whole on reload.
pub(super) struct Keys {
    pub(super) ring: KeyRing,
    pub(super) cookies: CookieSigner,
    pub(super) refresh: RefreshHasher,
    pub(super) csrf: Vec<Subkey>,
    /// Seals TOTP secrets at rest.
    pub(super) mfa_secrets: Sealer,
    /// Seals second-factor challenges and WebAuthn ceremony state.
    pub(super) challenges: Sealer,
}

impl Keys {
    pub(super) fn new(ring: KeyRing) -> Self {
        Self {
            cookies: CookieSigner::new(&ring),
            refresh: RefreshHasher::new(&ring),
            csrf: ring.subkeys(Purpose::Csrf),
            mfa_secrets: Sealer::new(&ring, Purpose::MfaSecret),
            challenges: Sealer::new(&ring, Purpose::MfaChallenge),
            ring,
        }
    }
}

/// The authentication service.
pub struct Auth {
    pub(super) keys: ArcSwap<Keys>,
    /// The asymmetric signer and public keys, and whether HS256 verifies (default: HS256
    /// only); swapped on reload like `keys`.
    pub(super) token_keys: ArcSwap<TokenKeys>,
    pub(super) config: AuthConfig,
    pub(super) users: Arc<dyn UserStore>,
    pub(super) store: Arc<dyn EphemeralStore>,
    pub(super) pool: HashingPool,
    pub(super) clock: Arc<dyn Clock>,
    /// Where revocations are published, when the session store has a channel.
    pub(super) broadcast: Option<Arc<dyn Broadcast>>,
    /// Whether the caches may be used (see [`Receiver`](crate::invalidation::Receiver)).
    pub(super) gate: Arc<Gate>,
    pub(super) sessions: TtlCache<SessionKey, Option<Arc<SessionRecord>>>,
    pub(super) issued_before: TtlCache<UserId, Option<UnixTime>>,
    pub(super) denied: TtlCache<String, bool>,
    /// The setup link, once [`Auth::open_setup`] issued one.
    pub(super) setup: OnceLock<SetupToken>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("kids", &self.keys.load().ring.kids().collect::<Vec<_>>())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
