//! Rows to engine types, for either driver. Nothing read from the database is trusted: a
//! value that does not parse is a [`StoreError::Backend`] wrapping
//! [`countersign::store::CorruptRow`], never a panic.

use countersign::clock::UnixTime;
use countersign::mfa::recovery::RecoveryHash;
use countersign::mfa::{Amr, Factor, FactorId, FactorKind, RecoveryCodeRecord};
use countersign::password::PasswordHash;
use countersign::refresh::{FamilyId, RefreshFamily};
use countersign::session::{SessionKey, SessionRecord};
use countersign::store::{
    CorruptRow, StoreError, StoreResult, backend, stored_role, stored_username,
};
use countersign::user::{User, UserId};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::error::store_err;

/// Column `i` of `row`, a decode failure as a backend error.
pub(crate) fn get<'r, R, T>(row: &'r R, i: usize) -> StoreResult<T>
where
    R: Row,
    usize: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(i).map_err(store_err)
}

/// `id, username, role, password_hash, created_at, disabled`.
pub(crate) fn user<R>(row: &R) -> StoreResult<User>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    bool: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    for<'r> &'r str: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(User {
        id: UserId(get(row, 0)?),
        username: stored_username(get(row, 1)?)?,
        role: stored_role(get(row, 2)?)?,
        password_hash: PasswordHash::from_phc(get::<R, &str>(row, 3)?),
        created_at: UnixTime(get(row, 4)?),
        disabled: get(row, 5)?,
    })
}

/// `key, user_id, username, role, created_at, last_seen, idle_deadline, absolute_deadline,
/// csrf_token, user_agent, ip, amr, auth_time`.
pub(crate) fn session<R>(row: &R) -> StoreResult<SessionRecord>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    for<'r> &'r str: Decode<'r, R::Database> + Type<R::Database>,
{
    let key: &str = get(row, 0)?;
    Ok(SessionRecord {
        key: SessionKey::parse(key).ok_or_else(|| corrupt(key))?,
        user_id: UserId(get(row, 1)?),
        username: stored_username(get(row, 2)?)?,
        role: stored_role(get(row, 3)?)?,
        created_at: UnixTime(get(row, 4)?),
        last_seen: UnixTime(get(row, 5)?),
        idle_deadline: UnixTime(get(row, 6)?),
        absolute_deadline: UnixTime(get(row, 7)?),
        csrf_token: get::<R, &str>(row, 8)?.to_owned(),
        user_agent: get::<R, &str>(row, 9)?.to_owned(),
        ip: get::<R, &str>(row, 10)?.to_owned(),
        amr: Amr::parse(get(row, 11)?),
        auth_time: UnixTime(get(row, 12)?),
    })
}

/// A token and its family: `retired, revoked, id, user_id, created_at, idle_deadline,
/// absolute_deadline, amr, auth_time`.
pub(crate) fn token_and_family<R>(row: &R) -> StoreResult<(bool, bool, RefreshFamily)>
where
    R: Row,
    usize: ColumnIndex<R>,
    bool: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    i64: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    for<'r> &'r str: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok((
        get(row, 0)?,
        get(row, 1)?,
        RefreshFamily {
            id: FamilyId(get::<R, &str>(row, 2)?.to_owned()),
            user_id: UserId(get(row, 3)?),
            created_at: UnixTime(get(row, 4)?),
            idle_deadline: UnixTime(get(row, 5)?),
            absolute_deadline: UnixTime(get(row, 6)?),
            amr: Amr::parse(get(row, 7)?),
            auth_time: UnixTime(get(row, 8)?),
        },
    ))
}

/// `id, user_id, kind, name, data, counter, confirmed, created_at, last_used_at`.
pub(crate) fn factor<R>(row: &R) -> StoreResult<Factor>
where
    R: Row,
    usize: ColumnIndex<R>,
    bool: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    i64: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    for<'r> &'r str: Decode<'r, R::Database> + Type<R::Database>,
{
    let kind: &str = get(row, 2)?;
    Ok(Factor {
        id: FactorId(get::<R, &str>(row, 0)?.to_owned()),
        user_id: UserId(get(row, 1)?),
        kind: FactorKind::parse(kind).ok_or_else(|| corrupt(kind))?,
        name: get::<R, &str>(row, 3)?.to_owned(),
        data: get(row, 4)?,
        counter: get(row, 5)?,
        confirmed: get(row, 6)?,
        created_at: UnixTime(get(row, 7)?),
        last_used_at: get::<R, Option<i64>>(row, 8)?.map(UnixTime),
    })
}

/// `hash, created_at, used_at`.
pub(crate) fn recovery_code<R>(row: &R) -> StoreResult<RecoveryCodeRecord>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    for<'r> &'r str: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(RecoveryCodeRecord {
        hash: RecoveryHash::from_stored(get::<R, &str>(row, 0)?),
        created_at: UnixTime(get(row, 1)?),
        used_at: get::<R, Option<i64>>(row, 2)?.map(UnixTime),
    })
}

/// A stored counter, which is never negative unless edited by hand.
pub(crate) fn count(n: i64) -> StoreResult<u64> {
    u64::try_from(n).map_err(|_| corrupt(&n.to_string()))
}

fn corrupt(value: &str) -> StoreError {
    backend(CorruptRow(value.to_owned()))
}
