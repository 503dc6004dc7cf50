//! buggy-race's integration tests: the router driven in process with
//! `tower::ServiceExt::oneshot` (through a small cookie-keeping client), and the real
//! binary on port 0.
#![allow(clippy::unwrap_used)]

mod admin;
mod api;
mod binary;
mod common;
mod csrf;
mod isolation;
mod login;
mod validation;
