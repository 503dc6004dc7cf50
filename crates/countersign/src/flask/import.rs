//! `countersign user import`: users with the password hashes a Flask app stored, from CSV
//! (with a header) or JSON lines, streamed into one store transaction.
//!
//! Each record has `username` and `password_hash`, optionally `role` (default `user`) and
//! `id` (the old application's id, kept so that its sessions and tokens naming the id
//! still point at the same person). Other columns or keys are ignored, so a table's export
//! can be used as is. The format is told by the first byte: `{` for JSON lines, anything
//! else for CSV.
//!
//! All or nothing: every record is checked (name, role, id, hash format and cost caps,
//! [`super::hashes::check`]) and the valid ones are inserted in batches inside one
//! transaction. Without `skip_invalid`, any refused record (or a name already taken) means
//! nothing is imported, and the report names every refused record by its line; with it,
//! the refused records are left out, reported the same way, and the rest are committed.
//! Memory stays bounded whatever the file's size: one batch and at most
//! [`MAX_REPORTED`] refusals are held at a time.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};

use super::hashes::{self, HashFormat};
use crate::clock::UnixTime;
use crate::password::PasswordHash;
use crate::store::{ImportedUser, StoreError, UserStore};
use crate::user::{NewUser, Role, UserId, Username};

/// Records inserted per statement.
pub const BATCH: usize = 500;

/// Refused records kept in a report; past that they are only counted.
pub const MAX_REPORTED: usize = 1000;

/// The longest record accepted, bytes (a line of JSON, a CSV record).
pub const MAX_RECORD_BYTES: usize = 16 * 1024;

/// How an import runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Leave refused records out and commit the rest (else nothing is imported).
    pub skip_invalid: bool,
}

/// A refused record: where it is and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The line of the file the record starts on (1 is the first line, the CSV header).
    pub line: u64,
    /// Why, in words; never the hash itself.
    pub reason: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Users added (0 when the import was refused as a whole).
    pub imported: u64,
    /// Imported users per hash format.
    pub formats: BTreeMap<String, u64>,
    /// Records refused (all of them, counted).
    pub refused: u64,
    /// The first [`MAX_REPORTED`] refused records.
    pub refusals: Vec<Refused>,
    /// Whether the import was committed.
    pub committed: bool,
}

impl ImportReport {
    fn refuse(&mut self, line: u64, reason: impl Into<String>) {
        self.refused += 1;
        if self.refusals.len() < MAX_REPORTED {
            self.refusals.push(Refused {
                line,
                reason: reason.into(),
            });
        }
    }
}

