//! Login attempts, throttled through the store: one atomic step reserves an attempt under
//! every limit it must fit (the account, the client address) before any password is
//! hashed, and one settles it afterwards.
//!
//! Each throttled key keeps an [`AttemptCounter`]: the failures of the current window, the
//! attempts in flight (reserved, not yet settled), when the window ends, and how many
//! windows in a row reached the limit (the back-off). An attempt is admitted only while
//! `failures + in flight < max`, so however many instances reserve at once, no more
//! guesses are evaluated per window than the limit: a burst beyond it waits
//! ([`Reservation::Full`]) until the attempts in flight are settled, then is refused once
//! they have failed.
//!
//! The memory and SQL stores run [`reserve`] and [`settle`] on the records they read inside
//! one lock or transaction; the Redis store runs the same rules in a Lua script. The
//! conformance suite checks every store against the same cases.
//!
//! Back-off: a window starts with the first attempt and lasts [`AttemptWindow::secs`]. When
//! a window ends that reached the limit, the next one is twice as long (then four times…,
//! up to [`AttemptWindow::max_secs`]). The record is kept one window length past its end,
//! so a key that stays quiet that long starts again at the base length; a success clears
//! the account's record at once.

use crate::clock::UnixTime;

/// One counter an attempt must fit under: at most `max` failures per window for `key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptLimit<'a> {
    /// The counter's key (the store may hash long keys).
    pub key: &'a str,
    /// Failures allowed per window.
    pub max: u64,
}

/// How windows are sized, and how long an attempt in flight holds its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptWindow {
    /// The first window's length, seconds.
    pub secs: i64,
    /// The longest window the back-off reaches, seconds.
    pub max_secs: i64,
    /// How long a reservation counts as in flight if it is never settled (the instance
    /// that made it died), seconds. Longer than any login takes.
    pub lease_secs: i64,
}

/// The answer to a reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The attempt may be evaluated; settle it afterwards.
    Admitted,
    /// Every place is taken by attempts in flight: try again in a moment.
    Full,
    /// The limit is reached until `until` (the end of the window of the counter that
    /// refused; the latest one when several did).
    Refused {
        /// When the window ends.
        until: UnixTime,
    },
}

/// How an admitted attempt ended, for one of its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// A wrong password or an unknown user: counts as a failure.
    Failed,
    /// Not a failure (a success, for the address; or nothing was evaluated): the place is
    /// given back.
    Released,
    /// A success, for the account: the record (failures and back-off) is forgotten.
    Cleared,
}

/// What a store keeps per throttled key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptCounter {
    /// Failures in the current window.
    pub failures: u64,
    /// Attempts reserved and not yet settled (counted while `now < pending_until`).
    pub pending: u64,
    /// When the attempts in flight stop counting (the latest reservation plus the lease).
    pub pending_until: UnixTime,
    /// When the current window ends.
    pub window_end: UnixTime,
    /// Windows in a row that reached the limit, before the current one.
    pub strikes: u32,
    /// When the store may drop the record (one window length past the window's end).
    pub expires_at: UnixTime,
}

/// Strikes beyond this add nothing (the window is at its maximum long before).
const MAX_STRIKES: u32 = 30;

impl AttemptCounter {
    fn in_flight(&self, now: UnixTime) -> u64 {
        if now < self.pending_until {
            self.pending
        } else {
            0
        }
    }

    /// A fresh window after `prev` (if any, and not yet dropped), with nothing counted.
    fn open(prev: Option<&Self>, max: u64, window: AttemptWindow, now: UnixTime) -> Self {
        let strikes = match prev {
            Some(p) if p.failures >= max => (p.strikes + 1).min(MAX_STRIKES),
            _ => 0,
        };
        let len = window_len(window, strikes);
        let window_end = now.add_secs(len);
        Self {
            failures: 0,
            pending: 0,
            pending_until: now,
            window_end,
            strikes,
            expires_at: window_end.add_secs(len),
        }
    }
}

/// The window length after `strikes` windows in a row reached the limit: the base length
/// doubled that many times, at most `max_secs` (and at least one second).
pub fn window_len(window: AttemptWindow, strikes: u32) -> i64 {
    let cap = window.max_secs.max(window.secs).max(1);
    let mut len = window.secs.max(1);
    for _ in 0..strikes {
        if len >= cap {
            break;
        }
        len = len.saturating_mul(2);
    }
    len.min(cap)
}

/// The record as it stands at `now`: `None` once the store may have dropped it.
fn current(record: Option<AttemptCounter>, now: UnixTime) -> Option<AttemptCounter> {
    record.filter(|r| now < r.expires_at)
}

