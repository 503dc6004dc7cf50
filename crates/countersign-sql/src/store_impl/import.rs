//! The bulk import (`UserStore::begin_import`): one write transaction, rolled back when
//! dropped uncommitted. Expanded by `impl_stores!` inside its module, whose imports and
//! `Tx` it uses.

macro_rules! impl_import {
    () => {
        /// A bulk import: one write transaction, rolled back when dropped uncommitted.
        struct SqlImport {
            tx: Tx,
        }

        impl SqlImport {
            /// Insert `rows` (all with a kept id, or all without) in one statement;
            /// the usernames inserted.
            async fn insert_rows(
                &mut self,
                rows: &[&ImportedUser],
                with_ids: bool,
            ) -> StoreResult<std::collections::HashSet<String>> {
                let postgres = <Db as sqlx::Database>::NAME == "PostgreSQL";
                let mut qb = sqlx::QueryBuilder::<Db>::new(if with_ids {
                    "INSERT INTO users (id, username, role, password_hash, created_at) "
                } else {
                    "INSERT INTO users (username, role, password_hash, created_at) "
                });
                if with_ids && postgres {
                    // The id column is an identity: keeping a given id must be said.
                    qb.push("OVERRIDING SYSTEM VALUE ");
                }
                qb.push_values(rows, |mut b, row| {
                    if let Some(id) = row.id.filter(|_| with_ids) {
                        b.push_bind(id.0);
                    }
                    b.push_bind(row.user.username.as_str())
                        .push_bind(row.user.role.as_str())
                        .push_bind(row.user.password_hash.as_str())
                        .push_bind(row.user.created_at.secs());
                });
                // Either unique column (id, username) taken: the row is skipped and
                // the transaction goes on.
                qb.push(" ON CONFLICT DO NOTHING RETURNING username");
                let inserted: Vec<String> = qb
                    .build_query_scalar()
                    .fetch_all(&mut *self.tx)
                    .await
                    .map_err(store_err)?;
                if with_ids && postgres && !inserted.is_empty() {
                    // Ids picked later (by this import or by new accounts) come after
                    // the kept ones.
                    sqlx::query(sql::PG_ADVANCE_USER_IDS)
                        .execute(&mut *self.tx)
                        .await
                        .map_err(store_err)?;
                }
                Ok(inserted.into_iter().collect())
            }
        }

        #[async_trait]
        impl UserImport for SqlImport {
            async fn insert(&mut self, batch: &[ImportedUser]) -> StoreResult<Vec<bool>> {
                // Repeats inside the batch are refused here: one statement cannot say
                // which of two equal rows it kept.
                let mut names = std::collections::HashSet::new();
                let mut ids = std::collections::HashSet::new();
                let first: Vec<bool> = batch
                    .iter()
                    .map(|row| {
                        let new_name = names.insert(row.user.username.as_str());
                        let new_id = row.id.is_none_or(|id| ids.insert(id));
                        new_name && new_id
                    })
                    .collect();
                let pick = |with_ids: bool| -> Vec<&ImportedUser> {
                    batch
                        .iter()
                        .zip(&first)
                        .filter(|(row, first)| **first && row.id.is_some() == with_ids)
                        .map(|(row, _)| row)
                        .collect()
                };
                let mut inserted = std::collections::HashSet::new();
                for with_ids in [true, false] {
                    let rows = pick(with_ids);
                    if !rows.is_empty() {
                        inserted.extend(self.insert_rows(&rows, with_ids).await?);
                    }
                }
                Ok(batch
                    .iter()
                    .zip(first)
                    .map(|(row, first)| first && inserted.contains(row.user.username.as_str()))
                    .collect())
            }

            async fn commit(self: Box<Self>) -> StoreResult<()> {
                self.tx.commit().await.map_err(store_err)
            }
        }
    };
}

pub(crate) use impl_import;
