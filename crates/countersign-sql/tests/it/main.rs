//! The SQL stores' integration tests: the conformance suite against SQLite and PostgreSQL,
//! and what the suite does not cover (migrations racing, the sweeper, durability, error
//! mapping, URL redaction).
#![allow(clippy::unwrap_used)]

mod checks;
mod invalidation;
mod postgres;
mod redaction;
mod sqlite;
mod tls;