/// What one counter says about a new attempt, without changing it.
fn check(record: Option<&AttemptCounter>, max: u64, now: UnixTime) -> Reservation {
    match record {
        Some(r) if now < r.window_end => {
            if r.failures >= max {
                Reservation::Refused {
                    until: r.window_end,
                }
            } else if r.failures.saturating_add(r.in_flight(now)) >= max {
                Reservation::Full
            } else {
                Reservation::Admitted
            }
        }
        // No record, or its window has ended: a new window starts with this attempt.
        _ => Reservation::Admitted,
    }
}

/// Reserve an attempt under every limit at once: `records` are the stored counters of
/// `limits`, in the same order (`None` where there is none). Returns the answer and, when
/// admitted, the counters to store (`None` when nothing changes).
///
/// Refused wins over full: a caller told "full" would only come back to be refused.
pub fn reserve(
    records: &[Option<AttemptCounter>],
    limits: &[AttemptLimit<'_>],
    window: AttemptWindow,
    now: UnixTime,
) -> (Reservation, Option<Vec<AttemptCounter>>) {
    let records: Vec<_> = records.iter().map(|r| current(*r, now)).collect();
    let mut answer = Reservation::Admitted;
    for (record, limit) in records.iter().zip(limits) {
        match (check(record.as_ref(), limit.max, now), answer) {
            (Reservation::Refused { until }, Reservation::Refused { until: other }) => {
                answer = Reservation::Refused {
                    until: until.max(other),
                };
            }
            (Reservation::Refused { until }, _) => answer = Reservation::Refused { until },
            (Reservation::Full, Reservation::Admitted) => answer = Reservation::Full,
            _ => {}
        }
    }
    if answer != Reservation::Admitted {
        return (answer, None);
    }
    let updated = records
        .iter()
        .zip(limits)
        .map(|(record, limit)| {
            let mut r = match record {
                Some(r) if now < r.window_end => *r,
                prev => AttemptCounter::open(prev.as_ref(), limit.max, window, now),
            };
            r.pending = r.in_flight(now).saturating_add(1);
            r.pending_until = now.add_secs(window.lease_secs.max(1));
            r.expires_at = r.expires_at.max(r.pending_until);
            r
        })
        .collect();
    (Reservation::Admitted, Some(updated))
}

/// An attempt whose outcome is known before it is counted, reserved and settled at once:
/// [`reserve`] over the `settlements`' limits and, when admitted, [`settle`] on each as
/// told. Returns the answer and, when admitted, each counter to store (`None`: delete).
pub fn record(
    records: &[Option<AttemptCounter>],
    settlements: &[(AttemptLimit<'_>, Settlement)],
    window: AttemptWindow,
    now: UnixTime,
) -> (Reservation, Option<Vec<Option<AttemptCounter>>>) {
    let limits: Vec<AttemptLimit<'_>> = settlements.iter().map(|(limit, _)| *limit).collect();
    let (answer, reserved) = reserve(records, &limits, window, now);
    let settled = reserved.map(|reserved| {
        reserved
            .into_iter()
            .zip(settlements)
            .map(|(counter, (limit, how))| settle(Some(counter), limit.max, *how, window, now))
            .collect()
    });
    (answer, settled)
}

/// Settle an admitted attempt on one counter. Returns the counter to store, or `None` to
/// delete it ([`Settlement::Cleared`]). A settlement that finds the window over (or the
/// record gone) counts a failure in a new window, and gives back nothing.
pub fn settle(
    record: Option<AttemptCounter>,
    max: u64,
    how: Settlement,
    window: AttemptWindow,
    now: UnixTime,
) -> Option<AttemptCounter> {
    let record = current(record, now);
    let live = record.filter(|r| now < r.window_end);
    match how {
        Settlement::Cleared => None,
        Settlement::Released => match live {
            Some(mut r) => {
                r.pending = r.in_flight(now).saturating_sub(1);
                Some(r)
            }
            None => record,
        },
        Settlement::Failed => {
            let mut r = match live {
                Some(mut r) => {
                    r.pending = r.in_flight(now).saturating_sub(1);
                    r
                }
                None => AttemptCounter::open(record.as_ref(), max, window, now),
            };
            r.failures = r.failures.saturating_add(1);
            Some(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: UnixTime = UnixTime(1_800_000_000);
    const W: AttemptWindow = AttemptWindow {
        secs: 60,
        max_secs: 400,
        lease_secs: 10,
    };

    /// One key, limit 2: reserve, then settle as told, at `now`.
    fn step(
        rec: Option<AttemptCounter>,
        now: UnixTime,
        how: Settlement,
    ) -> (Reservation, Option<AttemptCounter>) {
        let limits = [AttemptLimit { key: "k", max: 2 }];
        match reserve(&[rec], &limits, W, now) {
            (Reservation::Admitted, Some(mut v)) => {
                (Reservation::Admitted, settle(v.pop(), 2, how, W, now))
            }
            (answer, _) => (answer, rec),
        }
    }

    #[test]
    fn failures_up_to_the_limit_then_refused_until_the_window_ends() {
        let (a, r) = step(None, T0, Settlement::Failed);
        assert_eq!(a, Reservation::Admitted);
        let (a, r) = step(r, T0.add_secs(5), Settlement::Failed);
        assert_eq!(a, Reservation::Admitted);
        let (a, r) = step(r, T0.add_secs(59), Settlement::Failed);
        assert_eq!(
            a,
            Reservation::Refused {
                until: T0.add_secs(60)
            }
        );
        assert_eq!(r.unwrap().failures, 2);
        // The next window is twice as long: 120 s, then 240, then 400 (the cap).
        let mut r = r;
        for (start, len) in [(60, 120), (180, 240), (420, 400), (820, 400)] {
            let t = T0.add_secs(start);
            let (a, next) = step(r, t, Settlement::Failed);
            assert_eq!(a, Reservation::Admitted, "at {start}");
            let (_, next) = step(next, t, Settlement::Failed);
            assert_eq!(
                step(next, t, Settlement::Failed).0,
                Reservation::Refused {
                    until: t.add_secs(len)
                },
                "at {start}"
            );
            r = next;
        }
    }

    #[test]
    fn quiet_for_a_window_length_forgets_the_back_off() {
        let (_, r) = step(None, T0, Settlement::Failed);
        let (_, r) = step(r, T0, Settlement::Failed);
        // Ended at 60; kept until 120. At 120 it is as if nothing happened.
        let (_, r2) = step(r, T0.add_secs(120), Settlement::Failed);
        assert_eq!(r2.unwrap().strikes, 0);
        assert_eq!(r2.unwrap().window_end, T0.add_secs(180));
        let (_, r3) = step(r, T0.add_secs(119), Settlement::Failed);
        assert_eq!(r3.unwrap().strikes, 1);
    }

    #[test]
    fn in_flight_attempts_hold_places_until_settled_or_the_lease_ends() {
        let limits = [AttemptLimit { key: "k", max: 2 }];
        let (a, v) = reserve(&[None], &limits, W, T0);
        assert_eq!(a, Reservation::Admitted);
        let r = v.unwrap()[0];
        let (a, v) = reserve(&[Some(r)], &limits, W, T0);
        assert_eq!(a, Reservation::Admitted);
        let r = v.unwrap()[0];
        assert_eq!(r.pending, 2);
        assert_eq!(reserve(&[Some(r)], &limits, W, T0).0, Reservation::Full);
        // One gives its place back: room again.
        let released = settle(Some(r), 2, Settlement::Released, W, T0);
        assert_eq!(
            reserve(&[released], &limits, W, T0).0,
            Reservation::Admitted
        );
        // Never settled: the lease ends and the places are free again.
        assert_eq!(
            reserve(&[Some(r)], &limits, W, T0.add_secs(10)).0,
            Reservation::Admitted
        );
    }

    #[test]
    fn several_limits_admit_together_and_refusal_wins() {
        let limits = [
            AttemptLimit { key: "a", max: 1 },
            AttemptLimit { key: "b", max: 5 },
        ];
        let (_, v) = reserve(&[None, None], &limits, W, T0);
        let v = v.unwrap();
        assert_eq!((v[0].pending, v[1].pending), (1, 1));
        let a = settle(Some(v[0]), 1, Settlement::Failed, W, T0);
        // `a` refuses; `b` is untouched by the refusal.
        assert_eq!(
            reserve(&[a, Some(v[1])], &limits, W, T0),
            (
                Reservation::Refused {
                    until: T0.add_secs(60)
                },
                None
            )
        );
        // Cleared: forgotten.
        assert_eq!(settle(a, 1, Settlement::Cleared, W, T0), None);
    }

    #[test]
    fn window_lengths() {
        assert_eq!(window_len(W, 0), 60);
        assert_eq!(window_len(W, 3), 400);
        assert_eq!(window_len(W, MAX_STRIKES), 400);
        let w = AttemptWindow {
            secs: i64::MAX / 2,
            max_secs: i64::MAX,
            lease_secs: 1,
        };
        assert_eq!(window_len(w, MAX_STRIKES), i64::MAX);
    }
}
