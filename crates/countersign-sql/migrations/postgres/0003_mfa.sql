-- Second factors (countersign::mfa).
--
-- How each session and refresh family was authenticated (RFC 8176 `amr`, space-separated
-- names) and when (`auth_time`). Rows written before this migration were password logins
-- made when they were created.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE sessions ADD COLUMN auth_time BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET auth_time = created_at;
ALTER TABLE sessions ALTER COLUMN auth_time DROP DEFAULT;

ALTER TABLE refresh_families ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE refresh_families ADD COLUMN auth_time BIGINT NOT NULL DEFAULT 0;
UPDATE refresh_families SET auth_time = created_at;
ALTER TABLE refresh_families ALTER COLUMN auth_time DROP DEFAULT;

-- A user's second factors: TOTP secrets (sealed) and passkeys (the WebAuthn credential
-- record). `id` is global: a passkey's credential id finds its user. `counter` is the last
-- TOTP step accepted, only ever raised (one conditional UPDATE). Unlike the session tables
-- these live with the users, so they go with them.
CREATE TABLE mfa_factors (
    id           TEXT COLLATE "C" PRIMARY KEY,
    user_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    data         BYTEA   NOT NULL,
    counter      BIGINT  NOT NULL,
    confirmed    BOOLEAN NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX mfa_factors_user ON mfa_factors (user_id);

-- Recovery codes, as SHA-256 hashes; `used_at` is set once (one conditional UPDATE).
CREATE TABLE mfa_recovery_codes (
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, hash)
);
