//! Redis pub/sub for push invalidation: what the store publishes reaches the listener; a
//! killed subscriber connection (`CLIENT KILL TYPE pubsub`, on a private `redis-server`)
//! makes the listener unsubscribed, and it subscribes again by itself and hears what comes
//! after; a server that goes away and comes back likewise.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use countersign::invalidation::Receiver;
use countersign::store::SessionStore as _;
use countersign_redis::{RedisOptions, connect};

use crate::support::ChildRedis;

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
    /// Wait (bounded: 20 s, polling every 5 ms) until `event` has happened `n` times.
    pub(crate) async fn wait_for(&self, event: &str, n: usize) {
        for _ in 0..4_000 {
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

    fn count(&self, event: &str) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| *e == event)
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reaches_the_listener_which_resubscribes_after_a_kill_or_a_restart() {
    let Some(mut server) = ChildRedis::start(&[]) else {
        return;
    };
    let store = connect(&server.url(None), &RedisOptions::default())
        .await
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    let task = tokio::spawn(countersign_redis::listen(
        store.clone(),
        Arc::clone(&recorder) as Arc<dyn Receiver>,
    ));
    recorder.wait_for("+", 1).await;
    let broadcast = store.broadcast().expect("Redis has a channel");
    broadcast.publish("u:1").await.unwrap();
    recorder.wait_for("u:1", 1).await;

    // The subscriber's connection is killed: unsubscribed, then subscribed again.
    let client = redis::Client::open(server.url(None)).unwrap();
    let mut admin = client.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    recorder.wait_for("-", 1).await;
    recorder.wait_for("+", 2).await;
    broadcast.publish("u:2").await.unwrap();
    recorder.wait_for("u:2", 1).await;

    // The server goes away and comes back (empty): the same, once it answers again.
    server.restart();
    recorder.wait_for("-", 2).await;
    recorder.wait_for("+", 3).await;
    // The store's own connection reconnects on demand: retry the first publish.
    for _ in 0..400 {
        if broadcast.publish("u:3").await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    recorder.wait_for("u:3", 1).await;
    task.abort();
}
