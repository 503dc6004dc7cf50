//! buggy-race's integration tests: the router driven in process with
//! `tower::ServiceExt::oneshot` (through a small cookie-keeping client), and the real
//! binary on port 0, by hand and in Chromium.
#![allow(clippy::unwrap_used)]

mod admin;
mod api;
mod binary;
mod browser;
mod common;
mod csrf;
mod isolation;
mod login;
mod validation;
