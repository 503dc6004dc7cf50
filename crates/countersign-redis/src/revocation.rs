//! [`RevocationStore`]: a string per denied `jti` (expiring when the token would have),
//! a string per user for the issued-before mark.

use async_trait::async_trait;
use countersign::clock::UnixTime;
use countersign::store::{RevocationStore, StoreResult};
use countersign::user::UserId;
use redis::AsyncCommands as _;

use crate::{RedisStore, parse_time, secs};

#[async_trait]
impl RevocationStore for RedisStore {
    async fn deny_jti(&self, jti: &str, until: UnixTime) -> StoreResult<()> {
        let mut call = self.scripts().deny_jti.prepare_invoke();
        call.key(self.keys().jti(jti)).arg(secs(until));
        let mut conn = self.conn();
        let _: i64 = self.run(call.invoke_async(&mut conn)).await?;
        Ok(())
    }

    async fn is_jti_denied(&self, jti: &str, now: UnixTime) -> StoreResult<bool> {
        let mut conn = self.conn();
        let until: Option<String> = self.run(conn.get(self.keys().jti(jti))).await?;
        match until {
            Some(until) => Ok(now < parse_time("denied jti", "until", &until)?),
            None => Ok(false),
        }
    }

    async fn revoke_issued_before(&self, user: UserId, before: UnixTime) -> StoreResult<()> {
        let mut call = self.scripts().issued_before.prepare_invoke();
        call.key(self.keys().issued_before(user)).arg(secs(before));
        let mut conn = self.conn();
        let _: i64 = self.run(call.invoke_async(&mut conn)).await?;
        Ok(())
    }

    async fn issued_before(&self, user: UserId) -> StoreResult<Option<UnixTime>> {
        let mut conn = self.conn();
        let mark: Option<String> = self.run(conn.get(self.keys().issued_before(user))).await?;
        mark.map(|m| parse_time("issued-before mark", "before", &m))
            .transpose()
    }
}
