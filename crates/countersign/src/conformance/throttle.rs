//! Throttle counters and login-attempt reservations.

use crate::attempts::{AttemptLimit, AttemptWindow, Reservation, Settlement};
use crate::store::ThrottleStore;

use super::fixtures::*;

/// Throttle counters: fixed windows, peek, clear.
pub async fn throttle<S: ThrottleStore>(s: &S) {
    let key = format!("acct:{}", crate::random::token_id());
    assert_eq!(s.peek(&key, T0).await.unwrap().0, 0);
    assert_eq!(s.hit(&key, 60, T0).await.unwrap(), (1, T0.add_secs(60)));
    assert_eq!(
        s.hit(&key, 60, T0.add_secs(30)).await.unwrap(),
        (2, T0.add_secs(60))
    );
    assert_eq!(
        s.peek(&key, T0.add_secs(59)).await.unwrap(),
        (2, T0.add_secs(60))
    );
    assert_eq!(s.peek(&key, T0.add_secs(60)).await.unwrap().0, 0);
    assert_eq!(
        s.hit(&key, 60, T0.add_secs(61)).await.unwrap(),
        (1, T0.add_secs(121))
    );
    s.clear(&key).await.unwrap();
    assert_eq!(s.peek(&key, T0.add_secs(62)).await.unwrap().0, 0);

    // Concurrent hits are all counted.
    let key = format!("ip:{}", crate::random::token_id());
    let (a, b, c, d) = tokio::join!(
        s.hit(&key, 60, T0),
        s.hit(&key, 60, T0),
        s.hit(&key, 60, T0),
        s.hit(&key, 60, T0)
    );
    let mut counts = [a.unwrap().0, b.unwrap().0, c.unwrap().0, d.unwrap().0];
    counts.sort_unstable();
    assert_eq!(counts, [1, 2, 3, 4]);
    assert_eq!(s.peek(&key, T0).await.unwrap().0, 4);
}

