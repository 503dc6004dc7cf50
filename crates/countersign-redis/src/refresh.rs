//! [`RefreshStore`]: a hash per family, a hash per token, a set of token hashes per
//! family (so the sweep can remove them), a set of families per user, one sorted set by
//! expiry for the sweep.

use async_trait::async_trait;
use countersign::clock::UnixTime;
use countersign::mfa::Amr;
use countersign::refresh::{FamilyId, RefreshFamily, RefreshHash, RotateOutcome};
use countersign::store::{RefreshStore, StoreError, StoreResult};
use countersign::user::UserId;

use crate::{RedisStore, corrupt, secs};

const RECORD: &str = "refresh family";

#[async_trait]
impl RefreshStore for RedisStore {
    async fn create_family(&self, family: &RefreshFamily, first: &RefreshHash) -> StoreResult<()> {
        let keys = self.keys();
        let mut call = self.scripts().family_create.prepare_invoke();
        call.key(keys.family(&family.id))
            .key(keys.refresh(first))
            .key(keys.family_tokens(&family.id))
            .key(keys.user_families(family.user_id))
            .key(keys.families_by_expiry())
            .arg(&family.id.0)
            .arg(first.as_str())
            .arg(secs(family.absolute_deadline))
            .arg(secs(family.idle_deadline.min(family.absolute_deadline)))
            .arg("user_id")
            .arg(family.user_id.0.to_string())
            .arg("created_at")
            .arg(secs(family.created_at))
            .arg("idle_deadline")
            .arg(secs(family.idle_deadline))
            .arg("absolute_deadline")
            .arg(secs(family.absolute_deadline))
            .arg("revoked")
            .arg("0")
            .arg("amr")
            .arg(family.amr.to_text())
            .arg("auth_time")
            .arg(secs(family.auth_time));
        let mut conn = self.conn();
        let created: i64 = self.run(call.invoke_async(&mut conn)).await?;
        if created == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn peek_family(
        &self,
        presented: &[RefreshHash],
        now: UnixTime,
    ) -> StoreResult<Option<RefreshFamily>> {
        let keys = self.keys();
        let mut call = self.scripts().family_peek.prepare_invoke();
        for hash in presented {
            call.key(keys.refresh(hash));
        }
        call.arg(keys.prefix()).arg(secs(now));
        let mut conn = self.conn();
        let reply: Vec<String> = self.run(call.invoke_async(&mut conn)).await?;
        if reply.is_empty() {
            return Ok(None);
        }
        family_from(&reply).map(Some)
    }

    async fn rotate(
        &self,
        presented: &[RefreshHash],
        next: &RefreshHash,
        idle_secs: i64,
        now: UnixTime,
    ) -> StoreResult<RotateOutcome> {
        let keys = self.keys();
        let mut call = self.scripts().rotate.prepare_invoke();
        for hash in presented {
            call.key(keys.refresh(hash));
        }
        call.arg(keys.prefix())
            .arg(next.as_str())
            .arg(idle_secs)
            .arg(secs(now));
        let mut conn = self.conn();
        let reply: Vec<String> = self.run(call.invoke_async(&mut conn)).await?;
        match reply.first().map(String::as_str) {
            Some("rotated") => Ok(RotateOutcome::Rotated {
                family: family_from(&reply[1..])?,
            }),
            Some("reused") => Ok(RotateOutcome::Reused {
                user_id: UserId(int(&reply, 1, "user_id")?),
            }),
            Some("conflict") => Err(StoreError::Conflict),
            _ => Ok(RotateOutcome::Invalid),
        }
    }

    async fn revoke_by_token(&self, presented: &[RefreshHash]) -> StoreResult<bool> {
        let keys = self.keys();
        let mut call = self.scripts().revoke_by_token.prepare_invoke();
        for hash in presented {
            call.key(keys.refresh(hash));
        }
        call.arg(keys.prefix());
        let mut conn = self.conn();
        let revoked: i64 = self.run(call.invoke_async(&mut conn)).await?;
        Ok(revoked == 1)
    }

    async fn revoke_family(&self, id: &FamilyId) -> StoreResult<bool> {
        let keys = self.keys();
        let mut call = self.scripts().revoke_family.prepare_invoke();
        call.key(keys.family(id))
            .key(keys.families_by_expiry())
            .arg(&id.0);
        let mut conn = self.conn();
        let revoked: i64 = self.run(call.invoke_async(&mut conn)).await?;
        Ok(revoked == 1)
    }

    async fn revoke_user_families(&self, user: UserId) -> StoreResult<u64> {
        let keys = self.keys();
        let mut call = self.scripts().revoke_user_families.prepare_invoke();
        call.key(keys.user_families(user))
            .key(keys.families_by_expiry())
            .arg(keys.prefix());
        let mut conn = self.conn();
        self.run(call.invoke_async(&mut conn)).await
    }

    async fn sweep_families(&self, now: UnixTime) -> StoreResult<u64> {
        let keys = self.keys();
        let batch = self.inner.sweep_batch;
        let mut removed = 0;
        loop {
            let mut call = self.scripts().family_sweep.prepare_invoke();
            call.key(keys.families_by_expiry())
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
}

/// The integer at `i` of a script's reply.
fn int(reply: &[String], i: usize, field: &'static str) -> StoreResult<i64> {
    reply
        .get(i)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt(RECORD, field))
}

/// A family from a script's reply: `{id, user, created at, idle deadline, absolute
/// deadline, amr, auth time}`. The scripts answer a family written before families had
/// `amr` and `auth_time` as a password login made when the family was created; a reply
/// without them (a script of an older version still cached by Redis cannot give one: the
/// scripts are named by their SHA-1) reads the same way.
fn family_from(reply: &[String]) -> StoreResult<RefreshFamily> {
    let id = reply.first().ok_or_else(|| corrupt(RECORD, "family"))?;
    let created_at = UnixTime(int(reply, 2, "created_at")?);
    Ok(RefreshFamily {
        id: FamilyId(id.clone()),
        user_id: UserId(int(reply, 1, "user_id")?),
        created_at,
        idle_deadline: UnixTime(int(reply, 3, "idle_deadline")?),
        absolute_deadline: UnixTime(int(reply, 4, "absolute_deadline")?),
        amr: reply.get(5).map_or(Amr::PWD, |text| Amr::parse(text)),
        auth_time: match reply.get(6) {
            Some(_) => UnixTime(int(reply, 6, "auth_time")?),
            None => created_at,
        },
    })
}
