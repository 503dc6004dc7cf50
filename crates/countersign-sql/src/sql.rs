//! The statements, shared by both dialects: `$n` placeholders (which sqlx binds by number on
//! SQLite too), `INSERT … ON CONFLICT … DO UPDATE … WHERE` and `RETURNING` (SQLite ≥ 3.35,
//! PostgreSQL ≥ 9.5), `CASE` instead of `min`/`LEAST`, batched deletes through a primary-key
//! subquery instead of `DELETE … LIMIT`. What differs between the dialects (the schema, how a
//! write transaction begins) lives in `sqlite.rs`, `postgres.rs` and the migrations.

// Users.

pub(crate) const INSERT_USER: &str = "INSERT INTO users (username, role, password_hash, created_at) \
     VALUES ($1, $2, $3, $4) RETURNING id";
pub(crate) const USER_BY_NAME: &str =
    "SELECT id, username, role, password_hash, created_at, disabled FROM users WHERE username = $1";
pub(crate) const USER_BY_ID: &str =
    "SELECT id, username, role, password_hash, created_at, disabled FROM users WHERE id = $1";
pub(crate) const LIST_USERS: &str =
    "SELECT id, username, role, password_hash, created_at, disabled FROM users ORDER BY id";
/// A page of the survey of hash formats: hashes other than those starting with `$3`.
pub(crate) const PASSWORD_HASHES_AFTER: &str = "SELECT id, password_hash FROM users \
     WHERE id > $1 AND substr(password_hash, 1, length($3)) <> $3 ORDER BY id LIMIT $2";
pub(crate) const SET_PASSWORD_HASH: &str = "UPDATE users SET password_hash = $2 WHERE id = $1";
/// The rehash at login: only if the hash is still the one verified.
pub(crate) const REPLACE_PASSWORD_HASH: &str =
    "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2";
/// After an import kept ids (PostgreSQL): the identity continues past the largest id.
pub(crate) const PG_ADVANCE_USER_IDS: &str = "SELECT setval(pg_get_serial_sequence('users', 'id'), m) \
     FROM (SELECT max(id) AS m FROM users) t WHERE m IS NOT NULL";
pub(crate) const SET_ROLE: &str = "UPDATE users SET role = $2 WHERE id = $1";
/// In one write transaction with [`DELETE_USER_RECOVERY_CODES`] and
/// [`DELETE_USER_FACTORS`] before it (the foreign keys cascade too; the explicit deletes do
/// not depend on them).
pub(crate) const DELETE_USER: &str = "DELETE FROM users WHERE id = $1";
pub(crate) const SET_DISABLED: &str = "UPDATE users SET disabled = $2 WHERE id = $1";
pub(crate) const PING: &str = "SELECT 1";

// Sessions. `expires_at` is min(idle_deadline, absolute_deadline), written with them.

pub(crate) const INSERT_SESSION: &str = "INSERT INTO sessions (key, user_id, username, role, \
     created_at, last_seen, idle_deadline, absolute_deadline, expires_at, csrf_token, \
     user_agent, ip, amr, auth_time) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";
/// The hot path of every cookie-authenticated request: one primary-key lookup.
pub(crate) const LOAD_SESSION: &str = "SELECT key, user_id, username, role, created_at, \
     last_seen, idle_deadline, absolute_deadline, csrf_token, user_agent, ip, amr, auth_time \
     FROM sessions WHERE key = $1 AND expires_at > $2";
pub(crate) const TOUCH_SESSION: &str = "UPDATE sessions SET last_seen = $2, \
     idle_deadline = CASE WHEN $3 < absolute_deadline THEN $3 ELSE absolute_deadline END, \
     expires_at = CASE WHEN $3 < absolute_deadline THEN $3 ELSE absolute_deadline END \
     WHERE key = $1";
pub(crate) const DELETE_SESSION: &str = "DELETE FROM sessions WHERE key = $1";
pub(crate) const LIST_USER_SESSIONS: &str = "SELECT key, user_id, username, role, created_at, \
     last_seen, idle_deadline, absolute_deadline, csrf_token, user_agent, ip, amr, auth_time \
     FROM sessions WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at DESC, key";
pub(crate) const DELETE_USER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1";
pub(crate) const SWEEP_SESSIONS: &str = "DELETE FROM sessions WHERE key IN \
     (SELECT key FROM sessions WHERE expires_at <= $1 LIMIT $2)";

// Refresh families. A revoked family gets `expires_at = 0`, so the sweep finds it by the
// same index as an ended one.

