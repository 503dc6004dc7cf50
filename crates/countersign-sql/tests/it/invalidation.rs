//! PostgreSQL `LISTEN`/`NOTIFY` for push invalidation: what the store publishes reaches the
//! listener; a terminated listening backend makes the listener unsubscribed, and it
//! subscribes again by itself and hears what comes after.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use countersign::invalidation::Receiver;
use countersign::store::SessionStore as _;
use countersign_sql::{SqlStore, sqlx};

/// What a listener delivered, in order: `+` subscribed, `-` unsubscribed, else a message.
#[derive(Default)]
pub(crate) struct Recorder {
    events: Mutex<Vec<String>>,
}

impl Receiver for Recorder {
    fn subscribed(&self) {
        self.events.lock().unwrap().push("+".into());
    }
    fn unsubscribed(&self) {
        self.events.lock().unwrap().push("-".into());
    }
    fn received(&self, message: &str) {
        self.events.lock().unwrap().push(message.into());
    }
}

impl Recorder {
    /// Wait (bounded: 10 s, polling every 5 ms) until `event` has happened `n` times.
    pub(crate) async fn wait_for(&self, event: &str, n: usize) {
        for _ in 0..2_000 {
            if self.count(event) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!(
            "{event:?} not seen {n} times: {:?}",
            self.events.lock().unwrap()
        );
    }

    pub(crate) fn count(&self, event: &str) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| *e == event)
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_reaches_the_listener_which_resubscribes_after_its_backend_is_terminated() {
    let Some(store) = crate::postgres::store().await else {
        return;
    };
    let SqlStore::Postgres(pg) = store.clone() else {
        unreachable!("a PostgreSQL store")
    };
    let recorder = Arc::new(Recorder::default());
    let task = tokio::spawn(countersign_sql::listen(
        pg.clone(),
        Arc::clone(&recorder) as Arc<dyn Receiver>,
    ));
    recorder.wait_for("+", 1).await;
    let broadcast = store.broadcast().expect("PostgreSQL has a channel");
    broadcast.publish("u:1").await.unwrap();
    recorder.wait_for("u:1", 1).await;

    // The listening backend, by its channel (this test's schema is in its name).
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(pg.pool())
        .await
        .unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query LIKE 'LISTEN %' AND query LIKE '%' || $1 || '%'",
    )
    .bind(&schema)
    .fetch_all(pg.pool())
    .await
    .unwrap();
    assert_eq!(killed, vec![true]);
    recorder.wait_for("-", 1).await;
    recorder.wait_for("+", 2).await;
    broadcast.publish("u:2").await.unwrap();
    recorder.wait_for("u:2", 1).await;
    task.abort();
}
