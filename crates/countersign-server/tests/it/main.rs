//! The crate's one integration-test binary (STYLE.md: one per crate keeps link times low).
//! Each area is a module.
#![allow(clippy::unwrap_used)]

mod admin;
mod architecture;
mod browser;
mod cli;
mod docs;
mod e2e;
mod http;
mod scale;
mod schema;
