-- countersign, PostgreSQL. Times are unix seconds.
--
-- Sessions, refresh families, the denylist and the throttle counters reference user ids
-- but have no foreign key to `users`: the session store may be another database (Redis)
-- than the user store, so the two halves of this schema stay independent.
--
-- Keys, hashes and names use the "C" collation: compared and ordered bytewise, exactly as
-- the engine (and the SQLite store) does, and cheaper to index.

CREATE TABLE users (
    -- An identity never reuses a deleted user's id (a JWT `sub`).
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT COLLATE "C" NOT NULL UNIQUE,
    role          TEXT   NOT NULL,
    password_hash TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    key               TEXT COLLATE "C" PRIMARY KEY,
    user_id           BIGINT NOT NULL,
    username          TEXT   NOT NULL,
    role              TEXT   NOT NULL,
    created_at        BIGINT NOT NULL,
    last_seen         BIGINT NOT NULL,
    idle_deadline     BIGINT NOT NULL,
    absolute_deadline BIGINT NOT NULL,
    -- min(idle_deadline, absolute_deadline), kept by every write: one column to expire by.
    expires_at        BIGINT NOT NULL,
    csrf_token        TEXT   NOT NULL,
    user_agent        TEXT   NOT NULL,
    ip                TEXT   NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE refresh_families (
    id                TEXT COLLATE "C" PRIMARY KEY,
    user_id           BIGINT  NOT NULL,
    created_at        BIGINT  NOT NULL,
    idle_deadline     BIGINT  NOT NULL,
    absolute_deadline BIGINT  NOT NULL,
    -- min(idle_deadline, absolute_deadline); 0 once revoked, so the sweep finds it.
    expires_at        BIGINT  NOT NULL,
    revoked           BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX refresh_families_user ON refresh_families (user_id);
CREATE INDEX refresh_families_expiry ON refresh_families (expires_at);

CREATE TABLE refresh_tokens (
    hash      TEXT COLLATE "C" PRIMARY KEY,
    family_id TEXT COLLATE "C" NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    retired   BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE jti_denylist (
    jti   TEXT COLLATE "C" PRIMARY KEY,
    until BIGINT NOT NULL
);
CREATE INDEX jti_denylist_expiry ON jti_denylist (until);

CREATE TABLE issued_before (
    user_id BIGINT PRIMARY KEY,
    before  BIGINT NOT NULL
);

CREATE TABLE throttle (
    key        TEXT COLLATE "C" PRIMARY KEY,
    count      BIGINT NOT NULL,
    window_end BIGINT NOT NULL
);
CREATE INDEX throttle_expiry ON throttle (window_end);
