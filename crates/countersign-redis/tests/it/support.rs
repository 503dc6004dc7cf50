//! Test servers and stores: the machine's Redis (or `COUNTERSIGN_TEST_REDIS`) under a
//! random key prefix per test, and private `redis-server` children for the tests that must
//! stop or configure a server.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use countersign::testing::FaultyStore;
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
pub type TestStore = FaultyStore<RedisStore>;

/// Connect to the shared Redis under a fresh prefix, or skip (outside CI) when it is down.
pub async fn test_store() -> Option<TestStore> {
    test_store_with(RedisOptions::default()).await
}

/// [`test_store`] with options (the key prefix is replaced by a fresh one).
pub async fn test_store_with(mut opts: RedisOptions) -> Option<TestStore> {
    let url = redis_url();
    opts.key_prefix = unique_prefix();
    match connect(&url, &opts).await {
        Ok(store) => Some(FaultyStore::new(store).with_guard(Cleanup {
            url,
            prefix: opts.key_prefix,
        })),
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
