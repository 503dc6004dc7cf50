-- Second factors (countersign::mfa).
--
-- How each session and refresh family was authenticated (RFC 8176 `amr`, space-separated
-- names) and when (`auth_time`). Rows written before this migration were password logins
-- made when they were created. (SQLite cannot add a NOT NULL column without a default,
-- nor drop the default afterwards: `auth_time`'s 0 is never used, every insert names it.)
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE sessions ADD COLUMN auth_time INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET auth_time = created_at;

ALTER TABLE refresh_families ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE refresh_families ADD COLUMN auth_time INTEGER NOT NULL DEFAULT 0;
UPDATE refresh_families SET auth_time = created_at;

-- A user's second factors: TOTP secrets (sealed) and passkeys (the WebAuthn credential
-- record). `id` is global: a passkey's credential id finds its user. `counter` is the last
-- TOTP step accepted, only ever raised (one conditional UPDATE). Unlike the session tables
-- these live with the users, so they go with them (the store deletes them with the user
-- itself; the foreign keys, on in every connection the store opens, are the backstop).
CREATE TABLE mfa_factors (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    data         BLOB    NOT NULL,
    counter      INTEGER NOT NULL,
    confirmed    BOOLEAN NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
) WITHOUT ROWID;
CREATE INDEX mfa_factors_user ON mfa_factors (user_id);

-- Recovery codes, as SHA-256 hashes; `used_at` is set once (one conditional UPDATE).
CREATE TABLE mfa_recovery_codes (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, hash)
) WITHOUT ROWID;
