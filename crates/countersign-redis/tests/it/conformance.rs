//! The engine's conformance suite, unchanged, against Redis.

// The macro pastes this block into each test body just before `.await`, so the `return`
// leaves the test: that is how a test skips when Redis is unreachable outside CI.
countersign::ephemeral_store_tests!({
    let Some(store) = crate::support::test_store().await else {
        return;
    };
    std::future::ready(store)
});