pub(crate) const INSERT_FAMILY: &str = "INSERT INTO refresh_families (id, user_id, created_at, \
     idle_deadline, absolute_deadline, expires_at, revoked, amr, auth_time) \
     VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $8)";
pub(crate) const INSERT_TOKEN: &str =
    "INSERT INTO refresh_tokens (hash, family_id, retired) VALUES ($1, $2, FALSE)";
pub(crate) const FIND_TOKEN: &str = "SELECT t.retired, f.revoked, f.id, f.user_id, \
     f.created_at, f.idle_deadline, f.absolute_deadline, f.amr, f.auth_time \
     FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.hash = $1";
/// The atomic step of a rotation: of two concurrent ones, only one changes the row.
pub(crate) const RETIRE_TOKEN: &str =
    "UPDATE refresh_tokens SET retired = TRUE WHERE hash = $1 AND NOT retired";
pub(crate) const EXTEND_FAMILY: &str = "UPDATE refresh_families \
     SET idle_deadline = $2, expires_at = $2 \
     WHERE id = $1 AND NOT revoked AND expires_at > $3";
pub(crate) const REVOKE_FAMILY: &str =
    "UPDATE refresh_families SET revoked = TRUE, expires_at = 0 WHERE id = $1";
pub(crate) const REVOKE_BY_TOKEN: &str = "UPDATE refresh_families \
     SET revoked = TRUE, expires_at = 0 \
     WHERE id = (SELECT family_id FROM refresh_tokens WHERE hash = $1)";
pub(crate) const REVOKE_USER_FAMILIES: &str = "UPDATE refresh_families \
     SET revoked = TRUE, expires_at = 0 WHERE user_id = $1 AND NOT revoked";
/// Their tokens go by `ON DELETE CASCADE`.
pub(crate) const SWEEP_FAMILIES: &str = "DELETE FROM refresh_families WHERE id IN \
     (SELECT id FROM refresh_families WHERE expires_at <= $1 LIMIT $2)";

// Second factors and recovery codes (`countersign::store::FactorStore`). Every statement
// that names a factor by id names its user too, except the lookup by id alone (a
// passwordless passkey login starts from the credential id).

pub(crate) const INSERT_FACTOR: &str = "INSERT INTO mfa_factors (id, user_id, kind, name, data, \
     counter, confirmed, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub(crate) const FACTOR_BY_ID: &str = "SELECT id, user_id, kind, name, data, counter, confirmed, \
     created_at, last_used_at FROM mfa_factors WHERE id = $1";
pub(crate) const USER_FACTORS: &str = "SELECT id, user_id, kind, name, data, counter, confirmed, \
     created_at, last_used_at FROM mfa_factors WHERE user_id = $1 ORDER BY created_at, id";
/// Leaves `counter` alone: only [`ADVANCE_FACTOR`] moves it.
pub(crate) const UPDATE_FACTOR: &str = "UPDATE mfa_factors SET name = $3, data = $4, \
     confirmed = $5, last_used_at = $6 WHERE id = $1 AND user_id = $2";
/// The atomic step that accepts a TOTP code once: of two concurrent calls with one step,
/// one changes the row (PostgreSQL re-checks the condition once the first commits).
pub(crate) const ADVANCE_FACTOR: &str = "UPDATE mfa_factors SET counter = $3, last_used_at = $4 \
     WHERE user_id = $1 AND id = $2 AND counter < $3";
pub(crate) const DELETE_FACTOR: &str = "DELETE FROM mfa_factors WHERE user_id = $1 AND id = $2";
pub(crate) const DELETE_USER_FACTORS: &str = "DELETE FROM mfa_factors WHERE user_id = $1";
/// PostgreSQL: taken first by a replacement of a user's codes, so two replacements do not
/// interleave (SQLite's `BEGIN IMMEDIATE` already runs one writer at a time).
pub(crate) const PG_LOCK_USER: &str = "SELECT 1 FROM users WHERE id = $1 FOR UPDATE";
pub(crate) const DELETE_USER_RECOVERY_CODES: &str =
    "DELETE FROM mfa_recovery_codes WHERE user_id = $1";
/// Prefix of the multi-row insert of a new set (one `VALUES` row per code).
pub(crate) const INSERT_RECOVERY_CODES: &str =
    "INSERT INTO mfa_recovery_codes (user_id, hash, created_at) ";
