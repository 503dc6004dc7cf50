//! [`ThrottleStore`]: a hash per counter (`count`, window `end`) that Redis drops when
//! the window ends; and per login-attempt key a hash the two attempt scripts keep by the
//! rules of [`countersign::attempts`].

use async_trait::async_trait;
use countersign::attempts::{AttemptLimit, AttemptWindow, Reservation, Settlement};
use countersign::clock::UnixTime;
use countersign::store::{StoreResult, ThrottleStore};

use crate::{RedisStore, parse_time, secs};

/// The attempt scripts' first arguments: now and the window.
fn window_args(call: &mut redis::ScriptInvocation<'_>, window: AttemptWindow, now: UnixTime) {
    call.arg(secs(now))
        .arg(window.secs)
        .arg(window.max_secs)
        .arg(window.lease_secs);
}

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

    async fn reserve_attempt(
        &self,
        limits: &[AttemptLimit<'_>],
        window: AttemptWindow,
        now: UnixTime,
    ) -> StoreResult<Reservation> {
        let mut call = self.scripts().attempt_reserve.prepare_invoke();
        for limit in limits {
            call.key(self.keys().attempts(limit.key));
        }
        window_args(&mut call, window, now);
        for limit in limits {
            call.arg(limit.max);
        }
        let mut conn = self.conn();
        let (answer, until): (i64, String) = self.run(call.invoke_async(&mut conn)).await?;
        Ok(match answer {
            0 => Reservation::Admitted,
            1 => Reservation::Full,
            _ => Reservation::Refused {
                until: parse_time("login attempts", "we", &until)?,
            },
        })
    }

    async fn settle_attempt(
        &self,
        settlements: &[(AttemptLimit<'_>, Settlement)],
        window: AttemptWindow,
        now: UnixTime,
    ) -> StoreResult<()> {
        let mut call = self.scripts().attempt_settle.prepare_invoke();
        for (limit, _) in settlements {
            call.key(self.keys().attempts(limit.key));
        }
        window_args(&mut call, window, now);
        for (limit, how) in settlements {
            call.arg(limit.max).arg(match how {
                Settlement::Failed => "f",
                Settlement::Released => "r",
                Settlement::Cleared => "c",
            });
        }
        let mut conn = self.conn();
        let _: i64 = self.run(call.invoke_async(&mut conn)).await?;
        Ok(())
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
