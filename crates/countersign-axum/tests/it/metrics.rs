//! Counters: rejections by reason, successes by method, each request counted once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use http::header;
use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

use crate::common::*;

struct Count(AtomicU64);

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::SeqCst);
    }
}

/// Counters by `name{label=value,…}`.
#[derive(Default)]
struct Counters(Mutex<BTreeMap<String, Arc<Count>>>);

impl Counters {
    fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.0.load(Ordering::SeqCst)))
            .filter(|(_, v)| *v > 0)
            .collect()
    }
}

impl Recorder for Counters {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let mut map = self.0.lock().unwrap();
        let entry = map
            .entry(name)
            .or_insert_with(|| Arc::new(Count(AtomicU64::new(0))));
        Counter::from_arc(Arc::clone(entry))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn rejections_and_successes_are_counted_once() {
    let counters = Counters::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    metrics::with_local_recorder(&counters, || {
        runtime.block_on(async {
            let fx = fixture().await;
            let token = fx.token(&fx.alice).await;
            let (cookie, record) = fx.session(&fx.alice).await;
            let get = |uri: &str, name: header::HeaderName, value: String| {
                get_req(uri)
                    .header(name, value)
                    .body(Body::empty())
                    .unwrap()
            };
            fx.call(get_req("/protected").body(Body::empty()).unwrap())
                .await;
            fx.call(get("/protected", header::AUTHORIZATION, bearer(&token)))
                .await
                .assert_ok();
            fx.call(get("/protected", header::AUTHORIZATION, bearer("x")))
                .await;
            fx.call(get("/admin", header::AUTHORIZATION, bearer(&token)))
                .await;
            fx.call(get("/protected", header::COOKIE, fx.session_cookie("bad")))
                .await;
            // Guard and extractor share one lookup: one success, not two.
            fx.call(
                post_req("/act")
                    .header(header::COOKIE, fx.session_cookie(&cookie))
                    .header("x-csrf-token", &record.csrf_token)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .assert_ok();
            fx.call(
                post_req("/act")
                    .header(header::COOKIE, fx.session_cookie(&cookie))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            fx.clock.advance(3600);
            fx.call(get("/protected", header::AUTHORIZATION, bearer(&token)))
                .await;
            // An anonymous page view is not a rejection.
            fx.call(get_req("/page").body(Body::empty()).unwrap()).await;
        });
    });
    let expected: BTreeMap<String, u64> = [
        ("countersign_auth_rejections_total{reason=missing_token}", 1),
        ("countersign_auth_rejections_total{reason=invalid_token}", 1),
        ("countersign_auth_rejections_total{reason=expired_token}", 1),
        (
            "countersign_auth_rejections_total{reason=insufficient_scope}",
            1,
        ),
        (
            "countersign_auth_rejections_total{reason=invalid_session}",
            1,
        ),
        ("countersign_auth_rejections_total{reason=csrf_failed}", 1),
        ("countersign_auth_success_total{method=bearer}", 2),
        ("countersign_auth_success_total{method=session}", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(counters.snapshot(), expected);
}
