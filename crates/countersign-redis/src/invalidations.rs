//! Push invalidation over Redis pub/sub ([`countersign::invalidation`]): revocations are
//! `PUBLISH`ed on `<prefix>invalidations` through the store's connection, and [`listen`]
//! holds a connection of its own subscribed to that channel.
//!
//! Pub/sub delivers at most once and only to connected subscribers, so the listener tells
//! the receiver when it is subscribed and when it is not: a connection that closes (a
//! Redis restart, `CLIENT KILL`, a network reset) or stops answering its heartbeat `PING`
//! makes it unsubscribed at once; it reconnects with exponential backoff (50 ms up to
//! [`RedisOptions::reconnect_max_delay`](crate::RedisOptions::reconnect_max_delay)) and is
//! subscribed again once Redis has confirmed the `SUBSCRIBE`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use countersign::invalidation::{Broadcast, Receiver};
use countersign::store::StoreResult;
use futures_util::StreamExt as _;

use crate::RedisStore;

/// How often the listener checks its connection with a `PING`.
const HEARTBEAT: Duration = Duration::from_secs(5);

impl RedisStore {
    /// The channel invalidations go on.
    fn channel(&self) -> String {
        format!("{}invalidations", self.key_prefix())
    }
}

#[async_trait]
impl Broadcast for RedisStore {
    async fn publish(&self, message: &str) -> StoreResult<()> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(self.channel()).arg(message);
        let mut conn = self.conn();
        let _: i64 = self.run(cmd.query_async(&mut conn)).await?;
        Ok(())
    }
}

/// Deliver `store`'s invalidations to `receiver`, forever: subscribe, deliver, and on any
/// loss tell the receiver and subscribe again. Spawn it and abort the task to stop.
pub async fn listen(store: RedisStore, receiver: Arc<dyn Receiver>) {
    let inner = &store.inner;
    let channel = store.channel();
    let first_delay = Duration::from_millis(50);
    let mut delay = first_delay;
    let mut down_logged = false;
    loop {
        match subscribe(&store, &channel).await {
            Ok(pubsub) => {
                receiver.subscribed();
                delay = first_delay;
                down_logged = false;
                let why = deliver(pubsub, receiver.as_ref(), inner.command_timeout).await;
                receiver.unsubscribed();
                tracing::warn!(
                    channel,
                    why,
                    "the Redis invalidation subscription was lost; reconnecting"
                );
            }
            Err(e) => {
                if !down_logged {
                    tracing::warn!(
                        channel,
                        error = %e,
                        "cannot subscribe to Redis invalidations; retrying"
                    );
                    down_logged = true;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(inner.reconnect_max_delay.max(first_delay));
    }
}

/// A new connection subscribed to `channel`, within the connect and command timeouts.
async fn subscribe(
    store: &RedisStore,
    channel: &str,
) -> Result<redis::aio::PubSub, redis::RedisError> {
    let inner = &store.inner;
    let timed_out = || redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
    let mut pubsub = tokio::time::timeout(inner.connect_timeout, inner.client.get_async_pubsub())
        .await
        .map_err(|_| timed_out())??;
    tokio::time::timeout(inner.command_timeout, pubsub.subscribe(channel))
        .await
        .map_err(|_| timed_out())??;
    Ok(pubsub)
}

/// Deliver messages until the connection is lost; returns why.
async fn deliver(
    pubsub: redis::aio::PubSub,
    receiver: &dyn Receiver,
    command_timeout: Duration,
) -> &'static str {
    let (mut sink, mut stream) = pubsub.split();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(message) => match message.get_payload::<String>() {
                    Ok(text) => receiver.received(&text),
                    // Not text: this version cannot read it, so forget everything.
                    Err(_) => receiver.received("*"),
                },
                None => return "the connection closed",
            },
            _ = heartbeat.tick() => {
                let ping = tokio::time::timeout(command_timeout, sink.ping::<String>()).await;
                if !matches!(ping, Ok(Ok(_))) {
                    return "the connection stopped answering";
                }
            }
        }
    }
}
