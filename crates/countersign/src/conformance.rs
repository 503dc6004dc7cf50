//! The store conformance suite: written once, run against every implementation.
//!
//! Each check is an async function over a store; the macros [`user_store_tests!`] and
//! [`ephemeral_store_tests!`] turn them into one `#[tokio::test]` each for a store made by
//! a factory expression. Checks use random names and ids, so stores that share a server
//! (PostgreSQL, Redis) can run them in parallel without cleaning up.
//!
//! [`user_store_tests!`]: crate::user_store_tests
//! [`ephemeral_store_tests!`]: crate::ephemeral_store_tests
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod factors;
mod fixtures;
mod refresh;
mod revocation;
mod sessions;
mod throttle;
mod users;

pub use factors::factors;
pub use refresh::{
    refresh_concurrent_rotate, refresh_expiry, refresh_peek_family, refresh_revocation,
    refresh_rotation_and_reuse,
};
pub use revocation::revocation;
pub use sessions::{
    sessions_concurrent_create, sessions_crud, sessions_expiry, sessions_revoke_all_races_login,
    sessions_user_index,
};
pub use throttle::{throttle, throttle_attempts};
pub use users::{
    users_concurrent_create, users_crud, users_disable, users_import, users_password_hashes_after,
    users_replace_password_hash,
};

/// One `#[tokio::test]` per user-store check, for a store made by `$make` (an expression
/// of a future that yields the store).
#[macro_export]
macro_rules! user_store_tests {
    ($make:expr) => {
        $crate::__conformance_case!($make, users_crud);
        $crate::__conformance_case!($make, users_concurrent_create);
        $crate::__conformance_case!($make, users_replace_password_hash);
        $crate::__conformance_case!($make, users_password_hashes_after);
        $crate::__conformance_case!($make, users_import);
        $crate::__conformance_case!($make, users_disable);
        $crate::__conformance_case!($make, factors);
    };
}

/// One `#[tokio::test]` per session-store check (sessions, refresh families, revocation,
/// throttling), for a store made by `$make`.
#[macro_export]
macro_rules! ephemeral_store_tests {
    ($make:expr) => {
        $crate::__conformance_case!($make, sessions_crud);
        $crate::__conformance_case!($make, sessions_concurrent_create);
        $crate::__conformance_case!($make, sessions_expiry);
        $crate::__conformance_case!($make, sessions_user_index);
        $crate::__conformance_case!($make, sessions_revoke_all_races_login);
        $crate::__conformance_case!($make, refresh_rotation_and_reuse);
        $crate::__conformance_case!($make, refresh_expiry);
        $crate::__conformance_case!($make, refresh_peek_family);
        $crate::__conformance_case!($make, refresh_concurrent_rotate);
        $crate::__conformance_case!($make, refresh_revocation);
        $crate::__conformance_case!($make, revocation);
        $crate::__conformance_case!($make, throttle);
        $crate::__conformance_case!($make, throttle_attempts);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_case {
    ($make:expr, $name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let store = $make.await;
            $crate::conformance::$name(&store).await;
        }
    };
}
