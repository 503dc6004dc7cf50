//! [`ThrottleStore`]: a hash per counter (`count`, window `end`) that Redis drops when
//! the window ends.

use async_trait::async_trait;
use countersign::clock::UnixTime;
use countersign::store::{StoreResult, ThrottleStore};

use crate::{RedisStore, parse_time, secs};

const RECORD: &str = "throttle counter";

#[async_trait]
impl ThrottleStore for RedisStore {
    async fn hit(
        &self,
        key: &str,
        window_secs: i64,
        now: UnixTime,
    ) -> StoreResult<(u64, UnixTime)> {
        let mut call = self.scripts().throttle_hit.prepare_invoke();
        call.key(self.keys().throttle(key))
            .arg(secs(now))
            .arg(window_secs);
        let mut conn = self.conn();
        let (count, end): (u64, String) = self.run(call.invoke_async(&mut conn)).await?;
        Ok((count, parse_time(RECORD, "end", &end)?))
    }

    async fn peek(&self, key: &str, now: UnixTime) -> StoreResult<(u64, UnixTime)> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.keys().throttle(key)).arg("count").arg("end");
        let mut conn = self.conn();
        let (count, end): (Option<String>, Option<String>) =
            self.run(cmd.query_async(&mut conn)).await?;
        let (Some(count), Some(end)) = (count, end) else {
            return Ok((0, now));
        };
        let end = parse_time(RECORD, "end", &end)?;
        if now >= end {
            return Ok((0, now));
        }
        let count = count.parse().map_err(|_| crate::corrupt(RECORD, "count"))?;
        Ok((count, end))
    }

    async fn clear(&self, key: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let _: i64 = self
            .run(redis::AsyncCommands::del(
                &mut conn,
                self.keys().throttle(key),
            ))
            .await?;
        Ok(())
    }
}