/// Why an import could not run at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The input could not be read.
    #[error("cannot read the input: {0}")]
    Io(#[from] std::io::Error),
    /// The CSV header lacks a required column.
    #[error(
        "the CSV header has no `{0}` column (expected username, password_hash, optional role and id)"
    )]
    Header(&'static str),
    /// The store failed (nothing was imported).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One record as read.
#[derive(Debug, Default, serde::Deserialize)]
struct Record {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password_hash: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// A checked record.
fn check(record: Record, now: UnixTime) -> Result<(ImportedUser, HashFormat), String> {
    let username = record
        .username
        .filter(|s| !s.is_empty())
        .ok_or("no username")?;
    let username = Username::parse(&username).map_err(|e| format!("username: {e}"))?;
    let hash = record
        .password_hash
        .filter(|s| !s.is_empty())
        .ok_or("no password_hash")?;
    let format = hashes::check(&hash).map_err(|e| e.to_string())?;
    let role = match record.role.as_deref().map(str::trim) {
        None | Some("") => Role::user(),
        Some(r) => Role::parse(r).map_err(|e| format!("role: {e}"))?,
    };
    let id = match record.id {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => None,
        Some(v) => {
            let n = match &v {
                serde_json::Value::Number(n) => n.as_i64(),
                serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            match n {
                Some(n) if n >= 1 => Some(UserId(n)),
                _ => return Err("id: expected a whole number of at least 1".to_owned()),
            }
        }
    };
    Ok((
        ImportedUser {
            id,
            user: NewUser {
                username,
                role,
                password_hash: PasswordHash::from_phc(hash),
                created_at: now,
            },
        },
        format,
    ))
}

/// A record and the line it starts on, or why it could not be read.
type Numbered = (u64, Result<Record, String>);

/// Records from the input, each with its line, or why it could not be read.
enum Records<R: BufRead> {
    Json {
        input: R,
        line: u64,
        buf: String,
    },
    Csv {
        reader: csv::Reader<R>,
        columns: [Option<usize>; 4],
        record: csv::StringRecord,
    },
}

impl<R: BufRead> Records<R> {
    fn open(mut input: R) -> Result<Self, ImportError> {
        let first = input
            .fill_buf()?
            .iter()
            .copied()
            .find(|b| !b.is_ascii_whitespace());
        if first == Some(b'{') {
            return Ok(Self::Json {
                input,
                line: 0,
                buf: String::new(),
            });
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(input);
        let header = reader
            .headers()
            .map_err(|e| ImportError::Io(std::io::Error::other(e)))?
            .clone();
        let find = |name: &str| {
            header
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
        };
        let columns = [
            find("username"),
            find("password_hash"),
            find("role"),
            find("id"),
        ];
        if columns[0].is_none() {
            return Err(ImportError::Header("username"));
        }
        if columns[1].is_none() {
            return Err(ImportError::Header("password_hash"));
        }
        Ok(Self::Csv {
            reader,
            columns,
            record: csv::StringRecord::new(),
        })
    }

    /// The next record, `None` at the end; `Some((line, Err))` for one that cannot be
    /// parsed. An I/O error ends the import.
    fn next(&mut self) -> Result<Option<Numbered>, ImportError> {
        match self {
            Self::Json { input, line, buf } => loop {
                buf.clear();
                let n = input
                    .by_ref()
                    .take(MAX_RECORD_BYTES as u64 + 1)
                    .read_line(buf)?;
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                if n > MAX_RECORD_BYTES {
                    // Skip the rest of the over-long line.
                    if !buf.ends_with('\n') {
                        let mut rest = Vec::new();
                        input.read_until(b'\n', &mut rest)?;
                    }
                    return Ok(Some((*line, Err("the line is too long".to_owned()))));
                }
                if buf.trim().is_empty() {
                    continue;
                }
                let parsed = serde_json::from_str::<Record>(buf.trim())
                    .map_err(|e| format!("not a JSON object with string fields ({e})"));
                return Ok(Some((*line, parsed)));
            },
            Self::Csv {
                reader,
                columns,
                record,
            } => {
                let more = match reader.read_record(record) {
                    Ok(more) => more,
                    Err(e) => {
                        let line = e.position().map_or(0, csv::Position::line);
                        if let csv::ErrorKind::Io(_) = e.kind() {
                            return Err(ImportError::Io(std::io::Error::other(e)));
                        }
                        return Ok(Some((line, Err(format!("unreadable CSV record ({e})")))));
                    }
                };
                if !more {
                    return Ok(None);
                }
                let line = record.position().map_or(0, csv::Position::line);
                if record.as_slice().len() > MAX_RECORD_BYTES {
                    return Ok(Some((line, Err("the record is too long".to_owned()))));
                }
                let field = |i: Option<usize>| i.and_then(|i| record.get(i)).map(str::to_owned);
                Ok(Some((
                    line,
                    Ok(Record {
                        username: field(columns[0]),
                        password_hash: field(columns[1]),
                        role: field(columns[2]),
                        id: field(columns[3]).map(serde_json::Value::String),
                    }),
                )))
            }
        }
    }
}

impl crate::auth::Auth {
    /// [`import_users`] into the service's user store, created at its clock's time.
    ///
    /// # Errors
    /// As [`import_users`].
    pub async fn import_users(
        &self,
        input: impl Read,
        options: ImportOptions,
    ) -> Result<ImportReport, ImportError> {
        import_users(self.users().as_ref(), input, options, self.now()).await
    }
}

/// Import users from `input` (CSV with a header, or JSON lines) into `store`, created at
/// `now` (see the module docs). Reads `input` synchronously: call it from a command-line
/// tool or a blocking task.
///
/// # Errors
/// [`ImportError`] when the input cannot be read or has no usable header, or the store
/// fails; refused records are not errors but part of the report (with
/// [`ImportReport::committed`] false unless `skip_invalid`).
pub async fn import_users(
    store: &dyn UserStore,
    input: impl Read,
    options: ImportOptions,
    now: UnixTime,
) -> Result<ImportReport, ImportError> {
    let mut records = Records::open(BufReader::with_capacity(64 * 1024, input))?;
    let mut report = ImportReport::default();
    let mut import = store.begin_import().await?;
    let mut batch: Vec<(u64, ImportedUser, HashFormat)> = Vec::with_capacity(BATCH);
    let mut formats: BTreeMap<HashFormat, u64> = BTreeMap::new();
    loop {
        let next = records.next()?;
        let end = next.is_none();
        if let Some((line, record)) = next {
            match record.and_then(|r| check(r, now)) {
                Ok((user, format)) => batch.push((line, user, format)),
                Err(reason) => report.refuse(line, reason),
            }
        }
        // Once a record is refused without skip_invalid, nothing will be committed: the
        // rest is only checked, not inserted.
        let inserting = options.skip_invalid || report.refused == 0;
        if !inserting {
            batch.clear();
        }
        if batch.len() >= BATCH || (end && !batch.is_empty()) {
            let users: Vec<ImportedUser> = batch.iter().map(|(_, u, _)| u.clone()).collect();
            let added = import.insert(&users).await?;
            for ((line, user, format), added) in batch.drain(..).zip(added) {
                if added {
                    report.imported += 1;
                    *formats.entry(format).or_default() += 1;
                } else {
                    report.refuse(
                        line,
                        format!(
                            "user {} (or its id) already exists or appears earlier in the file",
                            user.user.username
                        ),
                    );
                }
            }
        }
        if end {
            break;
        }
    }
    if report.refused > 0 && !options.skip_invalid {
        // Dropping the import rolls it back.
        drop(import);
        report.imported = 0;
        return Ok(report);
    }
    import.commit().await?;
    report.committed = true;
    report.formats = formats
        .into_iter()
        .map(|(f, n)| (f.to_string(), n))
        .collect();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    const NOW: UnixTime = UnixTime(1_800_000_000);
    const PBKDF2: &str =
        "pbkdf2:sha256:1$salt$120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b";

    async fn run(input: &str, skip: bool) -> (MemoryStore, ImportReport) {
        let store = MemoryStore::new();
        let report = import_users(
            &store,
            input.as_bytes(),
            ImportOptions { skip_invalid: skip },
            NOW,
        )
        .await
        .unwrap();
        (store, report)
    }

    #[tokio::test]
    async fn csv_with_extra_columns_roles_and_ids() {
        let csv = format!(
            "id,email,username,password_hash,role\n\
             7,a@example.org,alice,{PBKDF2},admin\n\
             ,b@example.org,bob,\"{PBKDF2}\",\n"
        );
        let (store, report) = run(&csv, false).await;
        assert!(report.committed, "{report:?}");
        assert_eq!(report.imported, 2);
        assert_eq!(report.formats.get("werkzeug-pbkdf2"), Some(&2));
        let alice = store.user_by_name("alice").await.unwrap().unwrap();
        assert_eq!((alice.id, alice.role.as_str()), (UserId(7), "admin"));
        assert_eq!(alice.password_hash.as_str(), PBKDF2);
        let bob = store.user_by_name("bob").await.unwrap().unwrap();
        assert_eq!(bob.role, Role::user());
        assert!(bob.id > UserId(7));
    }

    #[tokio::test]
    async fn json_lines() {
        let jsonl = format!(
            "{{\"username\":\"alice\",\"password_hash\":\"{PBKDF2}\",\"id\":3}}\n\n\
             {{\"username\":\"bob\",\"password_hash\":\"{PBKDF2}\",\"role\":\"user\",\"x\":[1]}}\n"
        );
        let (store, report) = run(&jsonl, false).await;
        assert_eq!((report.imported, report.committed), (2, true), "{report:?}");
        assert_eq!(
            store.user_by_name("alice").await.unwrap().unwrap().id,
            UserId(3)
        );
    }

    #[tokio::test]
    async fn one_bad_record_imports_nothing_unless_skipped() {
        let csv = format!(
            "username,password_hash\n\
             alice,{PBKDF2}\n\
             bob,$1$md5crypt$nope\n\
             carol,pbkdf2:sha256:1000000000$s${}\n\
             bad name,{PBKDF2}\n\
             alice,{PBKDF2}\n\
             dave,{PBKDF2}\n",
            "0".repeat(64)
        );
        let (store, report) = run(&csv, false).await;
        assert!(!report.committed);
        assert_eq!(report.imported, 0);
        assert!(store.list_users().await.unwrap().is_empty());
        let lines: Vec<u64> = report.refusals.iter().map(|r| r.line).collect();
        // Once refused, later records are only checked: the repeat of alice (line 6) is
        // not looked up.
        assert_eq!(lines, vec![3, 4, 5], "{report:?}");
        assert!(
            report.refusals[0]
                .reason
                .starts_with("unknown password hash format")
        );
        assert!(report.refusals[1].reason.contains("cost cap"), "{report:?}");
        assert!(report.refusals[2].reason.starts_with("username:"));

        let (store, report) = run(&csv, true).await;
        assert!(report.committed);
        assert_eq!(report.imported, 2);
        let lines: Vec<u64> = report.refusals.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6], "{report:?}");
        assert!(report.refusals[3].reason.contains("already exists"));
        assert_eq!(store.list_users().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn headers_and_bad_ids() {
        let store = MemoryStore::new();
        let e = import_users(
            &store,
            "name,hash\nx,y\n".as_bytes(),
            ImportOptions::default(),
            NOW,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, ImportError::Header("username")), "{e}");
        let (_, report) = run(
            &format!("username,password_hash,id\na,{PBKDF2},0\nb,{PBKDF2},x\n"),
            true,
        )
        .await;
        assert_eq!(report.refused, 2);
        assert!(report.refusals[0].reason.starts_with("id:"));
        let (_, report) = run("{\"username\": 5}\n{not json\n", true).await;
        assert_eq!(report.refused, 2);
        assert_eq!(report.refusals[1].line, 2);
    }

    /// An imported hash logs in, is replaced by argon2id at the pool's parameters, and
    /// a wrong password against it is refused like any other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn imported_users_log_in_and_are_rehashed() {
        use std::sync::Arc;

        use crate::auth::{Auth, AuthConfig, LoginError};
        use crate::clock::ManualClock;
        use crate::keys::{KeyRing, SecretKey};
        use crate::password::{HashParams, Hasher, HashingPool, Password};

        let params = HashParams {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        };
        let store = Arc::new(MemoryStore::new());
        let bcrypt = bcrypt::hash_with_salt("password", 4, [9u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoB);
        let csv = format!("username,password_hash\nalice,{PBKDF2}\nbob,{bcrypt}\n");
        let report = import_users(&*store, csv.as_bytes(), ImportOptions::default(), NOW)
            .await
            .unwrap();
        assert_eq!(report.imported, 2);
        let (key, _) = SecretKey::generate(32).unwrap();
        let auth = Auth::new(
            KeyRing::single(key),
            AuthConfig::default(),
            store.clone(),
            store.clone(),
            HashingPool::new(Hasher::new(params).unwrap(), 1, 8).unwrap(),
            Arc::new(ManualClock::new(NOW)),
        );
        for name in ["alice", "bob"] {
            let wrong = auth
                .login(name, Password::new("passwore"), "10.0.0.1")
                .await;
            assert!(matches!(wrong, Err(LoginError::Invalid)), "{wrong:?}");
            let stored = store.user_by_name(name).await.unwrap().unwrap();
            assert!(!stored.password_hash.as_str().starts_with("$argon2id$"));
            auth.login(name, Password::new("password"), "10.0.0.1")
                .await
                .unwrap();
            let stored = store.user_by_name(name).await.unwrap().unwrap();
            assert!(
                stored
                    .password_hash
                    .as_str()
                    .starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
                "{name}"
            );
            // And the new hash works.
            auth.login(name, Password::new("password"), "10.0.0.1")
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn many_records_go_in_batches() {
        let mut csv = String::from("username,password_hash\n");
        for i in 0..(BATCH * 2 + 17) {
            csv.push_str(&format!("user{i},{PBKDF2}\n"));
        }
        let (store, report) = run(&csv, false).await;
        assert_eq!(report.imported, (BATCH * 2 + 17) as u64);
        assert_eq!(store.list_users().await.unwrap().len(), BATCH * 2 + 17);
    }
}