/// The atomic step that accepts a recovery code once.
pub(crate) const USE_RECOVERY_CODE: &str = "UPDATE mfa_recovery_codes SET used_at = $3 \
     WHERE user_id = $1 AND hash = $2 AND used_at IS NULL";
pub(crate) const USER_RECOVERY_CODES: &str = "SELECT hash, created_at, used_at \
     FROM mfa_recovery_codes WHERE user_id = $1 ORDER BY created_at, hash";

// Revocation. Both upserts keep the later time.

pub(crate) const DENY_JTI: &str = "INSERT INTO jti_denylist (jti, until) VALUES ($1, $2) \
     ON CONFLICT (jti) DO UPDATE SET until = excluded.until \
     WHERE excluded.until > jti_denylist.until";
pub(crate) const IS_JTI_DENIED: &str = "SELECT 1 FROM jti_denylist WHERE jti = $1 AND until > $2";
pub(crate) const SWEEP_DENYLIST: &str = "DELETE FROM jti_denylist WHERE jti IN \
     (SELECT jti FROM jti_denylist WHERE until <= $1 LIMIT $2)";
pub(crate) const REVOKE_ISSUED_BEFORE: &str = "INSERT INTO issued_before (user_id, before) \
     VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET before = excluded.before \
     WHERE excluded.before > issued_before.before";
pub(crate) const ISSUED_BEFORE: &str = "SELECT before FROM issued_before WHERE user_id = $1";

// Throttling: one atomic upsert counts, and starts a new window when the old one ended.
// `$2` is now + window, `$3` is now.

pub(crate) const HIT: &str = "INSERT INTO throttle (key, count, window_end) VALUES ($1, 1, $2) \
     ON CONFLICT (key) DO UPDATE SET \
     count = CASE WHEN throttle.window_end <= $3 THEN 1 ELSE throttle.count + 1 END, \
     window_end = CASE WHEN throttle.window_end <= $3 THEN excluded.window_end \
     ELSE throttle.window_end END \
     RETURNING count, window_end";
pub(crate) const PEEK: &str =
    "SELECT count, window_end FROM throttle WHERE key = $1 AND window_end > $2";
pub(crate) const CLEAR: &str = "DELETE FROM throttle WHERE key = $1";
pub(crate) const SWEEP_THROTTLE: &str = "DELETE FROM throttle WHERE key IN \
     (SELECT key FROM throttle WHERE window_end <= $1 LIMIT $2)";

// Login attempts (`countersign::attempts`). A reservation or settlement runs in one write
// transaction: for each key, in key order, the upsert creates an empty row or, on an
// existing one, makes a no-op update, which on PostgreSQL takes the row's lock until the
// transaction ends (SQLite's `BEGIN IMMEDIATE` holds the database's); the engine's rules
// then decide, and the row is written back. An empty row (`expires_at = 0`) reads as none.

pub(crate) const ATTEMPT_LOCK: &str = "INSERT INTO login_attempts \
     (key, failures, pending, pending_until, window_end, strikes, expires_at) \
     VALUES ($1, 0, 0, 0, 0, 0, 0) \
     ON CONFLICT (key) DO UPDATE SET failures = login_attempts.failures \
     RETURNING failures, pending, pending_until, window_end, strikes, expires_at";
/// Without a lock: the pre-check that answers refusals without a write.
pub(crate) const ATTEMPT_READ: &str = "SELECT failures, pending, pending_until, window_end, \
     strikes, expires_at FROM login_attempts WHERE key = $1";
pub(crate) const ATTEMPT_WRITE: &str = "UPDATE login_attempts SET failures = $2, pending = $3, \
     pending_until = $4, window_end = $5, strikes = $6, expires_at = $7 WHERE key = $1";
pub(crate) const ATTEMPT_DELETE: &str = "DELETE FROM login_attempts WHERE key = $1";
pub(crate) const SWEEP_ATTEMPTS: &str = "DELETE FROM login_attempts WHERE key IN \
     (SELECT key FROM login_attempts WHERE expires_at <= $1 LIMIT $2)";
/// PostgreSQL: rows a reservation holds are left for the next sweep, so the sweep never
/// waits on (or deadlocks with) a login.
pub(crate) const PG_SWEEP_ATTEMPTS: &str = "DELETE FROM login_attempts WHERE key IN \
     (SELECT key FROM login_attempts WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)";

/// Rows deleted per statement by a sweep: small enough that a write waiting behind it waits
/// milliseconds, not seconds.
pub(crate) const SWEEP_BATCH: i64 = 500;
