//! Push invalidation over PostgreSQL `LISTEN`/`NOTIFY` ([`countersign::invalidation`]),
//! when the session store is PostgreSQL: revocations are `pg_notify`ed through the store's
//! pool, and [`listen`] holds one connection of its own (outside the pool) that `LISTEN`s.
//!
//! The channel is `countersign.<schema>` (the connection's `current_schema()`, cut to
//! PostgreSQL's 63-byte limit), so deployments in different schemas of one database do not
//! hear each other.
//!
//! `NOTIFY` reaches only sessions listening at the time, so the listener tells the
//! receiver when it is subscribed and when it is not: a connection that is closed (a server
//! restart, `pg_terminate_backend`, a network reset) makes it unsubscribed at once; it
//! reconnects with exponential backoff (50 ms up to 2 s) and is subscribed again once its
//! `LISTEN` has been answered.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use countersign::invalidation::{Broadcast, Receiver};
use countersign::store::StoreResult;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};

use crate::PgStore;
use crate::error::store_err;

/// The channel's name, computed by the server from the connection's schema.
const CHANNEL: &str = "left('countersign.' || coalesce(current_schema(), ''), 63)";

/// The longest pause between two subscription attempts.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// How long connecting and `LISTEN` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[async_trait]
impl Broadcast for PgStore {
    async fn publish(&self, message: &str) -> StoreResult<()> {
        sqlx::query(&format!("SELECT pg_notify({CHANNEL}, $1)"))
            .bind(message)
            .execute(self.pool())
            .await
            .map_err(store_err)?;
        Ok(())
    }
}

/// Deliver `store`'s invalidations to `receiver`, forever: listen, deliver, and on any
/// loss tell the receiver and listen again. Spawn it and abort the task to stop.
pub async fn listen(store: PgStore, receiver: Arc<dyn Receiver>) {
    // A pool of one, apart from the store's: the listening connection is held for good.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .acquire_timeout(CONNECT_TIMEOUT)
        .idle_timeout(None)
        .max_lifetime(None)
        .test_before_acquire(false)
        .connect_lazy_with((*store.pool().connect_options()).clone());
    let first_delay = Duration::from_millis(50);
    let mut delay = first_delay;
    let mut down_logged = false;
    loop {
        match subscribe(&pool).await {
            Ok((mut listener, channel)) => {
                receiver.subscribed();
                delay = first_delay;
                down_logged = false;
                let why = loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => receiver.received(notification.payload()),
                        Ok(None) => break "the connection closed".to_owned(),
                        Err(e) => break e.to_string(),
                    }
                };
                receiver.unsubscribed();
                tracing::warn!(
                    channel,
                    why,
                    "the PostgreSQL invalidation subscription was lost; reconnecting"
                );
            }
            Err(e) => {
                if !down_logged {
                    tracing::warn!(
                        error = %e,
                        "cannot listen for PostgreSQL invalidations; retrying"
                    );
                    down_logged = true;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

/// A new connection listening on the channel, and the channel's name.
async fn subscribe(pool: &PgPool) -> Result<(PgListener, String), sqlx::Error> {
    let setup = async {
        let mut listener = PgListener::connect_with(pool).await?;
        // A lost connection is reported, not silently replaced: the receiver must know.
        listener.eager_reconnect(false);
        let channel: String = sqlx::query_scalar(&format!("SELECT {CHANNEL}"))
            .fetch_one(&mut listener)
            .await?;
        listener.listen(&channel).await?;
        Ok((listener, channel))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, setup)
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)?
}