/// Login attempts: one atomic reservation under several limits, settled afterwards;
/// places held by attempts in flight; windows that grow after a lockout; a cleared
/// account; no more admissions than places when reservations race; and attempts recorded
/// with their outcome in one step (`record_attempt`) under the same rules.
pub async fn throttle_attempts<S: ThrottleStore>(s: &S) {
    use Reservation::{Admitted, Full, Refused};
    use Settlement::{Cleared, Failed, Released};
    let w = AttemptWindow {
        secs: 60,
        max_secs: 200,
        lease_secs: 10,
    };
    // Leaked: a few short strings per test run, so the limits can be `'static`.
    let key =
        |kind: &str| -> &'static str { format!("{kind}:{}", crate::random::token_id()).leak() };
    let (acct, addr, other) = (key("acct"), key("addr"), key("acct"));
    let a = AttemptLimit { key: acct, max: 2 };
    let b = AttemptLimit { key: addr, max: 3 };
    let c = AttemptLimit { key: other, max: 2 };
    let reserve = |limits: &[AttemptLimit<'static>], now| {
        let limits = limits.to_vec();
        async move { s.reserve_attempt(&limits, w, now).await.unwrap() }
    };
    let settle = |pairs: &[(AttemptLimit<'static>, Settlement)], now| {
        let pairs = pairs.to_vec();
        async move { s.settle_attempt(&pairs, w, now).await.unwrap() }
    };

    // Two places on `a`; both in flight, a third waits.
    assert_eq!(reserve(&[a, b], T0).await, Admitted);
    assert_eq!(reserve(&[a, b], T0).await, Admitted);
    assert_eq!(reserve(&[a, b], T0).await, Full);
    // One fails, one gives its place back: one place left.
    settle(&[(a, Failed), (b, Failed)], T0).await;
    settle(&[(a, Released), (b, Released)], T0).await;
    assert_eq!(reserve(&[a, b], T0.add_secs(1)).await, Admitted);
    settle(&[(a, Failed), (b, Failed)], T0.add_secs(1)).await;
    // `a` is at its limit until its window ends, and nothing was counted by the refusal.
    let until_a = Refused {
        until: T0.add_secs(60),
    };
    assert_eq!(reserve(&[a, b], T0.add_secs(2)).await, until_a);
    assert_eq!(reserve(&[b, a], T0.add_secs(59)).await, until_a);
    // The address has one place left: another account takes it, then it refuses too.
    assert_eq!(reserve(&[c, b], T0.add_secs(2)).await, Admitted);
    settle(&[(c, Failed), (b, Failed)], T0.add_secs(2)).await;
    assert_eq!(
        reserve(&[c, b], T0.add_secs(3)).await,
        Refused {
            until: T0.add_secs(60)
        }
    );

    // The window ended at its limit: the next one is twice as long.
    let t1 = T0.add_secs(60);
    assert_eq!(reserve(&[a], t1).await, Admitted);
    settle(&[(a, Failed)], t1).await;
    assert_eq!(reserve(&[a], t1).await, Admitted);
    settle(&[(a, Failed)], t1).await;
    assert_eq!(
        reserve(&[a], t1.add_secs(119)).await,
        Refused {
            until: t1.add_secs(120)
        }
    );
    // A success clears it: back to one base-length window.
    settle(&[(a, Cleared)], t1.add_secs(5)).await;
    let t2 = t1.add_secs(6);
    for _ in 0..2 {
        assert_eq!(reserve(&[a], t2).await, Admitted);
        settle(&[(a, Failed)], t2).await;
    }
    assert_eq!(
        reserve(&[a], t2).await,
        Refused {
            until: t2.add_secs(60)
        }
    );

    // Never settled (its instance died): the places free themselves when the lease ends.
    let d = AttemptLimit {
        key: key("acct"),
        max: 2,
    };
    assert_eq!(reserve(&[d], T0).await, Admitted);
    assert_eq!(reserve(&[d], T0).await, Admitted);
    assert_eq!(reserve(&[d], T0.add_secs(9)).await, Full);
    assert_eq!(reserve(&[d], T0.add_secs(10)).await, Admitted);

    // Racing reservations: exactly as many admitted as there are places.
    let e = AttemptLimit {
        key: key("acct"),
        max: 3,
    };
    let f = AttemptLimit {
        key: key("addr"),
        max: 100,
    };
    let r = || reserve(&[e, f], T0);
    let all = tokio::join!(r(), r(), r(), r(), r(), r(), r(), r());
    let all = [all.0, all.1, all.2, all.3, all.4, all.5, all.6, all.7];
    assert_eq!(all.iter().filter(|r| **r == Admitted).count(), 3, "{all:?}");
    assert_eq!(all.iter().filter(|r| **r == Full).count(), 5, "{all:?}");

    // Attempts recorded with their outcome in one step: failures count on both keys, a
    // success clears the account and gives the address nothing to hold, and past the
    // limit nothing more is recorded.
    let g = AttemptLimit {
        key: key("code"),
        max: 2,
    };
    let h = AttemptLimit {
        key: key("addr"),
        max: 3,
    };
    let record = |pairs: &[(AttemptLimit<'static>, Settlement)], now| {
        let pairs = pairs.to_vec();
        async move { s.record_attempt(&pairs, w, now).await.unwrap() }
    };
    assert_eq!(record(&[(g, Failed), (h, Failed)], T0).await, Admitted);
    assert_eq!(record(&[(g, Cleared), (h, Released)], T0).await, Admitted);
    // Cleared: two more failures fit on `g`; the address holds one failure and no place.
    assert_eq!(record(&[(g, Failed), (h, Failed)], T0).await, Admitted);
    assert_eq!(record(&[(g, Failed), (h, Failed)], T0).await, Admitted);
    assert_eq!(
        record(&[(g, Cleared), (h, Released)], T0.add_secs(1)).await,
        Refused {
            until: T0.add_secs(60)
        },
        "past the limit even a success is refused, and not recorded"
    );
    // The address reached its 3 failures too; a reservation sees the same counters.
    assert_eq!(
        reserve(&[h], T0.add_secs(2)).await,
        Refused {
            until: T0.add_secs(60)
        }
    );
    // Racing recorded failures: no more are admitted than the limit.
    let i = AttemptLimit {
        key: key("code"),
        max: 3,
    };
    let j = AttemptLimit {
        key: key("addr"),
        max: 100,
    };
    let r = || record(&[(i, Failed), (j, Failed)], T0);
    let all = tokio::join!(r(), r(), r(), r(), r(), r());
    let all = [all.0, all.1, all.2, all.3, all.4, all.5];
    assert_eq!(all.iter().filter(|r| **r == Admitted).count(), 3, "{all:?}");
}
