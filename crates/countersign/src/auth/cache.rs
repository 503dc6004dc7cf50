//! A small TTL cache in front of the store (see the module docs), and the gate that push
//! invalidation ([`crate::invalidation`]) works through.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Entries live their TTL; nobody tells this process of changes made elsewhere.
const LOCAL: u8 = 0;
/// Subscribed to invalidations: entries live their TTL or until a message names them.
const LIVE: u8 = 1;
/// Invalidations are expected but may be missed: the caches are bypassed.
const DEAF: u8 = 2;

/// Whether the caches may be used, and a count of invalidations (the epoch) that lets a
/// reader tell whether one arrived while it was reading the store.
#[derive(Debug)]
pub(super) struct Gate {
    state: AtomicU8,
    epoch: AtomicU64,
}

/// What the gate says, for `/readyz` and the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheMode {
    /// The cache is off (`cache_ttl` zero): every request reads the store.
    Off,
    /// No invalidations (a store nobody else writes to, or one without a channel): entries
    /// live `cache_ttl`.
    Local,
    /// Subscribed to invalidations: changes made anywhere reach this cache within a
    /// message's delivery time.
    Subscribed,
    /// Invalidations are expected but the listener is not subscribed (starting, or its
    /// connection is lost): every request reads the store until it is.
    Bypassed,
}

impl Gate {
    /// A gate for a service that will (`pushed`) or will not hear of changes made
    /// elsewhere. One that will starts closed, until its listener subscribes.
    pub(super) fn new(pushed: bool) -> Arc<Self> {
        Arc::new(Self {
            state: AtomicU8::new(if pushed { DEAF } else { LOCAL }),
            epoch: AtomicU64::new(0),
        })
    }

    fn open(&self) -> bool {
        self.state.load(Ordering::SeqCst) != DEAF
    }

    /// Read before a store read whose answer is to be cached ([`TtlCache::put`]).
    pub(super) fn ticket(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Count an invalidation. Called before the entries it names are removed.
    pub(super) fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Close (`false`) or open (`true`) the caches. The caller empties them.
    pub(super) fn set_subscribed(&self, subscribed: bool) {
        self.bump();
        self.state
            .store(if subscribed { LIVE } else { DEAF }, Ordering::SeqCst);
        self.bump();
    }

    pub(super) fn mode(&self, ttl: Duration) -> CacheMode {
        match self.state.load(Ordering::SeqCst) {
            _ if ttl.is_zero() => CacheMode::Off,
            LOCAL => CacheMode::Local,
            LIVE => CacheMode::Subscribed,
            _ => CacheMode::Bypassed,
        }
    }
}

/// A small TTL cache in front of the store (see the module docs).
pub(super) struct TtlCache<K, V> {
    ttl: Duration,
    gate: Arc<Gate>,
    inner: quick_cache::sync::Cache<K, (V, Instant)>,
}

impl<K: Eq + std::hash::Hash + Clone, V: Clone> TtlCache<K, V> {
    pub(super) fn new(ttl: Duration, capacity: usize, gate: Arc<Gate>) -> Self {
        Self {
            ttl,
            gate,
            inner: quick_cache::sync::Cache::new(capacity),
        }
    }

    pub(super) fn get(&self, k: &K) -> Option<V> {
        if self.ttl.is_zero() || !self.gate.open() {
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

    /// Cache what the store said, given the [`Gate::ticket`] taken before asking it. If an
    /// invalidation arrived meanwhile (the answer may predate it) the entry is not kept:
    /// the check comes after the insert, and an invalidation bumps the epoch before it
    /// removes, so either this sees the bump or the removal comes after the insert.
    pub(super) fn put(&self, k: K, v: V, ticket: u64) {
        if self.ttl.is_zero() || !self.gate.open() {
            return;
        }
        self.inner.insert(k.clone(), (v, Instant::now()));
        if self.gate.ticket() != ticket {
            self.inner.remove(&k);
        }
    }

    pub(super) fn forget(&self, k: &K) {
        self.inner.remove(k);
    }

    pub(super) fn clear(&self) {
        self.inner.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_read_across_an_invalidation_is_not_kept() {
        let gate = Gate::new(false);
        let cache = TtlCache::new(Duration::from_secs(60), 10, Arc::clone(&gate));
        let ticket = gate.ticket();
        cache.put("a", 1, ticket);
        assert_eq!(cache.get(&"a"), Some(1));
        let ticket = gate.ticket();
        gate.bump();
        cache.put("b", 2, ticket);
        assert_eq!(cache.get(&"b"), None);
    }

    #[test]
    fn a_pushed_gate_starts_closed_and_bypasses_while_unsubscribed() {
        let gate = Gate::new(true);
        let ttl = Duration::from_secs(60);
        let cache = TtlCache::new(ttl, 10, Arc::clone(&gate));
        assert_eq!(gate.mode(ttl), CacheMode::Bypassed);
        cache.put("a", 1, gate.ticket());
        assert_eq!(cache.get(&"a"), None);
        gate.set_subscribed(true);
        assert_eq!(gate.mode(ttl), CacheMode::Subscribed);
        cache.put("a", 1, gate.ticket());
        assert_eq!(cache.get(&"a"), Some(1));
        // A ticket from before the subscription is stale.
        let old = gate.ticket();
        gate.set_subscribed(false);
        gate.set_subscribed(true);
        cache.put("b", 2, old);
        assert_eq!(cache.get(&"b"), None);
        gate.set_subscribed(false);
        assert_eq!(cache.get(&"a"), None);
        assert_eq!(gate.mode(Duration::ZERO), CacheMode::Off);
    }
}
