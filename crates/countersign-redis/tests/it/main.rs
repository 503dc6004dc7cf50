//! The Redis store's integration tests, one binary: the conformance suite against the
//! machine's Redis (`COUNTERSIGN_TEST_REDIS`, default `redis://127.0.0.1:6379`), what the
//! store writes into Redis, an outage with a private `redis-server`, and URL redaction.
//!
//! Outside CI, tests that cannot reach a server skip with a message on stderr; with
//! `CI=true` they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;
mod invalidation;
mod layout;
mod outage;
mod redaction;
mod support;
mod sweep;
mod tls;
