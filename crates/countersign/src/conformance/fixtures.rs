//! What every check builds on: a fixed time, random ids and names, records.

use crate::clock::UnixTime;
use crate::password::PasswordHash;
use crate::refresh::RefreshHash;
use crate::session::{SessionPolicy, SessionRecord, SessionToken};
use crate::user::{Role, UserId, Username};

pub(super) const T0: UnixTime = UnixTime(1_800_000_000);

pub(super) fn random_user_id() -> UserId {
    let b = crate::random::bytes::<8>();
    UserId(i64::from_le_bytes(b).rem_euclid(1 << 52) + 1_000_000)
}

pub(super) fn random_name(prefix: &str) -> Username {
    let id = crate::random::token_id().replace(['-', '_'], "x");
    Username::parse(&format!("{prefix}{}", &id[..12])).unwrap()
}

pub(super) fn hash(tag: &str) -> PasswordHash {
    PasswordHash::from_phc(format!("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ${tag}"))
}

pub(super) fn session(user: UserId, now: UnixTime, policy: &SessionPolicy) -> SessionRecord {
    let mut r = SessionRecord::new(
        &SessionToken::generate(),
        user,
        Username::parse("someone").unwrap(),
        Role::user(),
        policy,
        now,
    );
    r.user_agent = "conformance/1.0 (ünïcödé)".into();
    r.ip = "127.0.0.1".into();
    r
}

pub(super) fn refresh_hash() -> RefreshHash {
    RefreshHash::from_stored(crate::random::opaque_token())
}
