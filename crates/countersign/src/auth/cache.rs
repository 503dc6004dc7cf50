//! A small TTL cache in front of the store (see the module docs).

use std::time::{Duration, Instant};

/// A small TTL cache in front of the store (see the module docs).
pub(super) struct TtlCache<K, V> {
    ttl: Duration,
    inner: quick_cache::sync::Cache<K, (V, Instant)>,
}

impl<K: Eq + std::hash::Hash + Clone, V: Clone> TtlCache<K, V> {
    pub(super) fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            inner: quick_cache::sync::Cache::new(capacity),
        }
    }

    pub(super) fn get(&self, k: &K) -> Option<V> {
        if self.ttl.is_zero() {
            return None;
        }
        match self.inner.get(k) {
            Some((v, at)) if at.elapsed() < self.ttl => Some(v),
            Some(_) => {
                self.inner.remove(k);
                None
            }
            None => None,
        }
    }

    pub(super) fn put(&self, k: K, v: V) {
        if !self.ttl.is_zero() {
            self.inner.insert(k, (v, Instant::now()));
        }
    }

    pub(super) fn forget(&self, k: &K) {
        self.inner.remove(k);
    }
}
