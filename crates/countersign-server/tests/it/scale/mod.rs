//! Scale-out, end to end, with real processes on loopback (`docs/operations.md`):
//!
//! - [`cluster`]: two `countersign serve` instances on one PostgreSQL database and one
//!   Redis act as one server (sessions, tokens, logout, CLI changes, throttling);
//! - [`outage`]: a private `redis-server` killed and restarted under a running server:
//!   503 with `Retry-After`, never 200 or 500 for sessions, automatic recovery; and
//!   unreachable stores at start, their passwords never shown;
//! - [`durability`]: `kill -9` during a login load on SQLite and on PostgreSQL loses no
//!   answered session and no user row;
//! - [`rotation`]: a key rotation across two instances by SIGHUP (key and fallbacks
//!   files), fallbacks first, refuses nobody;
//! - [`propagation`]: login throttling as one atomic store operation across instances,
//!   and revocations reaching the other instance's cache by push (Redis pub/sub,
//!   PostgreSQL `LISTEN`) within 100 ms, with the cache bypassed while unsubscribed;
//! - [`tls`]: Redis over `rediss://` with a CA file, PostgreSQL with `sslmode=verify-full`;
//!   a certificate that does not verify stops the start, saying so.
//!
//! PostgreSQL is `COUNTERSIGN_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`;
//! each test creates its own database and drops it), Redis `COUNTERSIGN_TEST_REDIS`
//! (default `redis://127.0.0.1:6379`; each test uses its own key prefix and deletes its
//! keys). When one is missing the test prints why and skips, except under `CI=true`,
//! where it fails.

mod cluster;
mod durability;
mod outage;
mod propagation;
mod rotation;
mod support;
mod tls;
