//! [`SessionStore`]: a hash per session, a sorted set per user, one sorted set by expiry
//! for the sweep.

use std::collections::HashMap;

use async_trait::async_trait;
use countersign::clock::UnixTime;
use countersign::mfa::Amr;
use countersign::session::{SessionKey, SessionRecord};
use countersign::store::{SessionStore, StoreError, StoreResult, stored_role, stored_username};
use countersign::user::UserId;
use redis::AsyncCommands as _;

use crate::{Fields, RedisStore, corrupt, secs};

const RECORD: &str = "session";

/// A session record as hash fields (the key is the hash's name).
fn to_fields(r: &SessionRecord) -> [(&'static str, String); 12] {
    [
        ("user_id", r.user_id.0.to_string()),
        ("username", r.username.as_str().to_owned()),
        ("role", r.role.as_str().to_owned()),
        ("created_at", secs(r.created_at)),
        ("last_seen", secs(r.last_seen)),
        ("idle_deadline", secs(r.idle_deadline)),
        ("absolute_deadline", secs(r.absolute_deadline)),
        ("csrf_token", r.csrf_token.clone()),
        ("user_agent", r.user_agent.clone()),
        ("ip", r.ip.clone()),
        ("amr", r.amr.to_text()),
        ("auth_time", secs(r.auth_time)),
    ]
}

/// A record read back. One written before sessions had `amr` and `auth_time` was a
/// password login, made when the session was created.
fn from_fields(key: SessionKey, map: &HashMap<String, String>) -> StoreResult<SessionRecord> {
    let f = Fields::new(RECORD, map);
    Ok(SessionRecord {
        key,
        user_id: UserId(f.int("user_id")?),
        username: stored_username(f.str("username")?)?,
        role: stored_role(f.str("role")?)?,
        created_at: f.time("created_at")?,
        last_seen: f.time("last_seen")?,
        idle_deadline: f.time("idle_deadline")?,
        absolute_deadline: f.time("absolute_deadline")?,
        csrf_token: f.str("csrf_token")?.to_owned(),
        user_agent: f.str("user_agent")?.to_owned(),
        ip: f.str("ip")?.to_owned(),
        amr: map.get("amr").map_or(Amr::PWD, |text| Amr::parse(text)),
        auth_time: match map.get("auth_time") {
            Some(_) => f.time("auth_time")?,
            None => f.time("created_at")?,
        },
    })
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create_session(&self, record: &SessionRecord) -> StoreResult<()> {
        let keys = self.keys();
        let mut call = self.scripts().session_create.prepare_invoke();
        call.key(keys.session(&record.key))
            .key(keys.user_sessions(record.user_id))
            .key(keys.sessions_by_expiry())
            .arg(record.key.as_str())
            .arg(secs(record.created_at))
            .arg(secs(record.expires_at()))
            .arg(secs(record.absolute_deadline));
        for (field, value) in to_fields(record) {
            call.arg(field).arg(value);
        }
        let mut conn = self.conn();
        let created: i64 = self.run(call.invoke_async(&mut conn)).await?;
        if created == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn load_session(
        &self,
        key: &SessionKey,
        now: UnixTime,
    ) -> StoreResult<Option<SessionRecord>> {
        let mut conn = self.conn();
        let map: HashMap<String, String> = self.run(conn.hgetall(self.keys().session(key))).await?;
        if map.is_empty() {
            return Ok(None);
        }
        let record = from_fields(key.clone(), &map)?;
        Ok(record.is_live(now).then_some(record))
    }

    async fn touch_session(
        &self,
        key: &SessionKey,
        last_seen: UnixTime,
        idle_deadline: UnixTime,
    ) -> StoreResult<bool> {
        let keys = self.keys();
        let mut call = self.scripts().session_touch.prepare_invoke();
        call.key(keys.session(key))
            .key(keys.sessions_by_expiry())
            .arg(key.as_str())
            .arg(secs(last_seen))
            .arg(secs(idle_deadline));
        let mut conn = self.conn();
        let touched: i64 = self.run(call.invoke_async(&mut conn)).await?;
        Ok(touched == 1)
    }

    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        let keys = self.keys();
        let mut call = self.scripts().session_delete.prepare_invoke();
        call.key(keys.session(key))
            .key(keys.sessions_by_expiry())
            .arg(key.as_str())
            .arg(keys.prefix());
        let mut conn = self.conn();
        let deleted: i64 = self.run(call.invoke_async(&mut conn)).await?;
        Ok(deleted == 1)
    }

    async fn list_user_sessions(
        &self,
        user: UserId,
        now: UnixTime,
    ) -> StoreResult<Vec<SessionRecord>> {
        let keys = self.keys();
        let mut call = self.scripts().session_list.prepare_invoke();
        call.key(keys.user_sessions(user)).arg(keys.prefix());
        let mut conn = self.conn();
        let rows: Vec<(String, HashMap<String, String>)> =
            self.run(call.invoke_async(&mut conn)).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (key, map) in rows {
            let key = SessionKey::parse(&key).ok_or_else(|| corrupt(RECORD, "key"))?;
            let record = from_fields(key, &map)?;
            if record.is_live(now) {
                out.push(record);
            }
        }
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.key.cmp(&b.key)));
        Ok(out)
    }

    async fn delete_user_sessions(&self, user: UserId) -> StoreResult<u64> {
        let keys = self.keys();
        let mut call = self.scripts().session_delete_user.prepare_invoke();
        call.key(keys.user_sessions(user))
            .key(keys.sessions_by_expiry())
            .arg(keys.prefix());
        let mut conn = self.conn();
        self.run(call.invoke_async(&mut conn)).await
    }

    async fn sweep_sessions(&self, now: UnixTime) -> StoreResult<u64> {
        let keys = self.keys();
        let batch = self.inner.sweep_batch;
        let mut removed = 0;
        loop {
            let mut call = self.scripts().session_sweep.prepare_invoke();
            call.key(keys.sessions_by_expiry())
                .arg(secs(now))
                .arg(batch)
                .arg(keys.prefix());
            let mut conn = self.conn();
            let (seen, gone): (usize, u64) = self.run(call.invoke_async(&mut conn)).await?;
            removed += gone;
            if seen < batch {
                return Ok(removed);
            }
        }
    }

    async fn ping_sessions(&self) -> StoreResult<()> {
        let mut conn = self.conn();
        let _: String = self.run(redis::cmd("PING").query_async(&mut conn)).await?;
        Ok(())
    }

    /// Redis pub/sub (`crate::listen` subscribes).
    fn broadcast(&self) -> Option<std::sync::Arc<dyn countersign::invalidation::Broadcast>> {
        Some(std::sync::Arc::new(self.clone()))
    }
}
