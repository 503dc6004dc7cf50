//! Asymmetric signing keys (`docs/keys.md` "Signing keys"): one PEM file, or a key
//! directory with staged rotation, shared by every instance that points at it.
//!
//! - `SIGNING_KEY_FILE` (or `--signing-key-file`): one PKCS#8 PEM key; it signs and is the
//!   one key published.
//! - `SIGNING_KEY_DIR` (or `--signing-key-dir`): a directory `countersign keys init` made:
//!
//!   ```text
//!   DIR/keys.json      the state: current kid, staged next kid and when, retired public
//!                      keys with how long to keep them, the JWK Set max-age
//!   DIR/<kid>.pem      the private key of the current key, and of the staged one
//!   ```
//!
//!   `keys rotate --stage` adds a next key (published, signs nothing); `keys rotate
//!   --promote` makes it current once the JWK Set max-age has passed since staging, keeps
//!   the old key's public half in the state as retired, and deletes its private key;
//!   `keys prune` drops retired keys whose tokens have all expired. Every change writes
//!   the new state to a temporary file and renames it over `keys.json`, so a server
//!   reading the directory (at start, on SIGHUP) sees the old state or the new one,
//!   never half of each; the commands take a lock on `DIR/.lock` so two operators cannot
//!   interleave.
//!
//! `COUNTERSIGN_HS256_TOKENS` (or `--hs256-tokens`) `accept` (the default) keeps HS256
//! tokens from `SECRET_KEY` verifying, for the migration; `refuse` ends that.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use countersign::clock::UnixTime;
use countersign::jwt::{
    Algorithm, DEFAULT_JWKS_MAX_AGE_SECS, PublicKeys, Signer, TokenKeys, TokenKeysError,
};
use countersign::signing::{JwkError, PublicKey, SigningKey, SigningKeyError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cli::{Hs256Tokens, SigningArgs};
use crate::config::Env;

/// The variable naming the signing key's PEM file.
pub const SIGNING_KEY_FILE: &str = "SIGNING_KEY_FILE";
/// The variable naming the key directory.
pub const SIGNING_KEY_DIR: &str = "SIGNING_KEY_DIR";
/// The variable saying whether HS256 tokens still verify (`accept` or `refuse`).
pub const HS256_TOKENS: &str = "COUNTERSIGN_HS256_TOKENS";
/// The variable holding the `aud` of signed tokens.
pub const TOKEN_AUDIENCE: &str = "COUNTERSIGN_TOKEN_AUDIENCE";
/// The key directory's state file.
pub const STATE_FILE: &str = "keys.json";
/// The state file's format version.
const FORMAT: u32 = 1;

/// Why the signing keys cannot be used or changed. Never contains key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// Both a key file and a key directory are configured.
    #[error(
        "both a signing key file ({SIGNING_KEY_FILE} or --signing-key-file) and a key directory \
         ({SIGNING_KEY_DIR} or --signing-key-dir) are set: set only one"
    )]
    BothSources,
    /// `COUNTERSIGN_HS256_TOKENS` holds something else than accept or refuse.
    #[error("{HS256_TOKENS}: expected accept or refuse, got {0:?}")]
    BadHs256Setting(String),
    /// HS256 refused without any signing key: nothing would verify.
    #[error(
        "HS256 tokens are refused (--hs256-tokens refuse) but no signing key is set: set \
         {SIGNING_KEY_FILE} or {SIGNING_KEY_DIR}"
    )]
    NothingVerifies,
    /// The key file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file holds no usable key.
    #[error("signing key {}: {source}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        #[source]
        source: SigningKeyError,
    },
    /// A PEM file's key is not the one its name and the state say.
    #[error("{}: holds the key {found}, not {expected} as its name says; restore the file or run `countersign keys init` in a new directory", path.display())]
    KidMismatch {
        /// The file.
        path: PathBuf,
        /// The kid the state names.
        expected: String,
        /// The kid of the key in the file.
        found: String,
    },
    /// `keys.json` is missing: not a key directory yet.
    #[error("{} is not a key directory ({STATE_FILE} is missing): create it with `countersign keys init --signing-key-dir {}`", dir.display(), dir.display())]
    NotInitialized {
        /// The directory.
        dir: PathBuf,
    },
    /// `keys init` on a directory that already has a state.
    #[error("{} already holds signing keys ({STATE_FILE}); rotate them with `countersign keys rotate --stage`", dir.display())]
    AlreadyInitialized {
        /// The directory.
        dir: PathBuf,
    },
    /// `keys.json` is not valid.
    #[error("{}: {message}", path.display())]
    State {
        /// The state file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `--stage` while a key is already staged.
    #[error(
        "a next key is already staged (kid {kid}): promote it with `countersign keys rotate --promote` first"
    )]
    AlreadyStaged {
        /// The staged key.
        kid: String,
    },
    /// `--promote` with nothing staged.
    #[error(
        "no key is staged: stage one with `countersign keys rotate --stage`, publish it (SIGHUP every instance), wait the JWK Set max-age, then promote"
    )]
    NothingStaged,
    /// `--promote` before the JWK Set max-age has passed since staging.
    #[error(
        "the next key (kid {kid}) was staged {staged_ago}s ago; verifiers may cache the JWK Set for {max_age}s and would not know it yet: promote in {wait}s (or with --force, accepting that some verifiers refuse its tokens until they fetch the JWK Set again)"
    )]
    TooEarly {
        /// The staged key.
        kid: String,
        /// Seconds since staging.
        staged_ago: i64,
        /// The JWK Set max-age.
        max_age: u64,
        /// Seconds left.
        wait: i64,
    },
    /// `prune --kid` names no retired key.
    #[error("no retired key has the kid {0}")]
    UnknownRetired(String),
    /// `prune --kid` before that key's tokens have expired, without `--force`.
    #[error(
        "tokens signed by {kid} may be valid for {left}s more: prune it then, or now with --force (its tokens stop verifying at once)"
    )]
    StillNeeded {
        /// The retired key.
        kid: String,
        /// Seconds left.
        left: i64,
    },
    /// The keys do not make a consistent set.
    #[error(transparent)]
    Keys(#[from] TokenKeysError),
    /// The public keys do not make a set (a repeated kid, too many).
    #[error("the published keys: {0}")]
    Jwk(#[from] JwkError),
    /// The operating system's random source failed.
    #[error("the operating system's random number generator failed")]
    Random,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SigningError + '_ {
    move |source| SigningError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where the signing keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigningSource {
    /// None: HS256 with `SECRET_KEY` signs.
    None,
    /// One PEM file.
    File(PathBuf),
    /// A key directory.
    Dir(PathBuf),
}

/// The signing configuration: flags, else the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningConfig {
    /// Where the keys come from.
    pub source: SigningSource,
    /// Whether HS256 tokens from `SECRET_KEY` still verify.
    pub accept_hs256: bool,
    /// The `aud` of signed tokens, required in the EdDSA and ES256 tokens verified.
    pub audience: Option<String>,
}

impl SigningConfig {
    /// Resolve `args` (flags) over the environment.
    ///
    /// # Errors
    /// [`SigningError::BothSources`], [`SigningError::BadHs256Setting`],
    /// [`SigningError::NothingVerifies`].
    pub fn resolve(args: &SigningArgs, env: &dyn Env) -> Result<Self, SigningError> {
        let var = |name: &str| {
            env.var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        // A flag decides alone, as `--secret-key-file` does over SECRET_KEY.
        let (file, dir) = if args.signing_key_file.is_some() || args.signing_key_dir.is_some() {
            (args.signing_key_file.clone(), args.signing_key_dir.clone())
        } else {
            (var(SIGNING_KEY_FILE), var(SIGNING_KEY_DIR))
        };
        let source = match (file, dir) {
            (Some(_), Some(_)) => return Err(SigningError::BothSources),
            (Some(file), None) => SigningSource::File(file),
            (None, Some(dir)) => SigningSource::Dir(dir),
            (None, None) => SigningSource::None,
        };
        let hs256 = match args.hs256_tokens {
            Some(h) => h,
            None => match env.var_os(HS256_TOKENS).filter(|v| !v.is_empty()) {
                None => Hs256Tokens::Accept,
                Some(v) => match v.to_string_lossy().to_ascii_lowercase().as_str() {
                    "accept" => Hs256Tokens::Accept,
                    "refuse" => Hs256Tokens::Refuse,
                    other => return Err(SigningError::BadHs256Setting(other.to_owned())),
                },
            },
        };
        let accept_hs256 = hs256 == Hs256Tokens::Accept;
        if !accept_hs256 && source == SigningSource::None {
            return Err(SigningError::NothingVerifies);
        }
        let audience = args.token_audience.clone().or_else(|| {
            env.var_os(TOKEN_AUDIENCE)
                .filter(|v| !v.is_empty())
                .map(|v| v.to_string_lossy().into_owned())
        });
        Ok(Self {
            source,
            accept_hs256,
            audience,
        })
    }

    /// Read the keys (again, on SIGHUP).
    ///
    /// # Errors
    /// A key or state that cannot be read or used.
    pub fn load(&self) -> Result<Loaded, SigningError> {
        match &self.source {
            SigningSource::None => Ok(Loaded {
                signer: None,
                public: Vec::new(),
                jwks_max_age: DEFAULT_JWKS_MAX_AGE_SECS,
                accept_hs256: self.accept_hs256,
                audience: self.audience.clone(),
            }),
            SigningSource::File(path) => {
                let key = read_pem(path)?;
                Ok(Loaded {
                    public: vec![key.public().clone()],
                    signer: Some(key),
                    jwks_max_age: DEFAULT_JWKS_MAX_AGE_SECS,
                    accept_hs256: self.accept_hs256,
                    audience: self.audience.clone(),
                })
            }
            SigningSource::Dir(dir) => {
                let keys = KeyDir::new(dir).load()?;
                let mut public = vec![keys.current.public().clone()];
                public.extend(keys.next.iter().map(|(k, _)| k.public().clone()));
                public.extend(keys.retired.iter().map(|r| r.key.clone()));
                Ok(Loaded {
                    signer: Some(keys.current),
                    public,
                    jwks_max_age: keys.jwks_max_age,
                    accept_hs256: self.accept_hs256,
                    audience: self.audience.clone(),
                })
            }
        }
    }
}

/// The keys as read: what signs, what is published, for how long verifiers may cache it.
#[derive(Debug)]
pub struct Loaded {
    /// The key that signs (none: HS256).
    pub signer: Option<SigningKey>,
    /// The keys published and accepted: current, next, retired.
    pub public: Vec<PublicKey>,
    /// The JWK Set's `Cache-Control: max-age`, seconds.
    pub jwks_max_age: u64,
    /// Whether HS256 tokens still verify.
    pub accept_hs256: bool,
    /// The `aud` of signed tokens.
    pub audience: Option<String>,
}

impl Loaded {
    /// The engine's token keys, with `issuer` as the `iss` of signed tokens.
    ///
    /// # Errors
    /// A repeated kid, too many keys.
    pub fn token_keys(self, issuer: Option<String>) -> Result<TokenKeys, SigningError> {
        let public = PublicKeys::new(self.public)?;
        Ok(TokenKeys::new(
            self.signer.map(Signer::new),
            public,
            self.accept_hs256,
            issuer,
        )?
        .with_jwks_max_age(self.jwks_max_age)
        .with_audience(self.audience))
    }
}

fn read_pem(path: &Path) -> Result<SigningKey, SigningError> {
    SigningKey::from_file(path).map_err(|source| match source {
        SigningKeyError::File { source, .. } => SigningError::Io {
            path: path.to_owned(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        source => SigningError::Key {
            path: path.to_owned(),
            source,
        },
    })
}

/// Whether a key file can be read by others than its owner (worth a warning).
pub fn is_exposed(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

/// Write `bytes` to a new file `path` of mode 0600 (refused if it exists), synced.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), SigningError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

/// The state file, as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    format: u32,
    /// `Cache-Control: max-age` of the JWK Set, seconds; also the least time between
    /// staging and promoting.
    jwks_max_age: u64,
    /// The current key's kid (`<kid>.pem`).
    current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next: Option<Staged>,
    #[serde(default)]
    retired: Vec<Retired>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Staged {
    kid: String,
    /// Unix time of staging.
    staged_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Retired {
    kid: String,
    retired_at: i64,
    /// Until when its tokens may still be valid: it is published until then, and pruned
    /// after.
    keep_until: i64,
    /// Its public key.
    jwk: Map<String, Value>,
}

/// A retired key: its public half and how long it is needed.
#[derive(Clone, Debug)]
pub struct RetiredKey {
    /// The public key.
    pub key: PublicKey,
    /// When it stopped signing.
    pub retired_at: UnixTime,
    /// When the last token it signed has expired.
    pub keep_until: UnixTime,
}

/// A key directory's keys.
#[derive(Debug)]
pub struct DirKeys {
    /// The key that signs.
    pub current: SigningKey,
    /// The staged key and when it was staged.
    pub next: Option<(SigningKey, UnixTime)>,
    /// The retired keys, oldest first.
    pub retired: Vec<RetiredKey>,
    /// The JWK Set max-age, seconds.
    pub jwks_max_age: u64,
}

/// What `keys rotate --promote` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promoted {
    /// The key that signs from now on.
    pub current: String,
    /// The key retired.
    pub retired: String,
    /// Until when the retired key is published.
    pub keep_until: UnixTime,
}

/// A key directory.
#[derive(Clone, Debug)]
pub struct KeyDir {
    dir: PathBuf,
}

impl KeyDir {
    /// The directory at `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    fn pem_path(&self, kid: &str) -> PathBuf {
        self.dir.join(format!("{kid}.pem"))
    }

    /// Create the directory (mode 0700) with a first key of `alg` and the JWK Set
    /// `max_age`.
    ///
    /// # Errors
    /// [`SigningError::AlreadyInitialized`], I/O errors.
    pub fn init(&self, alg: Algorithm, max_age: u64) -> Result<PublicKey, SigningError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io(&self.dir))?;
        let _lock = self.lock()?;
        if self.state_path().exists() {
            return Err(SigningError::AlreadyInitialized {
                dir: self.dir.clone(),
            });
        }
        let key = self.new_key(alg)?;
        self.write_state(&State {
            format: FORMAT,
            jwks_max_age: max_age,
            current: key.kid().to_owned(),
            next: None,
            retired: Vec::new(),
        })?;
        Ok(key)
    }

    /// Read the state and the private keys it names.
    ///
    /// # Errors
    /// [`SigningError::NotInitialized`], a state or key file that cannot be read or used.
    pub fn load(&self) -> Result<DirKeys, SigningError> {
        // A promotion deletes the old current key's file just after renaming the new
        // state into place: read again once if a file named by the state we read is gone.
        match self.load_once() {
            Err(SigningError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && self.state_path().exists() =>
            {
                self.load_once()
            }
            other => other,
        }
    }

    fn load_once(&self) -> Result<DirKeys, SigningError> {
        let state = self.read_state()?;
        let current = self.read_key(&state.current)?;
        let next = match &state.next {
            Some(staged) => Some((self.read_key(&staged.kid)?, UnixTime(staged.staged_at))),
            None => None,
        };
        let path = self.state_path();
        let retired = state
            .retired
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let key = PublicKey::from_jwk(&r.jwk, i)
                    .ok()
                    .flatten()
                    .filter(|k| k.kid() == r.kid)
                    .ok_or_else(|| SigningError::State {
                        path: path.clone(),
                        message: format!("retired key {} is not a valid public key", r.kid),
                    })?;
                Ok(RetiredKey {
                    key,
                    retired_at: UnixTime(r.retired_at),
                    keep_until: UnixTime(r.keep_until),
                })
            })
            .collect::<Result<Vec<_>, SigningError>>()?;
        Ok(DirKeys {
            current,
            next,
            retired,
            jwks_max_age: state.jwks_max_age,
        })
    }

    /// Stage a new key of `alg` (default: the current key's) at `now`: published from the
    /// next reload on, signing nothing.
    ///
    /// # Errors
    /// [`SigningError::AlreadyStaged`], I/O errors.
    pub fn stage(&self, alg: Option<Algorithm>, now: UnixTime) -> Result<PublicKey, SigningError> {
        let _lock = self.lock()?;
        let mut state = self.read_state()?;
        if let Some(staged) = &state.next {
            return Err(SigningError::AlreadyStaged {
                kid: staged.kid.clone(),
            });
        }
        let alg = match alg {
            Some(alg) => alg,
            None => self.read_key(&state.current)?.alg(),
        };
        let key = self.new_key(alg)?;
        state.next = Some(Staged {
            kid: key.kid().to_owned(),
            staged_at: now.0,
        });
        self.write_state(&state)?;
        Ok(key)
    }

    /// Make the staged key current at `now`. The old current key is retired: published
    /// until `now + keep_secs`, its private key deleted. Refused before the JWK Set max-age
    /// has passed since staging unless `force`.
    ///
    /// # Errors
    /// [`SigningError::NothingStaged`], [`SigningError::TooEarly`], I/O errors.
    pub fn promote(
        &self,
        now: UnixTime,
        keep_secs: i64,
        force: bool,
    ) -> Result<Promoted, SigningError> {
        let _lock = self.lock()?;
        let mut state = self.read_state()?;
        let staged = state.next.take().ok_or(SigningError::NothingStaged)?;
        let ready_at = staged
            .staged_at
            .saturating_add(i64::try_from(state.jwks_max_age).unwrap_or(i64::MAX));
        if now.0 < ready_at && !force {
            return Err(SigningError::TooEarly {
                kid: staged.kid,
                staged_ago: now.0.saturating_sub(staged.staged_at),
                max_age: state.jwks_max_age,
                wait: ready_at - now.0,
            });
        }
        // Both keys must load before anything changes.
        self.read_key(&staged.kid)?;
        let old = self.read_key(&state.current)?;
        let keep_until = now.0.saturating_add(keep_secs.max(0));
        state.retired.push(Retired {
            kid: old.kid().to_owned(),
            retired_at: now.0,
            keep_until,
            jwk: old.public().to_jwk(),
        });
        let retired = std::mem::replace(&mut state.current, staged.kid);
        self.write_state(&state)?;
        // The private key of a retired key is never needed again.
        let old_pem = self.pem_path(&retired);
        std::fs::remove_file(&old_pem).map_err(io(&old_pem))?;
        Ok(Promoted {
            current: state.current,
            retired,
            keep_until: UnixTime(keep_until),
        })
    }

    /// Drop retired keys at `now`: every one whose `keep_until` has passed, or with `kid`
    /// that one (refused before its time unless `force`: the emergency for a leaked key).
    /// Returns the kids dropped.
    ///
    /// # Errors
    /// [`SigningError::UnknownRetired`], [`SigningError::StillNeeded`], I/O errors.
    pub fn prune(
        &self,
        now: UnixTime,
        kid: Option<&str>,
        force: bool,
    ) -> Result<Vec<String>, SigningError> {
        let _lock = self.lock()?;
        let mut state = self.read_state()?;
        let mut dropped = Vec::new();
        match kid {
            Some(kid) => {
                let i = state
                    .retired
                    .iter()
                    .position(|r| r.kid == kid)
                    .ok_or_else(|| SigningError::UnknownRetired(kid.to_owned()))?;
                let left = state.retired[i].keep_until - now.0;
                if left > 0 && !force {
                    return Err(SigningError::StillNeeded {
                        kid: kid.to_owned(),
                        left,
                    });
                }
                dropped.push(state.retired.remove(i).kid);
            }
            None => state.retired.retain(|r| {
                let keep = r.keep_until > now.0;
                if !keep {
                    dropped.push(r.kid.clone());
                }
                keep
            }),
        }
        if !dropped.is_empty() {
            self.write_state(&state)?;
        }
        Ok(dropped)
    }

    /// An exclusive lock on `DIR/.lock` for the life of the value.
    fn lock(&self) -> Result<File, SigningError> {
        let path = self.dir.join(".lock");
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        file.lock().map_err(io(&path))?;
        Ok(file)
    }

    /// A new key of `alg` written to `<kid>.pem` (mode 0600).
    fn new_key(&self, alg: Algorithm) -> Result<PublicKey, SigningError> {
        let (key, pem) = SigningKey::generate(alg).map_err(|e| match e {
            SigningKeyError::Random => SigningError::Random,
            source => SigningError::Key {
                path: self.dir.clone(),
                source,
            },
        })?;
        write_new_private(&self.pem_path(key.kid()), pem.as_bytes())?;
        Ok(key.public().clone())
    }

    fn read_key(&self, kid: &str) -> Result<SigningKey, SigningError> {
        let path = self.pem_path(kid);
        let key = read_pem(&path)?;
        if key.kid() != kid {
            return Err(SigningError::KidMismatch {
                path,
                expected: kid.to_owned(),
                found: key.kid().to_owned(),
            });
        }
        Ok(key)
    }

    fn read_state(&self) -> Result<State, SigningError> {
        let path = self.state_path();
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SigningError::NotInitialized {
                    dir: self.dir.clone(),
                });
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let state: State = serde_json::from_slice(&text).map_err(|e| SigningError::State {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if state.format != FORMAT {
            return Err(SigningError::State {
                path,
                message: format!(
                    "format {} is not supported (this version reads {FORMAT})",
                    state.format
                ),
            });
        }
        let safe = |kid: &str| {
            !kid.is_empty()
                && kid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let kids = std::iter::once(&state.current).chain(state.next.iter().map(|s| &s.kid));
        for kid in kids {
            if !safe(kid) {
                return Err(SigningError::State {
                    path,
                    message: "a kid is not base64url".to_owned(),
                });
            }
        }
        Ok(state)
    }

    /// Replace the state file atomically: a new temporary file, synced, renamed over it.
    fn write_state(&self, state: &State) -> Result<(), SigningError> {
        let mut text = serde_json::to_vec_pretty(state).map_err(|e| SigningError::State {
            path: self.state_path(),
            message: e.to_string(),
        })?;
        text.push(b'\n');
        let tmp = self.dir.join(format!(
            ".{STATE_FILE}.{}.{}",
            std::process::id(),
            countersign::random::token_id()
        ));
        write_new_private(&tmp, &text)?;
        let path = self.state_path();
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(&path)(e)
        })?;
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn public_kids(dir: &KeyDir) -> Vec<String> {
        let config = SigningConfig {
            source: SigningSource::Dir(dir.dir.clone()),
            accept_hs256: true,
            audience: None,
        };
        config
            .load()
            .unwrap()
            .public
            .iter()
            .map(|k| k.kid().to_owned())
            .collect()
    }

    #[test]
    fn stage_promote_prune() {
        let tmp = dir();
        let d = KeyDir::new(&tmp.path().join("keys"));
        let first = d.init(Algorithm::EdDSA, 300).unwrap();
        let mode = std::fs::metadata(d.pem_path(first.kid()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&d.dir).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert!(matches!(
            d.init(Algorithm::EdDSA, 300),
            Err(SigningError::AlreadyInitialized { .. })
        ));
        assert!(matches!(
            d.promote(UnixTime(1_000), 3_600, false),
            Err(SigningError::NothingStaged)
        ));

        let next = d.stage(None, UnixTime(1_000)).unwrap();
        assert_eq!(next.alg(), Algorithm::EdDSA);
        assert_eq!(public_kids(&d), [first.kid(), next.kid()]);
        assert!(matches!(
            d.stage(None, UnixTime(1_001)),
            Err(SigningError::AlreadyStaged { .. })
        ));
        // Too early: verifiers that fetched the set just before staging may keep it 300 s.
        match d.promote(UnixTime(1_299), 3_600, false) {
            Err(SigningError::TooEarly { wait: 1, .. }) => {}
            other => panic!("{other:?}"),
        }
        let promoted = d.promote(UnixTime(1_300), 3_600, false).unwrap();
        assert_eq!(
            promoted,
            Promoted {
                current: next.kid().to_owned(),
                retired: first.kid().to_owned(),
                keep_until: UnixTime(4_900),
            }
        );
        assert!(
            !d.pem_path(first.kid()).exists(),
            "the retired private key is gone"
        );
        let loaded = d.load().unwrap();
        assert_eq!(loaded.current.kid(), next.kid());
        assert_eq!(public_kids(&d), [next.kid(), first.kid()]);

        // Prune: nothing before keep_until, then the retired key.
        assert!(d.prune(UnixTime(4_899), None, false).unwrap().is_empty());
        assert!(matches!(
            d.prune(UnixTime(4_000), Some(first.kid()), false),
            Err(SigningError::StillNeeded { left: 900, .. })
        ));
        assert_eq!(
            d.prune(UnixTime(4_900), None, false).unwrap(),
            [first.kid()]
        );
        assert_eq!(public_kids(&d), [next.kid()]);
        assert!(matches!(
            d.prune(UnixTime(5_000), Some("nope"), true),
            Err(SigningError::UnknownRetired(_))
        ));
    }

    #[test]
    fn forced_promotion_and_emergency_prune() {
        let tmp = dir();
        let d = KeyDir::new(tmp.path());
        let first = d.init(Algorithm::ES256, 600).unwrap();
        let next = d.stage(Some(Algorithm::EdDSA), UnixTime(10)).unwrap();
        assert_eq!(next.alg(), Algorithm::EdDSA);
        d.promote(UnixTime(11), 900, true).unwrap();
        assert_eq!(
            d.prune(UnixTime(12), Some(first.kid()), true).unwrap(),
            [first.kid()]
        );
        assert_eq!(public_kids(&d), [next.kid()]);
    }

    #[test]
    fn a_key_file_that_is_not_its_kid_is_refused() {
        let tmp = dir();
        let d = KeyDir::new(tmp.path());
        let first = d.init(Algorithm::EdDSA, 300).unwrap();
        let (other, pem) = SigningKey::generate(Algorithm::EdDSA).unwrap();
        std::fs::remove_file(d.pem_path(first.kid())).unwrap();
        write_new_private(&d.pem_path(first.kid()), pem.as_bytes()).unwrap();
        match d.load() {
            Err(SigningError::KidMismatch { found, .. }) => assert_eq!(found, other.kid()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn not_a_key_directory() {
        let tmp = dir();
        let e = KeyDir::new(tmp.path()).load().unwrap_err();
        assert!(matches!(e, SigningError::NotInitialized { .. }), "{e}");
        assert!(e.to_string().contains("countersign keys init"), "{e}");
    }

    #[test]
    fn resolve_sources_and_hs256() {
        let args = SigningArgs::default();
        let env = |vars: &[(&'static str, &str)]| -> BTreeMap<&'static str, String> {
            vars.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
        };
        let none = SigningConfig::resolve(&args, &env(&[])).unwrap();
        assert_eq!(none.source, SigningSource::None);
        assert!(none.accept_hs256);
        assert!(matches!(
            SigningConfig::resolve(
                &args,
                &env(&[(SIGNING_KEY_FILE, "a"), (SIGNING_KEY_DIR, "b")])
            ),
            Err(SigningError::BothSources)
        ));
        assert!(matches!(
            SigningConfig::resolve(&args, &env(&[(HS256_TOKENS, "refuse")])),
            Err(SigningError::NothingVerifies)
        ));
        assert!(matches!(
            SigningConfig::resolve(&args, &env(&[(HS256_TOKENS, "maybe")])),
            Err(SigningError::BadHs256Setting(_))
        ));
        let strict = SigningConfig::resolve(
            &args,
            &env(&[(SIGNING_KEY_DIR, "d"), (HS256_TOKENS, "Refuse")]),
        )
        .unwrap();
        assert_eq!(
            strict,
            SigningConfig {
                source: SigningSource::Dir("d".into()),
                accept_hs256: false,
                audience: None,
            }
        );
        let flags = SigningArgs {
            signing_key_file: Some("f.pem".into()),
            signing_key_dir: None,
            hs256_tokens: Some(Hs256Tokens::Accept),
            token_audience: Some("api".into()),
        };
        let flagged = SigningConfig::resolve(
            &flags,
            &env(&[(HS256_TOKENS, "refuse"), (SIGNING_KEY_DIR, "d")]),
        )
        .unwrap();
        assert_eq!(flagged.source, SigningSource::File("f.pem".into()));
        assert!(flagged.accept_hs256);
        assert_eq!(flagged.audience.as_deref(), Some("api"));
    }
}
