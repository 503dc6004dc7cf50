//! Test servers and stores: the machine's Redis (or `COUNTERSIGN_TEST_REDIS`) under a
//! random key prefix per test, and private `redis-server` children for the tests that must
//! stop or configure a server.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use countersign::clock::UnixTime;
use countersign::refresh::{FamilyId, RefreshFamily, RefreshHash, RotateOutcome};
use countersign::session::{SessionKey, SessionRecord};
use countersign::store::{RefreshStore, RevocationStore, SessionStore, StoreResult, ThrottleStore};
use countersign::user::UserId;
use countersign_redis::{RedisOptions, RedisStore, connect, redact_url};

/// The Redis the shared tests use.
pub fn redis_url() -> String {
    std::env::var("COUNTERSIGN_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// In CI a missing Redis is a failure, never a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skip (outside CI) or fail (in CI) because something the test needs is missing.
/// Returns `None` so callers can `let Some(x) = … else { return };`.
pub fn unavailable<T>(what: &str, why: &(dyn std::error::Error + 'static)) -> Option<T> {
    let mut why_all = why.to_string();
    let mut next = why.source();
    while let Some(e) = next {
        why_all.push_str(": ");
        why_all.push_str(&e.to_string());
        next = e.source();
    }
    assert!(!in_ci(), "CI=true and {what}: {why_all}");
    eprintln!("skipping: {what}: {why_all} (set CI=true to make this a failure)");
    None
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("countersign-test:{}:", countersign::random::token_id())
}

/// A store on the shared Redis under a fresh prefix; its keys are deleted when it drops
/// (also when the test panics).
pub struct TestStore {
    pub store: RedisStore,
    _cleanup: Cleanup,
}

/// Connect to the shared Redis under a fresh prefix, or skip (outside CI) when it is down.
pub async fn test_store() -> Option<TestStore> {
    test_store_with(RedisOptions::default()).await
}

/// [`test_store`] with options (the key prefix is replaced by a fresh one).
pub async fn test_store_with(mut opts: RedisOptions) -> Option<TestStore> {
    let url = redis_url();
    opts.key_prefix = unique_prefix();
    match connect(&url, &opts).await {
        Ok(store) => Some(TestStore {
            _cleanup: Cleanup {
                url,
                prefix: opts.key_prefix,
            },
            store,
        }),
        Err(e) => unavailable(&format!("Redis at {} is unreachable", redact_url(&url)), &e),
    }
}

/// A raw connection to the shared Redis, to look at what the store wrote.
pub async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

struct Cleanup {
    url: String,
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Best effort, on a plain blocking connection because drop cannot await. The
        // conformance suite writes deadlines years ahead, so without this its keys would
        // outlive the test run by as long.
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
            return;
        };
        let pattern = format!("{}*", self.prefix);
        let mut cursor: u64 = 0;
        loop {
            let Ok((next, keys)) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query::<(u64, Vec<String>)>(&mut conn)
            else {
                return;
            };
            if !keys.is_empty() {
                let _ = redis::cmd("UNLINK").arg(&keys).query::<i64>(&mut conn);
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}

// The conformance functions take a store by its traits; these pass each call through.
#[async_trait]
impl SessionStore for TestStore {
    async fn create_session(&self, record: &SessionRecord) -> StoreResult<()> {
        self.store.create_session(record).await
    }
    async fn load_session(
        &self,
        key: &SessionKey,
        now: UnixTime,
    ) -> StoreResult<Option<SessionRecord>> {
        self.store.load_session(key, now).await
    }
    async fn touch_session(
        &self,
        key: &SessionKey,
        last_seen: UnixTime,
        idle_deadline: UnixTime,
    ) -> StoreResult<bool> {
        self.store
            .touch_session(key, last_seen, idle_deadline)
            .await
    }
    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        self.store.delete_session(key).await
    }
    async fn list_user_sessions(
        &self,
        user: UserId,
        now: UnixTime,
    ) -> StoreResult<Vec<SessionRecord>> {
        self.store.list_user_sessions(user, now).await
    }
    async fn delete_user_sessions(&self, user: UserId) -> StoreResult<u64> {
        self.store.delete_user_sessions(user).await
    }
    async fn sweep_sessions(&self, now: UnixTime) -> StoreResult<u64> {
        self.store.sweep_sessions(now).await
    }
    async fn ping_sessions(&self) -> StoreResult<()> {
        self.store.ping_sessions().await
    }
}

#[async_trait]
impl RefreshStore for TestStore {
    async fn create_family(&self, family: &RefreshFamily, first: &RefreshHash) -> StoreResult<()> {
        self.store.create_family(family, first).await
    }
    async fn peek_family(
        &self,
        presented: &[RefreshHash],
        now: UnixTime,
    ) -> StoreResult<Option<RefreshFamily>> {
        self.store.peek_family(presented, now).await
    }
    async fn rotate(
        &self,
        presented: &[RefreshHash],
        next: &RefreshHash,
        idle_secs: i64,
        now: UnixTime,
    ) -> StoreResult<RotateOutcome> {
        self.store.rotate(presented, next, idle_secs, now).await
    }
    async fn revoke_by_token(&self, presented: &[RefreshHash]) -> StoreResult<bool> {
        self.store.revoke_by_token(presented).await
    }
    async fn revoke_family(&self, id: &FamilyId) -> StoreResult<bool> {
        self.store.revoke_family(id).await
    }
    async fn revoke_user_families(&self, user: UserId) -> StoreResult<u64> {
        self.store.revoke_user_families(user).await
    }
    async fn sweep_families(&self, now: UnixTime) -> StoreResult<u64> {
        self.store.sweep_families(now).await
    }
}

#[async_trait]
impl RevocationStore for TestStore {
    async fn deny_jti(&self, jti: &str, until: UnixTime) -> StoreResult<()> {
        self.store.deny_jti(jti, until).await
    }
    async fn is_jti_denied(&self, jti: &str, now: UnixTime) -> StoreResult<bool> {
        self.store.is_jti_denied(jti, now).await
    }
    async fn revoke_issued_before(&self, user: UserId, before: UnixTime) -> StoreResult<()> {
        self.store.revoke_issued_before(user, before).await
    }
    async fn issued_before(&self, user: UserId) -> StoreResult<Option<UnixTime>> {
        self.store.issued_before(user).await
    }
}

#[async_trait]
impl ThrottleStore for TestStore {
    async fn hit(
        &self,
        key: &str,
        window_secs: i64,
        now: UnixTime,
    ) -> StoreResult<(u64, UnixTime)> {
        self.store.hit(key, window_secs, now).await
    }
    async fn peek(&self, key: &str, now: UnixTime) -> StoreResult<(u64, UnixTime)> {
        self.store.peek(key, now).await
    }
    async fn clear(&self, key: &str) -> StoreResult<()> {
        self.store.clear(key).await
    }
}

/// A private `redis-server` on a free loopback port, killed on drop.
pub struct ChildRedis {
    port: u16,
    extra: Vec<String>,
    child: Option<Child>,
}

impl ChildRedis {
    /// Start one (with `extra` arguments, e.g. `--requirepass`), or skip outside CI when
    /// `redis-server` is not installed.
    pub fn start(extra: &[&str]) -> Option<Self> {
        let mut server = Self {
            port: free_port(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
        };
        match server.spawn() {
            Ok(()) => Some(server),
            Err(e) => unavailable("cannot run redis-server", &e),
        }
    }

    /// `redis://[:password@]127.0.0.1:PORT`.
    pub fn url(&self, password: Option<&str>) -> String {
        match password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Kill the server (`SIGKILL`: no goodbye to the clients).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn().unwrap();
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        // Bounded wait for the server to accept connections (real time: a process starting).
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(std::io::Error::other(format!(
                    "redis-server exited: {status}"
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.stop();
        Err(std::io::Error::other(
            "redis-server did not start listening within 5 s",
        ))
    }
}

impl Drop for ChildRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nothing listens on right now (bind port 0, read it, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
