//! The second-factor store (`FactorStore`): factors and recovery codes. Expanded by
//! `impl_stores!` inside its module, whose imports and `Tx` it uses.

macro_rules! impl_factor_store {
    ($store:ty) => {
        #[async_trait]
        impl FactorStore for $store {
            async fn add_factor(&self, factor: &Factor) -> StoreResult<()> {
                sqlx::query(sql::INSERT_FACTOR)
                    .bind(factor.id.as_str())
                    .bind(factor.user_id.0)
                    .bind(factor.kind.as_str())
                    .bind(factor.name.as_str())
                    .bind(factor.data.as_slice())
                    .bind(factor.counter)
                    .bind(factor.confirmed)
                    .bind(factor.created_at.secs())
                    .bind(factor.last_used_at.map(UnixTime::secs))
                    .execute(self.writer())
                    .await
                    .map_err(store_err)?;
                Ok(())
            }

            async fn factor(&self, id: &FactorId) -> StoreResult<Option<Factor>> {
                sqlx::query(sql::FACTOR_BY_ID)
                    .bind(id.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(store_err)?
                    .map(|row| rows::factor(&row))
                    .transpose()
            }

            async fn user_factors(&self, user: UserId) -> StoreResult<Vec<Factor>> {
                sqlx::query(sql::USER_FACTORS)
                    .bind(user.0)
                    .fetch_all(self.reader())
                    .await
                    .map_err(store_err)?
                    .iter()
                    .map(rows::factor)
                    .collect()
            }

            async fn update_factor(&self, factor: &Factor) -> StoreResult<bool> {
                Ok(sqlx::query(sql::UPDATE_FACTOR)
                    .bind(factor.id.as_str())
                    .bind(factor.user_id.0)
                    .bind(factor.name.as_str())
                    .bind(factor.data.as_slice())
                    .bind(factor.confirmed)
                    .bind(factor.last_used_at.map(UnixTime::secs))
                    .execute(self.writer())
                    .await
                    .map_err(store_err)?
                    .rows_affected()
                    > 0)
            }

            async fn advance_factor(
                &self,
                user: UserId,
                id: &FactorId,
                counter: i64,
                now: UnixTime,
            ) -> StoreResult<bool> {
                Ok(sqlx::query(sql::ADVANCE_FACTOR)
                    .bind(user.0)
                    .bind(id.as_str())
                    .bind(counter)
                    .bind(now.secs())
                    .execute(self.writer())
                    .await
                    .map_err(store_err)?
                    .rows_affected()
                    > 0)
            }

            async fn remove_factor(&self, user: UserId, id: &FactorId) -> StoreResult<bool> {
                Ok(sqlx::query(sql::DELETE_FACTOR)
                    .bind(user.0)
                    .bind(id.as_str())
                    .execute(self.writer())
                    .await
                    .map_err(store_err)?
                    .rows_affected()
                    > 0)
            }

            async fn replace_recovery_codes(
                &self,
                user: UserId,
                hashes: &[RecoveryHash],
                now: UnixTime,
            ) -> StoreResult<()> {
                let mut tx = self.begin_write().await.map_err(store_err)?;
                let result = async {
                    if <Db as sqlx::Database>::NAME == "PostgreSQL" {
                        sqlx::query(sql::PG_LOCK_USER)
                            .bind(user.0)
                            .execute(&mut *tx)
                            .await
                            .map_err(store_err)?;
                    }
                    sqlx::query(sql::DELETE_USER_RECOVERY_CODES)
                        .bind(user.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(store_err)?;
                    if !hashes.is_empty() {
                        let mut qb = sqlx::QueryBuilder::<Db>::new(sql::INSERT_RECOVERY_CODES);
                        qb.push_values(hashes, |mut b, hash| {
                            b.push_bind(user.0)
                                .push_bind(hash.as_str())
                                .push_bind(now.secs());
                        });
                        // A hash given twice is one code.
                        qb.push(" ON CONFLICT DO NOTHING");
                        qb.build().execute(&mut *tx).await.map_err(store_err)?;
                    }
                    Ok(((), true))
                }
                .await;
                Self::finish(tx, result).await
            }

            async fn use_recovery_code(
                &self,
                user: UserId,
                hash: &RecoveryHash,
                now: UnixTime,
            ) -> StoreResult<bool> {
                Ok(sqlx::query(sql::USE_RECOVERY_CODE)
                    .bind(user.0)
                    .bind(hash.as_str())
                    .bind(now.secs())
                    .execute(self.writer())
                    .await
                    .map_err(store_err)?
                    .rows_affected()
                    > 0)
            }

            async fn recovery_codes(&self, user: UserId) -> StoreResult<Vec<RecoveryCodeRecord>> {
                sqlx::query(sql::USER_RECOVERY_CODES)
                    .bind(user.0)
                    .fetch_all(self.reader())
                    .await
                    .map_err(store_err)?
                    .iter()
                    .map(rows::recovery_code)
                    .collect()
            }

            async fn remove_user_factors(&self, user: UserId) -> StoreResult<u64> {
                let mut tx = self.begin_write().await.map_err(store_err)?;
                let result = async {
                    sqlx::query(sql::DELETE_USER_RECOVERY_CODES)
                        .bind(user.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(store_err)?;
                    let n = sqlx::query(sql::DELETE_USER_FACTORS)
                        .bind(user.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(store_err)?
                        .rows_affected();
                    Ok((n, true))
                }
                .await;
                Self::finish(tx, result).await
            }
        }
    };
}

pub(crate) use impl_factor_store;
