//! The quickstart's tests: the binary served on a free port and used as a browser and a
//! script would; and the crate docs' first example, which must be this program.
#![allow(clippy::unwrap_used)]

mod docs;
mod serve;
