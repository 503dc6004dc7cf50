//! Errors: [`SqlError`] for opening and migrating a store, and the mapping of driver errors
//! to the engine's [`StoreError`] for everything else.

use std::path::PathBuf;

use countersign::store::{StoreError, backend, unavailable};

/// Why a store could not be opened or migrated. URLs in it are redacted
/// ([`crate::redacted_url`]): no variant, message or source shows a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// A URL of a database this crate does not speak.
    #[error("unsupported database URL {url} (expected sqlite:… or postgres://…)")]
    UnsupportedUrl {
        /// The URL, redacted.
        url: String,
    },
    /// A PostgreSQL URL with a query parameter that may hold a secret and that the driver
    /// would not use (it would log its value): only `password` is taken.
    #[error(
        "database URL {url} has a secret-looking parameter other than `password`; put the \
         password in the user info or `password=`"
    )]
    SecretParameter {
        /// The URL, redacted.
        url: String,
    },
    /// A URL the driver could not parse.
    #[error("invalid database URL {url}")]
    InvalidUrl {
        /// The URL, redacted.
        url: String,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },
    /// TLS was required (`sslmode=require`, `verify-ca`, `verify-full`) and the server's
    /// certificate did not verify: not signed by a trusted CA (`sslrootcert`, else the
    /// public roots), or not for the host in the URL. Nothing falls back to plain text.
    #[error(
        "the TLS certificate of the database at {url} was refused; check sslmode, sslrootcert \
         and the host name in the URL"
    )]
    Certificate {
        /// The URL, redacted.
        url: String,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },
    /// TLS was required and the server does not offer it.
    #[error("the database at {url} does not offer TLS, which its sslmode requires")]
    NoTls {
        /// The URL, redacted.
        url: String,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },
    /// The database could not be reached or opened.
    #[error("cannot open the database at {url}")]
    Connect {
        /// The URL, redacted.
        url: String,
        /// What the driver said.
        #[source]
        source: sqlx::Error,
    },
    /// The data directory could not be created.
    #[error("cannot create the data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// Migrating the schema failed.
    #[error("migrating the database at {url} failed")]
    Migrate {
        /// The URL, redacted.
        url: String,
        /// What the migrator said.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

/// PostgreSQL `unique_violation`.
/// A failed connection, as [`SqlError::Certificate`] or [`SqlError::NoTls`] when TLS was
/// why, else [`SqlError::Connect`].
pub(crate) fn connect_error(url: String, source: sqlx::Error) -> SqlError {
    let mut text = String::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&source);
    while let Some(e) = next {
        text.push_str(&e.to_string());
        text.push('\n');
        next = e.source();
    }
    if text.contains("does not support TLS") {
        SqlError::NoTls { url, source }
    } else if text.contains("certificate") || text.contains("UnknownIssuer") {
        SqlError::Certificate { url, source }
    } else {
        SqlError::Connect { url, source }
    }
}

const PG_UNIQUE_VIOLATION: &str = "23505";
/// SQLite `SQLITE_CONSTRAINT_UNIQUE` and `SQLITE_CONSTRAINT_PRIMARYKEY` (extended codes).
const SQLITE_UNIQUE_VIOLATION: [&str; 2] = ["2067", "1555"];

/// Map a driver error to the engine's store error: a unique violation is a
/// [`StoreError::Conflict`], a lost or refused connection, a pool timeout or a database that
/// stays locked past the busy timeout is [`StoreError::Unavailable`] (the server answers 503
/// and the client retries), anything else is [`StoreError::Backend`]. The driver error is
/// kept as the source.
pub(crate) fn store_err(e: sqlx::Error) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict
    } else if is_unavailable(&e) {
        unavailable(e)
    } else {
        backend(e)
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c == PG_UNIQUE_VIOLATION || SQLITE_UNIQUE_VIOLATION.contains(&c.as_ref())
        }),
        _ => false,
    }
}

fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => match db.code() {
            Some(code)
                if db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some() =>
            {
                pg_unavailable(&code)
            }
            Some(code) if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => {
                sqlite_unavailable(&code)
            }
            _ => false,
        },
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs that mean "try again later": class 08 (connection exception),
/// class 53 (insufficient resources: too many connections, disk full…), 57P01..57P03
/// (shutting down, cannot connect now).
fn pg_unavailable(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P0")
}

/// SQLite result codes (extended; the primary code is the low byte) that mean "try again
/// later": `SQLITE_BUSY` (5) and `SQLITE_LOCKED` (6), once the busy timeout has passed, and
/// `SQLITE_CANTOPEN` (14).
fn sqlite_unavailable(code: &str) -> bool {
    code.parse::<i32>()
        .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 14))
}

#[cfg(test)]
mod tests {
    use super::{pg_unavailable, sqlite_unavailable};

    #[test]
    fn unavailable_codes() {
        for code in ["08006", "08001", "53300", "57P01", "57P03"] {
            assert!(pg_unavailable(code), "{code}");
        }
        for code in ["23505", "42P01", "40001", "57014", "22P02"] {
            assert!(!pg_unavailable(code), "{code}");
        }
        // SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED, SQLITE_CANTOPEN.
        for code in ["5", "517", "6", "14"] {
            assert!(sqlite_unavailable(code), "{code}");
        }
        // SQLITE_ERROR, SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY, SQLITE_CONSTRAINT.
        for code in ["1", "2067", "1555", "19"] {
            assert!(!sqlite_unavailable(code), "{code}");
        }
    }
}
