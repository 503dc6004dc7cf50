//! Moving a Flask app's users to countersign without resetting a password or logging
//! anyone out (the steps: `docs/flask.md`).
//!
//! - [`hashes`]: the password hashes Flask apps store (Werkzeug scrypt and pbkdf2, bcrypt,
//!   argon2), checked against cost caps at import and verified at login, where the first
//!   success replaces them with argon2id.
//! - [`import`]: `countersign user import`: those hashes from CSV or JSON lines, streamed
//!   into one transaction.
//! - [`cookie`]: Flask's signed session cookie (itsdangerous), read and written.
//! - [`bridge`]: a Flask session cookie exchanged for a countersign session, one written
//!   back at login, and no replay after a logout.

pub mod bridge;
pub mod cookie;
pub mod hashes;
pub mod import;
