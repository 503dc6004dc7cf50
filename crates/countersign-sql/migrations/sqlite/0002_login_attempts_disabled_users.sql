-- Login attempts, reserved before any password is hashed (countersign::attempts): per
-- throttled key, the failures of the current window, the attempts in flight and until
-- when they count, the window's end, the lockouts in a row before it, and when the row
-- may go (the sweep deletes it then).
CREATE TABLE login_attempts (
    key           TEXT    NOT NULL PRIMARY KEY,
    failures      INTEGER NOT NULL,
    pending       INTEGER NOT NULL,
    pending_until INTEGER NOT NULL,
    window_end    INTEGER NOT NULL,
    strikes       INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX login_attempts_expiry ON login_attempts (expires_at);

-- A disabled account cannot log in; its sessions and tokens were ended when it was.
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
