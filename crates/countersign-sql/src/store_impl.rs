//! The store traits, written once for both drivers.
//!
//! sqlx code generic over the database needs a wall of higher-ranked bounds (and fights
//! `async_trait`'s `Send` requirements), so the implementations are one macro body expanded
//! in `sqlite.rs` and in `postgres.rs`. Each expansion site names its store type and its
//! `Db` type alias by full path (`crate::postgres::PgStore`), so that the body names no
//! module relative to where it is written, and provides, on its store type, `reader()`
//! (the pool for reads), `writer()` (the pool for writes: SQLite's single writer
//! connection, PostgreSQL's one pool) and `begin_write()` (a transaction that may write:
//! `BEGIN IMMEDIATE` on SQLite, `BEGIN` on PostgreSQL).

pub(crate) mod factors;
pub(crate) mod import;

macro_rules! impl_stores {
    ($store:ty, $db:ty) => {
        mod store_impl {
            use async_trait::async_trait;
            use countersign::attempts::{
                self, AttemptCounter, AttemptLimit, AttemptWindow, Reservation, Settlement,
            };
            use countersign::clock::UnixTime;
            use countersign::mfa::recovery::RecoveryHash;
            use countersign::mfa::{Factor, FactorId, RecoveryCodeRecord};
            use countersign::password::PasswordHash;
            use countersign::refresh::{FamilyId, RefreshFamily, RefreshHash, RotateOutcome};
            use countersign::session::{SessionKey, SessionRecord};
            use countersign::store::{
                FactorStore, ImportedUser, RefreshStore, RevocationStore, SessionStore,
                StoreResult, ThrottleStore, UserImport, UserStore,
            };
            use countersign::sweep::{Sweep, SweepReport};
            use countersign::user::{NewUser, Role, User, UserId};
            use sqlx::Transaction;

            use crate::error::store_err;
            use crate::{rows, sql};

            type Db = $db;
            type Tx = Transaction<'static, Db>;

            /// Everything that has expired at `now`: sessions, ended and revoked refresh
            /// families, denylisted `jti`s past their expiry and ended throttle windows,
            /// in batches of a few hundred rows so that requests are never kept waiting
            /// behind a sweep.
            #[async_trait]
            impl Sweep for $store {
                async fn delete_expired(&self, now: UnixTime) -> StoreResult<SweepReport> {
                    let mut report = SweepReport::default();
                    report.sessions = self.sweep_sessions(now).await?;
                    report.families = self.sweep_families(now).await?;
                    report.denied_jtis = self.delete_batches(sql::SWEEP_DENYLIST, now).await?;
                    report.throttle_keys = self.delete_batches(sql::SWEEP_THROTTLE, now).await?;
                    let attempts = if <Db as sqlx::Database>::NAME == "PostgreSQL" {
                        sql::PG_SWEEP_ATTEMPTS
                    } else {
                        sql::SWEEP_ATTEMPTS
                    };
                    report.throttle_keys += self.delete_batches(attempts, now).await?;
                    Ok(report)
                }
            }

            impl $store {
                /// Run a batched delete (`$1` now, `$2` the batch size) until a batch
                /// comes back short, yielding between batches.
                async fn delete_batches(
                    &self,
                    stmt: &'static str,
                    now: UnixTime,
                ) -> StoreResult<u64> {
                    let mut total = 0;
                    loop {
                        let n = sqlx::query(stmt)
                            .bind(now.secs())
                            .bind(sql::SWEEP_BATCH)
                            .execute(self.writer())
                            .await
                            .map_err(store_err)?
                            .rows_affected();
                        total += n;
                        if n < sql::SWEEP_BATCH.unsigned_abs() {
                            return Ok(total);
                        }
                        tokio::task::yield_now().await;
                    }
                }

                /// Lock `key`'s login-attempt row (making an empty one if there is
                /// none) and read it: `None` for an empty row.
                async fn attempt_lock(
                    tx: &mut Tx,
                    key: &str,
                ) -> StoreResult<Option<AttemptCounter>> {
                    let row = sqlx::query(sql::ATTEMPT_LOCK)
                        .bind(key)
                        .fetch_one(&mut **tx)
                        .await
                        .map_err(store_err)?;
                    Self::attempt_row(&row)
                }

                /// `key`'s login-attempt row, read without a lock (`None` when there is
                /// none, or an empty one).
                async fn attempt_read(
                    pool: &sqlx::Pool<Db>,
                    key: &str,
                ) -> StoreResult<Option<AttemptCounter>> {
                    let row = sqlx::query(sql::ATTEMPT_READ)
                        .bind(key)
                        .fetch_optional(pool)
                        .await
                        .map_err(store_err)?;
                    let Some(row) = row else { return Ok(None) };
                    Self::attempt_row(&row)
                }

                /// A login-attempt row (`failures, pending, pending_until, window_end,
                /// strikes, expires_at`): `None` for an empty one.
                fn attempt_row(
                    row: &<Db as sqlx::Database>::Row,
                ) -> StoreResult<Option<AttemptCounter>> {
                    let strikes: i64 = rows::get(row, 4)?;
                    let counter = AttemptCounter {
                        failures: rows::count(rows::get(row, 0)?)?,
                        pending: rows::count(rows::get(row, 1)?)?,
                        pending_until: UnixTime(rows::get(row, 2)?),
                        window_end: UnixTime(rows::get(row, 3)?),
                        strikes: u32::try_from(strikes).unwrap_or(u32::MAX),
                        expires_at: UnixTime(rows::get(row, 5)?),
                    };
                    Ok((counter.expires_at.secs() > 0).then_some(counter))
                }

                /// Store `key`'s login-attempt row, or delete it (`None`).
                async fn attempt_write(
                    tx: &mut Tx,
                    key: &str,
                    counter: Option<AttemptCounter>,
                ) -> StoreResult<()> {
                    let query = match counter {
                        None => sqlx::query(sql::ATTEMPT_DELETE).bind(key),
                        Some(c) => sqlx::query(sql::ATTEMPT_WRITE)
                            .bind(key)
                            .bind(i64::try_from(c.failures).unwrap_or(i64::MAX))
                            .bind(i64::try_from(c.pending).unwrap_or(i64::MAX))
                            .bind(c.pending_until.secs())
                            .bind(c.window_end.secs())
                            .bind(i64::from(c.strikes))
                            .bind(c.expires_at.secs()),
                    };
                    query.execute(&mut **tx).await.map_err(store_err)?;
                    Ok(())
                }

                /// The body of [`ThrottleStore::reserve_attempt`], inside a write
                /// transaction. Rows are locked in key order, so two reservations never
                /// wait on each other in a cycle.
                async fn reserve_in(
                    tx: &mut Tx,
                    limits: &[AttemptLimit<'_>],
                    window: AttemptWindow,
                    now: UnixTime,
                ) -> StoreResult<(Reservation, bool)> {
                    let mut order: Vec<usize> = (0..limits.len()).collect();
                    order.sort_by_key(|&i| limits[i].key);
                    let mut records = vec![None; limits.len()];
                    for &i in &order {
                        records[i] = Self::attempt_lock(tx, limits[i].key).await?;
                    }
                    let (answer, updated) = attempts::reserve(&records, limits, window, now);
                    let Some(updated) = updated else {
                        return Ok((answer, false));
                    };
                    for &i in &order {
                        Self::attempt_write(tx, limits[i].key, Some(updated[i])).await?;
                    }
                    Ok((answer, true))
                }

                /// The body of [`ThrottleStore::settle_attempt`], inside a write
                /// transaction, in key order like [`Self::reserve_in`].
                async fn settle_in(
                    tx: &mut Tx,
                    settlements: &[(AttemptLimit<'_>, Settlement)],
                    window: AttemptWindow,
                    now: UnixTime,
                ) -> StoreResult<((), bool)> {
                    let mut order: Vec<_> = settlements.iter().collect();
                    order.sort_by_key(|(limit, _)| limit.key);
                    for (limit, how) in order {
                        let record = Self::attempt_lock(tx, limit.key).await?;
                        let settled = attempts::settle(record, limit.max, *how, window, now);
                        Self::attempt_write(tx, limit.key, settled).await?;
                    }
                    Ok(((), true))
                }

                /// The body of [`ThrottleStore::record_attempt`], inside a write
                /// transaction, in key order like [`Self::reserve_in`].
                async fn record_in(
                    tx: &mut Tx,
                    settlements: &[(AttemptLimit<'_>, Settlement)],
                    window: AttemptWindow,
                    now: UnixTime,
                ) -> StoreResult<(Reservation, bool)> {
                    let mut order: Vec<usize> = (0..settlements.len()).collect();
                    order.sort_by_key(|&i| settlements[i].0.key);
                    let mut records = vec![None; settlements.len()];
                    for &i in &order {
                        records[i] = Self::attempt_lock(tx, settlements[i].0.key).await?;
                    }
                    let (answer, settled) = attempts::record(&records, settlements, window, now);
                    let Some(settled) = settled else {
                        return Ok((answer, false));
                    };
                    for &i in &order {
                        Self::attempt_write(tx, settlements[i].0.key, settled[i]).await?;
                    }
                    Ok((answer, true))
                }

                /// Commit when `result` says so, roll back otherwise (and on error).
                async fn finish<T>(tx: Tx, result: StoreResult<(T, bool)>) -> StoreResult<T> {
                    match result {
                        Ok((value, true)) => {
                            tx.commit().await.map_err(store_err)?;
                            Ok(value)
                        }
                        Ok((value, false)) => {
                            tx.rollback().await.map_err(store_err)?;
                            Ok(value)
                        }
                        Err(e) => {
                            // The first error is the one to report; a failed rollback
                            // closes the connection, which rolls back too.
                            let _ = tx.rollback().await;
                            Err(e)
                        }
                    }
                }

                /// The body of [`RefreshStore::rotate`], inside a write transaction.
                /// Returns the outcome and whether to commit.
                async fn rotate_in(
                    tx: &mut Tx,
                    presented: &[RefreshHash],
                    next: &RefreshHash,
                    idle_secs: i64,
                    now: UnixTime,
                ) -> StoreResult<(RotateOutcome, bool)> {
                    let mut found = None;
                    for hash in presented {
                        let row = sqlx::query(sql::FIND_TOKEN)
                            .bind(hash.as_str())
                            .fetch_optional(&mut **tx)
                            .await
                            .map_err(store_err)?;
                        if let Some(row) = row {
                            found = Some((hash, rows::token_and_family(&row)?));
                            break;
                        }
                    }
                    let Some((hash, (retired, revoked, mut family))) = found else {
                        return Ok((RotateOutcome::Invalid, false));
                    };
                    if revoked || !family.is_live(now) {
                        return Ok((RotateOutcome::Invalid, false));
                    }
                    // The conditional update is the race's referee: of two rotations of
                    // one token, one changes the row and the other sees no row to change
                    // (PostgreSQL re-checks `NOT retired` once the winner commits).
                    let won = !retired
                        && sqlx::query(sql::RETIRE_TOKEN)
                            .bind(hash.as_str())
                            .execute(&mut **tx)
                            .await
                            .map_err(store_err)?
                            .rows_affected()
                            == 1;
                    if !won {
                        // A used token presented again: two parties hold this family's
                        // tokens, so none of them is trusted any more.
                        sqlx::query(sql::REVOKE_FAMILY)
                            .bind(family.id.0.as_str())
                            .execute(&mut **tx)
                            .await
                            .map_err(store_err)?;
                        return Ok((
                            RotateOutcome::Reused {
                                user_id: family.user_id,
                            },
                            true,
                        ));
                    }
                    sqlx::query(sql::INSERT_TOKEN)
                        .bind(next.as_str())
                        .bind(family.id.0.as_str())
                        .execute(&mut **tx)
                        .await
                        .map_err(store_err)?;
                    let idle = now.add_secs(idle_secs).min(family.absolute_deadline);
                    let extended = sqlx::query(sql::EXTEND_FAMILY)
                        .bind(family.id.0.as_str())
                        .bind(idle.secs())
                        .bind(now.secs())
                        .execute(&mut **tx)
                        .await
                        .map_err(store_err)?
                        .rows_affected()
                        == 1;
                    if !extended {
                        // Revoked (or ended) since it was read: nothing happened.
                        return Ok((RotateOutcome::Invalid, false));
                    }
                    family.idle_deadline = idle;
                    Ok((RotateOutcome::Rotated { family }, true))
                }
            }

            crate::store_impl::import::impl_import!();

            #[async_trait]
            impl UserStore for $store {
                async fn create_user(&self, user: NewUser) -> StoreResult<User> {
                    let id: i64 = sqlx::query_scalar(sql::INSERT_USER)
                        .bind(user.username.as_str())
                        .bind(user.role.as_str())
                        .bind(user.password_hash.as_str())
                        .bind(user.created_at.secs())
                        .fetch_one(self.writer())
                        .await
                        .map_err(store_err)?;
                    Ok(User {
                        id: UserId(id),
                        username: user.username,
                        role: user.role,
                        password_hash: user.password_hash,
                        created_at: user.created_at,
                        disabled: false,
                    })
                }

                async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
                    sqlx::query(sql::USER_BY_NAME)
                        .bind(username)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(store_err)?
                        .map(|row| rows::user(&row))
                        .transpose()
                }

                async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
                    sqlx::query(sql::USER_BY_ID)
                        .bind(id.0)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(store_err)?
                        .map(|row| rows::user(&row))
                        .transpose()
                }

                async fn list_users(&self) -> StoreResult<Vec<User>> {
                    sqlx::query(sql::LIST_USERS)
                        .fetch_all(self.reader())
                        .await
                        .map_err(store_err)?
                        .iter()
                        .map(rows::user)
                        .collect()
                }

                async fn password_hashes_after(
                    &self,
                    after: UserId,
                    limit: u32,
                    skip_prefix: &str,
                ) -> StoreResult<Vec<(UserId, PasswordHash)>> {
                    sqlx::query(sql::PASSWORD_HASHES_AFTER)
                        .bind(after.0)
                        .bind(i64::from(limit))
                        .bind(skip_prefix)
                        .fetch_all(self.reader())
                        .await
                        .map_err(store_err)?
                        .iter()
                        .map(|row| {
                            Ok((
                                UserId(rows::get(row, 0)?),
                                PasswordHash::from_phc(rows::get::<_, &str>(row, 1)?),
                            ))
                        })
                        .collect()
                }

                async fn set_password_hash(
                    &self,
                    id: UserId,
                    hash: &PasswordHash,
                ) -> StoreResult<bool> {
                    Ok(sqlx::query(sql::SET_PASSWORD_HASH)
                        .bind(id.0)
                        .bind(hash.as_str())
                        .execute(self.writer())
                        .await
                        .map_err(store_err)?
                        .rows_affected()
                        > 0)
                }

                async fn replace_password_hash(
                    &self,
                    id: UserId,
                    old: &PasswordHash,
                    new: &PasswordHash,
                ) -> StoreResult<bool> {
                    Ok(sqlx::query(sql::REPLACE_PASSWORD_HASH)
                        .bind(id.0)
                        .bind(old.as_str())
                        .bind(new.as_str())
                        .execute(self.writer())
                        .await
                        .map_err(store_err)?
                        .rows_affected()
                        > 0)
                }

                async fn begin_import(&self) -> StoreResult<Box<dyn UserImport + '_>> {
                    let tx = self.begin_write().await.map_err(store_err)?;
                    Ok(Box::new(SqlImport { tx }))
                }

                async fn set_role(&self, id: UserId, role: &Role) -> StoreResult<bool> {
                    Ok(sqlx::query(sql::SET_ROLE)
                        .bind(id.0)
                        .bind(role.as_str())
                        .execute(self.writer())
                        .await
                        .map_err(store_err)?
                        .rows_affected()
                        > 0)
                }

                /// The user, its recovery codes and its factors, in one transaction.
                async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
                    let mut tx = self.begin_write().await.map_err(store_err)?;
                    let result = async {
                        for stmt in [sql::DELETE_USER_RECOVERY_CODES, sql::DELETE_USER_FACTORS] {
                            sqlx::query(stmt)
                                .bind(id.0)
                                .execute(&mut *tx)
                                .await
                                .map_err(store_err)?;
                        }
                        let gone = sqlx::query(sql::DELETE_USER)
                            .bind(id.0)
                            .execute(&mut *tx)
                            .await
                            .map_err(store_err)?
                            .rows_affected()
                            > 0;
                        Ok((gone, true))
                    }
                    .await;
                    Self::finish(tx, result).await
                }

                async fn set_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool> {
                    Ok(sqlx::query(sql::SET_DISABLED)
                        .bind(id.0)
                        .bind(disabled)
                        .execute(self.writer())
                        .await
                        .map_err(store_err)?
                        .rows_affected()
                        > 0)
                }

                async fn ping(&self) -> StoreResult<()> {
                    sqlx::query(sql::PING)
                        .execute(self.reader())
                        .await
                        .map_err(store_err)?;
                    Ok(())
                }
            }

            crate::store_impl::factors::impl_factor_store!($store);

            #[async_trait]
            impl SessionStore for $store {
                async fn create_session(&self, record: &SessionRecord) -> StoreResult<()> {
                    sqlx::query(sql::INSERT_SESSION)
                        .bind(record.key.as_str())
                        .bind(record.user_id.0)
                        .bind(record.username.as_str())
                        .bind(record.role.as_str())
                        .bind(record.created_at.secs())
                        .bind(record.last_seen.secs())
                        .bind(record.idle_deadline.secs())
                        .bind(record.absolute_deadline.secs())
                        .bind(record.expires_at().secs())
                        .bind(record.csrf_token.as_str())
                        .bind(record.user_agent.as_str())
                        .bind(record.ip.as_str())
                        .bind(record.amr.to_text())
                        .bind(record.auth_time.secs())
                        .execute(self.writer())
                        .await
                        .map_err(store_err)?;
                    Ok(())
                }

                async fn load_session(
                    &self,
                    key: &SessionKey,
                    now: UnixTime,
                ) -> StoreResult<Option<SessionRecord>> {
                    sqlx::query(sql::LOAD_SESSION)
                        .bind(key.as_str())
                        .bind(now.secs())
                        .fetch_optional(self.reader())
                        .await
                        .map_err(store_err)?
                        .map(|row| rows::session(&row))
                        .transpose()
                }

                async fn touch_session(
                    &self,
                    key: &SessionKey,
                    last_seen: UnixTime,
                    idle_deadline: UnixTime,
                ) -> StoreResult<bool> {
                    Ok(sqlx::query(sql::TOUCH_SESSION)
                        .bind(key.as_str())
                        .bind(last_seen.secs())
                        .bind(idle_deadline.secs())
                        .execute(self.writer())
                        .await
                        .map_err(store_err)?
                        .rows_affected()
                        > 0)
                }

                async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
                    Ok(sqlx::query(sql::DELETE_SESSION)
                        .bind(key.as_str())
                        .execute(self.writer())
                        .await
                        .map_err(store_err)?
                        .rows_affected()
                        > 0)
                }

                async fn list_user_sessions(
                    &self,
                    user: UserId,
                    now: UnixTime,
                ) -> StoreResult<Vec<SessionRecord>> {
                    sqlx::query(sql::LIST_USER_SESSIONS)
                        .bind(user.0)
                        .bind(now.secs())
                        .fetch_all(self.reader())
                        .await
                        .map_err(store_err)?
                        .iter()
                        .map(rows::session)
                        .collect()
                }

                async fn delete_user_sessions(&self, user: UserId) -> StoreResult<u64> {
                    Ok(sqlx::query(sql::DELETE_USER_SESSIONS)
                        .bind(user.0)
                        .execute(self.writer())
                        .await
                        .map_err(store_err)?
                        .rows_affected())
                }

                async fn sweep_sessions(&self, now: UnixTime) -> StoreResult<u64> {
                    self.delete_batches(sql::SWEEP_SESSIONS, now).await
                }

                async fn ping_sessions(&self) -> StoreResult<()> {
                    UserStore::ping(self).await
                }
            }

            #[async_trait]
            impl RefreshStore for $store {
                async fn create_family(
                    &self,
                    family: &RefreshFamily,
                    first: &RefreshHash,
                ) -> StoreResult<()> {
                    let mut tx = self.begin_write().await.map_err(store_err)?;
                    let result = async {
                        sqlx::query(sql::INSERT_FAMILY)
                            .bind(family.id.0.as_str())
                            .bind(family.user_id.0)
                            .bind(family.created_at.secs())
                            .bind(family.idle_deadline.secs())
                            .bind(family.absolute_deadline.secs())
                            .bind(family.idle_deadline.min(family.absolute_deadline).secs())
                            .bind(family.amr.to_text())
                            .bind(family.auth_time.secs())
                            .execute(&mut *tx)
                            .await
                            .map_err(store_err)?;
                        sqlx::query(sql::INSERT_TOKEN)
                            .bind(first.as_str())
                            .bind(family.id.0.as_str())
                            .execute(&mut *tx)
                            .await
                            .map_err(store_err)?;
                        Ok(((), true))
                    }
                    .await;
                    Self::finish(tx, result).await
                }

                async fn peek_family(
                    &self,
                    presented: &[RefreshHash],
                    now: UnixTime,
                ) -> StoreResult<Option<RefreshFamily>> {
                    for hash in presented {
                        let row = sqlx::query(sql::FIND_TOKEN)
                            .bind(hash.as_str())
                            .fetch_optional(self.reader())
                            .await
                            .map_err(store_err)?;
                        if let Some(row) = row {
                            let (retired, revoked, family) = rows::token_and_family(&row)?;
                            let live = !retired && !revoked && family.is_live(now);
                            return Ok(live.then_some(family));
                        }
                    }
                    Ok(None)
                }

                async fn rotate(
                    &self,
                    presented: &[RefreshHash],
                    next: &RefreshHash,
                    idle_secs: i64,
                    now: UnixTime,
                ) -> StoreResult<RotateOutcome> {
                    let mut tx = self.begin_write().await.map_err(store_err)?;
                    let result = Self::rotate_in(&mut tx, presented, next, idle_secs, now).await;
                    Self::finish(tx, result).await
                }

                async fn revoke_by_token(&self, presented: &[RefreshHash]) -> StoreResult<bool> {
                    for hash in presented {
                        let n = sqlx::query(sql::REVOKE_BY_TOKEN)
                            .bind(hash.as_str())
                            .execute(self.writer())
                            .await
                            .map_err(store_err)?
                            .rows_affected();
                        if n > 0 {
                            return Ok(true);
                        }
                    }
                    Ok(false)
                }

                async fn revoke_family(&self, id: &FamilyId) -> StoreResult<bool> {
                    Ok(sqlx::query(sql::REVOKE_FAMILY)
                        .bind(id.0.as_str())
                        .execute(self.writer())
                        .await
                        .map_err(store_err)?
                        .rows_affected()
                        > 0)
                }

                async fn revoke_user_families(&self, user: UserId) -> StoreResult<u64> {
                    Ok(sqlx::query(sql::REVOKE_USER_FAMILIES)
                        .bind(user.0)
                        .execute(self.writer())
                        .await
                        .map_err(store_err)?
                        .rows_affected())
                }

                async fn sweep_families(&self, now: UnixTime) -> StoreResult<u64> {
                    self.delete_batches(sql::SWEEP_FAMILIES, now).await
                }
            }

            #[async_trait]
            impl RevocationStore for $store {
                async fn deny_jti(&self, jti: &str, until: UnixTime) -> StoreResult<()> {
                    sqlx::query(sql::DENY_JTI)
                        .bind(jti)
                        .bind(until.secs())
                        .execute(self.writer())
                        .await
                        .map_err(store_err)?;
                    Ok(())
                }

                async fn is_jti_denied(&self, jti: &str, now: UnixTime) -> StoreResult<bool> {
                    Ok(sqlx::query(sql::IS_JTI_DENIED)
                        .bind(jti)
                        .bind(now.secs())
                        .fetch_optional(self.reader())
                        .await
                        .map_err(store_err)?
                        .is_some())
                }

                async fn revoke_issued_before(
                    &self,
                    user: UserId,
                    before: UnixTime,
                ) -> StoreResult<()> {
                    sqlx::query(sql::REVOKE_ISSUED_BEFORE)
                        .bind(user.0)
                        .bind(before.secs())
                        .execute(self.writer())
                        .await
                        .map_err(store_err)?;
                    Ok(())
                }

                async fn issued_before(&self, user: UserId) -> StoreResult<Option<UnixTime>> {
                    let before: Option<i64> = sqlx::query_scalar(sql::ISSUED_BEFORE)
                        .bind(user.0)
                        .fetch_optional(self.reader())
                        .await
                        .map_err(store_err)?;
                    Ok(before.map(UnixTime))
                }
            }

            #[async_trait]
            impl ThrottleStore for $store {
                async fn hit(
                    &self,
                    key: &str,
                    window_secs: i64,
                    now: UnixTime,
                ) -> StoreResult<(u64, UnixTime)> {
                    let row = sqlx::query(sql::HIT)
                        .bind(key)
                        .bind(now.add_secs(window_secs).secs())
                        .bind(now.secs())
                        .fetch_one(self.writer())
                        .await
                        .map_err(store_err)?;
                    Ok((
                        rows::count(rows::get(&row, 0)?)?,
                        UnixTime(rows::get(&row, 1)?),
                    ))
                }

                async fn peek(&self, key: &str, now: UnixTime) -> StoreResult<(u64, UnixTime)> {
                    let row = sqlx::query(sql::PEEK)
                        .bind(key)
                        .bind(now.secs())
                        .fetch_optional(self.reader())
                        .await
                        .map_err(store_err)?;
                    match row {
                        Some(row) => Ok((
                            rows::count(rows::get(&row, 0)?)?,
                            UnixTime(rows::get(&row, 1)?),
                        )),
                        None => Ok((0, now)),
                    }
                }

                async fn clear(&self, key: &str) -> StoreResult<()> {
                    sqlx::query(sql::CLEAR)
                        .bind(key)
                        .execute(self.writer())
                        .await
                        .map_err(store_err)?;
                    Ok(())
                }

                async fn reserve_attempt(
                    &self,
                    limits: &[AttemptLimit<'_>],
                    window: AttemptWindow,
                    now: UnixTime,
                ) -> StoreResult<Reservation> {
                    // A plain read first: a refusal (or a full house) needs no write
                    // transaction, so a flood of guesses at a locked account costs reads,
                    // not turns on the single writer that other logins wait for. Refused
                    // and full only change towards admitting by a settlement or the clock,
                    // so answering from this read never admits more than the limit: at
                    // worst it refuses an attempt that a settlement a moment ago would
                    // have let through. An admission is decided inside the transaction.
                    let mut seen = Vec::with_capacity(limits.len());
                    for limit in limits {
                        seen.push(Self::attempt_read(self.reader(), limit.key).await?);
                    }
                    let (answer, _) = attempts::reserve(&seen, limits, window, now);
                    if answer != Reservation::Admitted {
                        return Ok(answer);
                    }
                    let mut tx = self.begin_write().await.map_err(store_err)?;
                    let result = Self::reserve_in(&mut tx, limits, window, now).await;
                    Self::finish(tx, result).await
                }

                async fn settle_attempt(
                    &self,
                    settlements: &[(AttemptLimit<'_>, Settlement)],
                    window: AttemptWindow,
                    now: UnixTime,
                ) -> StoreResult<()> {
                    let mut tx = self.begin_write().await.map_err(store_err)?;
                    let result = Self::settle_in(&mut tx, settlements, window, now).await;
                    Self::finish(tx, result).await
                }

                /// One transaction where the default takes two: a code's attempt is
                /// admitted and settled under one lock of its rows.
                async fn record_attempt(
                    &self,
                    settlements: &[(AttemptLimit<'_>, Settlement)],
                    window: AttemptWindow,
                    now: UnixTime,
                ) -> StoreResult<Reservation> {
                    let mut tx = self.begin_write().await.map_err(store_err)?;
                    let result = Self::record_in(&mut tx, settlements, window, now).await;
                    Self::finish(tx, result).await
                }
            }
        }
    };
}

pub(crate) use impl_stores;
