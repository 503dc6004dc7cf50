//! Time as a parameter.
//!
//! Everything that checks a deadline takes a [`UnixTime`] (or a [`Clock`] to read one
//! from), so tests move time instead of sleeping. Only [`SystemClock`] reads the wall clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch, the unit of JWT `NumericDate` (RFC 7519 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(pub i64);

impl UnixTime {
    /// The number of seconds since the epoch.
    pub const fn secs(self) -> i64 {
        self.0
    }

    /// This time moved by `secs` seconds (saturating, never wrapping).
    #[must_use]
    pub const fn add_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> UnixTime;
}

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        UnixTime(secs)
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// # Examples
/// ```
/// use countersign::clock::{Clock, ManualClock, UnixTime};
/// let clock = ManualClock::new(UnixTime(1_000));
/// clock.advance(60);
/// assert_eq!(clock.now(), UnixTime(1_060));
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: UnixTime) -> Self {
        Self(Arc::new(AtomicI64::new(at.0)))
    }

    /// Set the time.
    pub fn set(&self, at: UnixTime) {
        self.0.store(at.0, Ordering::SeqCst);
    }

    /// Move the time forward (or back, with a negative value) by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}
