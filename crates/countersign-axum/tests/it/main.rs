//! countersign-axum's integration tests: a small router driven in process with
//! `tower::ServiceExt::oneshot`, on the engine's memory store and a manual clock; and the
//! CSRF guard served to Chromium.
#![allow(clippy::unwrap_used)]

mod bearer;
mod browser;
mod common;
mod cookies;
mod csrf;
mod handlers;
mod maybe;
mod metrics;
mod roles;
mod session;
mod sign;
mod step_up;
mod unavailable;
