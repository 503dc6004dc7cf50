-- countersign, SQLite. Times are unix seconds.
--
-- Sessions, refresh families, the denylist and the throttle counters reference user ids
-- but have no foreign key to `users`: the session store may be another database (Redis)
-- than the user store, so the two halves of this schema stay independent.
--
-- Tables looked up only by a text key are WITHOUT ROWID: the row lives in the primary key's
-- b-tree, so `load_session` is one b-tree search.

CREATE TABLE users (
    -- AUTOINCREMENT: a deleted user's id (a JWT `sub`) is never given to someone else.
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    key               TEXT    NOT NULL PRIMARY KEY,
    user_id           INTEGER NOT NULL,
    username          TEXT    NOT NULL,
    role              TEXT    NOT NULL,
    created_at        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    idle_deadline     INTEGER NOT NULL,
    absolute_deadline INTEGER NOT NULL,
    -- min(idle_deadline, absolute_deadline), kept by every write: one column to expire by.
    expires_at        INTEGER NOT NULL,
    csrf_token        TEXT    NOT NULL,
    user_agent        TEXT    NOT NULL,
    ip                TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE refresh_families (
    id                TEXT    NOT NULL PRIMARY KEY,
    user_id           INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    idle_deadline     INTEGER NOT NULL,
    absolute_deadline INTEGER NOT NULL,
    -- min(idle_deadline, absolute_deadline); 0 once revoked, so the sweep finds it.
    expires_at        INTEGER NOT NULL,
    revoked           BOOLEAN NOT NULL DEFAULT FALSE
) WITHOUT ROWID;
CREATE INDEX refresh_families_user ON refresh_families (user_id);
CREATE INDEX refresh_families_expiry ON refresh_families (expires_at);

CREATE TABLE refresh_tokens (
    hash      TEXT    NOT NULL PRIMARY KEY,
    family_id TEXT    NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    retired   BOOLEAN NOT NULL DEFAULT FALSE
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE jti_denylist (
    jti   TEXT    NOT NULL PRIMARY KEY,
    until INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX jti_denylist_expiry ON jti_denylist (until);

CREATE TABLE issued_before (
    user_id INTEGER PRIMARY KEY,
    before  INTEGER NOT NULL
);

CREATE TABLE throttle (
    key        TEXT    NOT NULL PRIMARY KEY,
    count      INTEGER NOT NULL,
    window_end INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX throttle_expiry ON throttle (window_end);
