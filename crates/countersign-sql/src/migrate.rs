//! Embedded migrations, one set per dialect (`migrations/sqlite`, `migrations/postgres`).
//!
//! The SQL files are compiled in with `include_str!` and handed to sqlx's [`Migrator`]
//! through a [`MigrationSource`], rather than with `sqlx::migrate!`: that macro needs
//! sqlx's `macros` feature, which builds the drivers (and the bundled SQLite C library) a
//! second time for the host. The result is the same: versions, descriptions and SHA-384
//! checksums are those `sqlx::migrate!` and `sqlx migrate run` compute for the same files
//! (a unit test below checks it), recorded in the same `_sqlx_migrations` table.
//!
//! Concurrent migrators: on PostgreSQL, sqlx's migrator takes `pg_advisory_lock` (keyed on
//! the database name) before it looks at `_sqlx_migrations`, so a second server waits and
//! then finds the work done. On SQLite sqlx takes no lock, so the store runs the migrator
//! inside `BEGIN IMMEDIATE` (each migration becomes a savepoint): the second process waits
//! on the write lock (busy timeout) and then sees the applied versions.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// `(version, description, sql)`, in order. Add a file, add a line: the unit test below
/// fails when the lists and the directories disagree.
type Embedded = &'static [(i64, &'static str, &'static str)];

const SQLITE: Embedded = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "login attempts disabled users",
        include_str!("../migrations/sqlite/0002_login_attempts_disabled_users.sql"),
    ),
    (3, "mfa", include_str!("../migrations/sqlite/0003_mfa.sql")),
];

const POSTGRES: Embedded = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "login attempts disabled users",
        include_str!("../migrations/postgres/0002_login_attempts_disabled_users.sql"),
    ),
    (
        3,
        "mfa",
        include_str!("../migrations/postgres/0003_mfa.sql"),
    ),
];

/// Which set of migrations.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug)]
struct Source(Embedded);

impl MigrationSource<'static> for Source {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(std::future::ready(Ok(migrations)))
    }
}

/// The migrator for a dialect (locking on, as sqlx's default).
pub(crate) async fn migrator(dialect: Dialect) -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Source(match dialect {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    }))
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The embedded lists hold exactly what sqlx would read from the directories, with the
    /// same checksums.
    #[tokio::test]
    async fn embedded_matches_the_directories() {
        for (dialect, dir) in [(Dialect::Sqlite, "sqlite"), (Dialect::Postgres, "postgres")] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let from_dir = Migrator::new(path).await.unwrap();
            let embedded = migrator(dialect).await.unwrap();
            let summary = |m: &Migrator| {
                m.iter()
                    .map(|m| {
                        (
                            m.version,
                            m.description.to_string(),
                            m.checksum.to_vec(),
                            m.migration_type,
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(summary(&embedded), summary(&from_dir), "{dir}");
            assert!(!summary(&embedded).is_empty());
        }
    }
}
