-- Login attempts, reserved before any password is hashed (countersign::attempts): per
-- throttled key, the failures of the current window, the attempts in flight and until
-- when they count, the window's end, the lockouts in a row before it, and when the row
-- may go (the sweep deletes it then).
CREATE TABLE login_attempts (
    key           TEXT COLLATE "C" PRIMARY KEY,
    failures      BIGINT NOT NULL,
    pending       BIGINT NOT NULL,
    pending_until BIGINT NOT NULL,
    window_end    BIGINT NOT NULL,
    strikes       BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX login_attempts_expiry ON login_attempts (expires_at);

-- A disabled account cannot log in; its sessions and tokens were ended when it was.
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
