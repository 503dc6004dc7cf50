//! The sweep: removes what ended by the passed time, in batches, and only that.

use std::sync::Arc;
use std::time::Duration;

use countersign::clock::{Clock, ManualClock, SystemClock, UnixTime};
use countersign::refresh::{RefreshFamily, RefreshHash, RefreshPolicy};
use countersign::session::{SessionPolicy, SessionRecord, SessionToken};
use countersign::store::{RefreshStore, SessionStore};
use countersign::sweep::{Sweep as _, continuously_delete_expired};
use countersign::user::{Role, UserId, Username};
use countersign_redis::RedisOptions;
use redis::AsyncCommands as _;

use crate::support::{raw, test_store, test_store_with};

const POLICY: SessionPolicy = SessionPolicy {
    idle_secs: 100,
    absolute_secs: 1000,
    touch_every_secs: 60,
};

fn session(user: i64, now: UnixTime) -> SessionRecord {
    SessionRecord::new(
        &SessionToken::generate(),
        UserId(user),
        Username::parse("sweep").unwrap(),
        Role::user(),
        &POLICY,
        now,
    )
}

fn hash() -> RefreshHash {
    RefreshHash::from_stored(countersign::random::opaque_token())
}

#[tokio::test]
async fn sweep_removes_what_ended_in_batches() {
    let mut opts = RedisOptions::default();
    opts.sweep_batch = 2;
    let Some(t) = test_store_with(opts).await else {
        return;
    };
    let s = t.inner();
    let now = SystemClock.now();
    let ended: Vec<_> = (0..5).map(|i| session(i % 2 + 1, now)).collect();
    for r in &ended {
        s.create_session(r).await.unwrap();
    }
    // Touched: its idle deadline moved past the sweep time, so it stays.
    let kept = session(1, now);
    s.create_session(&kept).await.unwrap();
    assert!(
        s.touch_session(&kept.key, now.add_secs(60), now.add_secs(160))
            .await
            .unwrap()
    );

    let refresh = RefreshPolicy {
        idle_secs: 100,
        absolute_secs: 1000,
    };
    let live = RefreshFamily::new(UserId(1), &refresh, now);
    let revoked = RefreshFamily::new(UserId(1), &refresh, now);
    let idle = RefreshFamily::new(UserId(2), &refresh, now.add_secs(-50));
    let (tl, tr, ti) = (hash(), hash(), hash());
    s.create_family(&live, &tl).await.unwrap();
    s.create_family(&revoked, &tr).await.unwrap();
    s.create_family(&idle, &ti).await.unwrap();
    assert!(s.revoke_family(&revoked.id).await.unwrap());
    // Rotated at +10: idle until +110, past the sweep time.
    assert!(matches!(
        s.rotate(std::slice::from_ref(&tl), &hash(), 100, now.add_secs(10))
            .await
            .unwrap(),
        countersign::refresh::RotateOutcome::Rotated { .. }
    ));

    let report = t.inner().delete_expired(now.add_secs(101)).await.unwrap();
    assert_eq!((report.sessions, report.families), (5, 2));
    for r in &ended {
        assert_eq!(s.load_session(&r.key, now).await.unwrap(), None);
    }
    assert!(
        s.load_session(&kept.key, now.add_secs(101))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.list_user_sessions(UserId(1), now.add_secs(101))
            .await
            .unwrap(),
        vec![s.load_session(&kept.key, now).await.unwrap().unwrap()]
    );
    // The revoked and idle families' tokens went with them; the live family is whole.
    let mut conn = raw().await;
    let p = s.key_prefix();
    for (h, gone) in [(&tr, true), (&ti, true), (&tl, false)] {
        let exists: bool = conn
            .exists(format!("{p}refresh:{}", h.as_str()))
            .await
            .unwrap();
        assert_eq!(exists, !gone, "{h:?}");
    }
    let families: Vec<String> = conn.smembers(format!("{p}user:1:families")).await.unwrap();
    assert_eq!(families, vec![live.id.0.clone()]);

    // Nothing else is due.
    let again = t.inner().delete_expired(now.add_secs(101)).await.unwrap();
    assert_eq!((again.sessions, again.families), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_sweeper_runs() {
    let Some(t) = test_store().await else { return };
    let now = SystemClock.now();
    let r = session(7, now);
    t.inner().create_session(&r).await.unwrap();
    let clock = ManualClock::new(now.add_secs(POLICY.idle_secs));
    let handle = tokio::spawn(continuously_delete_expired(
        t.inner().clone(),
        Duration::from_millis(10),
        Arc::new(clock.clone()),
    ));
    let mut conn = raw().await;
    let key = format!("{}session:{}", t.inner().key_prefix(), r.key);
    // Bounded wait for the background task (real time: it runs every 10 ms).
    let mut gone = false;
    for _ in 0..500 {
        let exists: bool = conn.exists(&key).await.unwrap();
        if !exists {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle.abort();
    assert!(gone, "the sweeper did not remove the ended session");
}
