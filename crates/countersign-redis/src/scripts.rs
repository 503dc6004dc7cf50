//! The Lua scripts. Redis runs each script atomically, which is what makes "create unless
//! it exists", "rotate unless retired", "revoke all while a login races" and "count and
//! start a window" single steps, as the store traits require.
//!
//! Scripts build the names of keys they find through other keys (a session's per-user
//! index, a family's tokens) from the prefix passed as an argument, following the layout
//! in [`crate::keys`]. Redis Cluster requires every key a script touches to be declared
//! up front, so these scripts need a standalone server (or Sentinel, or a single-shard
//! managed service); see `docs/redis.md`.
//!
//! Times are Unix seconds as decimal strings. `ms(s)` turns a deadline into the
//! milliseconds of `PEXPIREAT`: the deadline, but never before Redis's own clock, plus the
//! expiry grace ([`crate::RedisOptions::expiry_grace`]). The grace absorbs clock
//! differences between the servers and Redis (Redis running ahead would otherwise drop a
//! denied `jti` or a session while the servers still consider it current), and the floor
//! keeps a record written with a time already past by Redis's clock (a test's
//! `ManualClock`) readable instead of deleted on arrival. Redis expiry only frees memory;
//! the stored deadlines, compared with the caller's `now`, decide.

use redis::Script;

/// Shared by every script. `GRACE_MS` is replaced by the configured grace.
const PRELUDE: &str = r"
local function ms(s)
  local at = math.min(tonumber(s), 8796093022208) * 1000
  local t = redis.call('TIME')
  local floor = tonumber(t[1]) * 1000
  return string.format('%.0f', math.max(at, floor) + GRACE_MS)
end
local function int(n)
  return string.format('%.0f', n)
end
";

/// KEYS: session, user index, sessions by expiry.
/// ARGV: session key, created at, ends at, absolute deadline, field/value pairs….
/// Returns 1, or 0 when the session exists.
const SESSION_CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIREAT', KEYS[1], ms(ARGV[3]))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
local keep = ms(ARGV[4])
if redis.call('PEXPIRETIME', KEYS[2]) < tonumber(keep) then
  redis.call('PEXPIREAT', KEYS[2], keep)
end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
";

/// KEYS: session, sessions by expiry. ARGV: session key, last seen, idle deadline.
/// Returns 1, or 0 when the session does not exist (a touch never resurrects one).
const SESSION_TOUCH: &str = r"
local abs = redis.call('HGET', KEYS[1], 'absolute_deadline')
if not abs then return 0 end
local idle = int(math.min(tonumber(ARGV[3]), tonumber(abs)))
redis.call('HSET', KEYS[1], 'last_seen', ARGV[2], 'idle_deadline', idle)
redis.call('PEXPIREAT', KEYS[1], ms(idle))
redis.call('ZADD', KEYS[2], idle, ARGV[1])
return 1
";

/// KEYS: session, sessions by expiry. ARGV: session key, prefix.
/// Returns 1, or 0 when the session did not exist.
const SESSION_DELETE: &str = r"
redis.call('ZREM', KEYS[2], ARGV[1])
local user = redis.call('HGET', KEYS[1], 'user_id')
if not user then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[2] .. 'user:' .. user .. ':sessions', ARGV[1])
return 1
";

/// KEYS: user index. ARGV: prefix.
/// Returns `{key, {field, value, …}}` for each indexed session whose record exists, and
/// drops index entries whose record Redis has expired.
const SESSION_LIST: &str = r"
local out = {}
for _, k in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local h = redis.call('HGETALL', ARGV[1] .. 'session:' .. k)
  if #h == 0 then
    redis.call('ZREM', KEYS[1], k)
  else
    out[#out + 1] = {k, h}
  end
end
return out
";

/// KEYS: user index, sessions by expiry. ARGV: prefix.
/// Deletes every indexed session and the index. Returns how many records existed.
const SESSION_DELETE_USER: &str = r"
local n = 0
for _, k in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  n = n + redis.call('DEL', ARGV[1] .. 'session:' .. k)
  redis.call('ZREM', KEYS[2], k)
end
redis.call('DEL', KEYS[1])
return n
";

/// KEYS: sessions by expiry. ARGV: now, batch size, prefix.
/// Removes up to a batch of sessions that ended by `now`. Returns `{looked at, removed}`.
const SESSION_SWEEP: &str = r"
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local n = 0
for _, k in ipairs(due) do
  local key = ARGV[3] .. 'session:' .. k
  local f = redis.call('HMGET', key, 'user_id', 'idle_deadline', 'absolute_deadline')
  local ends = math.min(tonumber(f[2]) or 0, tonumber(f[3]) or 0)
  if f[1] and ends > now then
    redis.call('ZADD', KEYS[1], int(ends), k)
  else
    if f[1] then
      redis.call('DEL', key)
      redis.call('ZREM', ARGV[3] .. 'user:' .. f[1] .. ':sessions', k)
      n = n + 1
    end
    redis.call('ZREM', KEYS[1], k)
  end
end
return {#due, n}
";

/// KEYS: family, first token, family tokens, user families, families by expiry.
/// ARGV: family id, first token hash, absolute deadline, ends at, field/value pairs….
/// Returns 1, or 0 when the family or the token exists.
const FAMILY_CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local abs = ms(ARGV[3])
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('PEXPIREAT', KEYS[1], abs)
redis.call('HSET', KEYS[2], 'family', ARGV[1], 'retired', '0')
redis.call('PEXPIREAT', KEYS[2], abs)
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('PEXPIREAT', KEYS[3], abs)
redis.call('SADD', KEYS[4], ARGV[1])
if redis.call('PEXPIRETIME', KEYS[4]) < tonumber(abs) then
  redis.call('PEXPIREAT', KEYS[4], abs)
end
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
return 1
";

/// KEYS: the presented token's candidate keys, in order. ARGV: prefix, now.
/// Reads only. Returns `{}` unless the token is live (not retired, its family neither
/// revoked nor ended), else `{family id, user, created at, idle deadline, absolute
/// deadline, amr, auth time}` (a family written before it had the last two: `pwd` and
/// its creation).
const FAMILY_PEEK: &str = r"
local found
for _, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 1 then found = k break end
end
if not found then return {} end
local t = redis.call('HMGET', found, 'family', 'retired')
if not t[1] or t[2] == '1' then return {} end
local f = redis.call('HMGET', ARGV[1] .. 'family:' .. t[1], 'user_id', 'created_at', 'idle_deadline', 'absolute_deadline', 'revoked', 'amr', 'auth_time')
if not f[1] then return {} end
local now = tonumber(ARGV[2])
if f[5] == '1' or now >= math.min(tonumber(f[3]), tonumber(f[4])) then return {} end
return {t[1], f[1], f[2], f[3], f[4], f[6] or 'pwd', f[7] or f[2]}
";

/// KEYS: the presented token's candidate keys, in order.
/// ARGV: prefix, next token hash, idle seconds, now.
/// Returns `{'invalid'}`, `{'conflict'}`, `{'reused', user}` or
/// `{'rotated', family id, user, created at, idle deadline, absolute deadline, amr, auth
/// time}` (the last two as in `FAMILY_PEEK`).
const ROTATE: &str = r"
local found
for _, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 1 then found = k break end
end
if not found then return {'invalid'} end
local t = redis.call('HMGET', found, 'family', 'retired')
if not t[1] then return {'invalid'} end
local p = ARGV[1]
local fkey = p .. 'family:' .. t[1]
local f = redis.call('HMGET', fkey, 'user_id', 'created_at', 'idle_deadline', 'absolute_deadline', 'revoked', 'amr', 'auth_time')
if not f[1] then return {'invalid'} end
local now = tonumber(ARGV[4])
local abs = tonumber(f[4])
if f[5] == '1' or now >= math.min(tonumber(f[3]), abs) then return {'invalid'} end
if t[2] == '1' then
  redis.call('HSET', fkey, 'revoked', '1')
  redis.call('ZADD', p .. 'families:by_expiry', 0, t[1])
  return {'reused', f[1]}
end
local nkey = p .. 'refresh:' .. ARGV[2]
if redis.call('EXISTS', nkey) == 1 then return {'conflict'} end
redis.call('HSET', found, 'retired', '1')
redis.call('HSET', nkey, 'family', t[1], 'retired', '0')
redis.call('PEXPIREAT', nkey, ms(abs))
redis.call('SADD', fkey .. ':tokens', ARGV[2])
local idle = int(math.min(now + tonumber(ARGV[3]), abs))
redis.call('HSET', fkey, 'idle_deadline', idle)
redis.call('ZADD', p .. 'families:by_expiry', idle, t[1])
return {'rotated', t[1], f[1], f[2], idle, f[4], f[6] or 'pwd', f[7] or f[2]}
";

/// KEYS: the presented token's candidate keys. ARGV: prefix.
/// Revokes the family of the first token found. Returns 1, or 0 when unknown.
const REVOKE_BY_TOKEN: &str = r"
for _, k in ipairs(KEYS) do
  local fid = redis.call('HGET', k, 'family')
  if fid then
    local fkey = ARGV[1] .. 'family:' .. fid
    if redis.call('EXISTS', fkey) == 0 then return 0 end
    redis.call('HSET', fkey, 'revoked', '1')
    redis.call('ZADD', ARGV[1] .. 'families:by_expiry', 0, fid)
    return 1
  end
end
return 0
";

/// KEYS: family, families by expiry. ARGV: family id.
/// Returns 1, or 0 when unknown.
const REVOKE_FAMILY: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'revoked', '1')
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
";

/// KEYS: user families, families by expiry. ARGV: prefix.
/// Revokes every live family of the user, drops index entries Redis has expired.
/// Returns how many families this call revoked.
const REVOKE_USER_FAMILIES: &str = r"
local n = 0
for _, fid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local fkey = ARGV[1] .. 'family:' .. fid
  local revoked = redis.call('HGET', fkey, 'revoked')
  if not revoked then
    redis.call('SREM', KEYS[1], fid)
  elseif revoked ~= '1' then
    redis.call('HSET', fkey, 'revoked', '1')
    redis.call('ZADD', KEYS[2], 0, fid)
    n = n + 1
  end
end
return n
";

/// KEYS: families by expiry. ARGV: now, batch size, prefix.
/// Removes up to a batch of revoked or ended families with their tokens.
/// Returns `{looked at, removed}`.
const FAMILY_SWEEP: &str = r"
local now = tonumber(ARGV[1])
local p = ARGV[3]
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local n = 0
for _, fid in ipairs(due) do
  local fkey = p .. 'family:' .. fid
  local f = redis.call('HMGET', fkey, 'user_id', 'idle_deadline', 'absolute_deadline', 'revoked')
  local ends = math.min(tonumber(f[2]) or 0, tonumber(f[3]) or 0)
  if f[1] and f[4] ~= '1' and ends > now then
    redis.call('ZADD', KEYS[1], int(ends), fid)
  else
    local tkey = fkey .. ':tokens'
    for _, h in ipairs(redis.call('SMEMBERS', tkey)) do
      redis.call('DEL', p .. 'refresh:' .. h)
    end
    redis.call('DEL', tkey)
    if f[1] then
      redis.call('DEL', fkey)
      redis.call('SREM', p .. 'user:' .. f[1] .. ':families', fid)
      n = n + 1
    end
    redis.call('ZREM', KEYS[1], fid)
  end
end
return {#due, n}
";

/// KEYS: the `jti` key. ARGV: until. Keeps the later of the stored and the new time.
const DENY_JTI: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]))
if cur and cur >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ms(ARGV[1]))
return 1
";

/// KEYS: the mark. ARGV: before. Keeps the later of the stored and the new mark.
const ISSUED_BEFORE: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]))
if cur and cur >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
";

/// KEYS: the counter. ARGV: now, window seconds.
/// Starts a window when there is none or it ended by `now`, then counts one.
/// Returns `{count, window end}`. The expiry is set last: set before the count, an end
/// already past by Redis's clock would delete the key and leave the count without one.
const THROTTLE_HIT: &str = r"
local now = tonumber(ARGV[1])
local e = tonumber(redis.call('HGET', KEYS[1], 'end'))
if not e or now >= e then
  e = int(now + tonumber(ARGV[2]))
  redis.call('HSET', KEYS[1], 'count', 1, 'end', e)
  redis.call('PEXPIREAT', KEYS[1], ms(e))
  return {1, e}
end
return {redis.call('HINCRBY', KEYS[1], 'count', 1), int(e)}
";

/// The rules of `countersign::attempts`, shared by the two attempt scripts: a record is a
/// hash (`f` failures, `p` in flight, `pu` in flight until, `we` window end, `s` strikes,
/// `exp` may go at). ARGV[1..4]: now, base window, longest window, lease.
const ATTEMPT_PRELUDE: &str = r"
local now = tonumber(ARGV[1])
local base, longest, lease = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local function load(k)
  local v = redis.call('HMGET', k, 'f', 'p', 'pu', 'we', 's', 'exp')
  if not v[6] then return nil end
  local r = {f = tonumber(v[1]), p = tonumber(v[2]), pu = tonumber(v[3]),
             we = tonumber(v[4]), s = tonumber(v[5]), exp = tonumber(v[6])}
  if now >= r.exp then return nil end
  return r
end
local function in_flight(r)
  if now < r.pu then return r.p end
  return 0
end
local function open(prev, max)
  local strikes = 0
  if prev and prev.f >= max then strikes = math.min(prev.s + 1, 30) end
  local cap = math.max(longest, base, 1)
  local len = math.max(base, 1)
  for _ = 1, strikes do
    if len >= cap then break end
    len = len * 2
  end
  len = math.min(len, cap)
  local we = now + len
  return {f = 0, p = 0, pu = now, we = we, s = strikes, exp = we + len}
end
local function save(k, r)
  redis.call('HSET', k, 'f', int(r.f), 'p', int(r.p), 'pu', int(r.pu), 'we', int(r.we),
    's', int(r.s), 'exp', int(r.exp))
  redis.call('PEXPIREAT', k, ms(r.exp))
end
";

/// KEYS: the attempt records. ARGV: as the prelude, then each key's limit.
/// Returns `{0, "0"}` admitted (and counted in flight on every key), `{1, "0"}` full, or
/// `{2, until}` refused.
const ATTEMPT_RESERVE: &str = r"
local recs, refused, full, until_ = {}, false, false, 0
for i = 1, #KEYS do
  local r = load(KEYS[i])
  recs[i] = r
  local max = tonumber(ARGV[4 + i])
  if r and now < r.we then
    if r.f >= max then
      refused = true
      until_ = math.max(until_, r.we)
    elseif r.f + in_flight(r) >= max then
      full = true
    end
  end
end
if refused then return {2, int(until_)} end
if full then return {1, '0'} end
for i = 1, #KEYS do
  local r = recs[i]
  if not (r and now < r.we) then r = open(r, tonumber(ARGV[4 + i])) end
  r.p = in_flight(r) + 1
  r.pu = now + math.max(lease, 1)
  r.exp = math.max(r.exp, r.pu)
  save(KEYS[i], r)
end
return {0, '0'}
";

/// KEYS: the attempt records. ARGV: as the prelude, then for each key its limit and how
/// the attempt ended (`f` failed, `r` released, `c` cleared).
const ATTEMPT_SETTLE: &str = r"
for i = 1, #KEYS do
  local max, how = tonumber(ARGV[3 + 2 * i]), ARGV[4 + 2 * i]
  local r = load(KEYS[i])
  local live = r and now < r.we
  if how == 'c' then
    redis.call('DEL', KEYS[i])
  elseif how == 'r' then
    if live then
      r.p = math.max(in_flight(r) - 1, 0)
      save(KEYS[i], r)
    end
  else
    if live then
      r.p = math.max(in_flight(r) - 1, 0)
    else
      r = open(r, max)
    end
    r.f = r.f + 1
    save(KEYS[i], r)
  end
end
return 1
";

/// The compiled scripts (each knows its SHA-1; `EVALSHA` first, `SCRIPT LOAD` when the
/// server has forgotten it, e.g. after a restart).
pub(crate) struct Scripts {
    pub(crate) session_create: Script,
    pub(crate) session_touch: Script,
    pub(crate) session_delete: Script,
    pub(crate) session_list: Script,
    pub(crate) session_delete_user: Script,
    pub(crate) session_sweep: Script,
    pub(crate) family_create: Script,
    pub(crate) family_peek: Script,
    pub(crate) rotate: Script,
    pub(crate) revoke_by_token: Script,
    pub(crate) revoke_family: Script,
    pub(crate) revoke_user_families: Script,
    pub(crate) family_sweep: Script,
    pub(crate) deny_jti: Script,
    pub(crate) issued_before: Script,
    pub(crate) throttle_hit: Script,
    pub(crate) attempt_reserve: Script,
    pub(crate) attempt_settle: Script,
}

impl Scripts {
    /// The scripts, with expiries `grace` past the deadlines.
    pub(crate) fn new(grace: std::time::Duration) -> Self {
        let grace_ms = u64::try_from(grace.as_millis())
            .unwrap_or(u64::MAX)
            .min(1 << 40);
        let prelude = PRELUDE.replace("GRACE_MS", &grace_ms.to_string());
        let script = |body: &str| Script::new(&format!("{prelude}{body}"));
        Self {
            session_create: script(SESSION_CREATE),
            session_touch: script(SESSION_TOUCH),
            session_delete: script(SESSION_DELETE),
            session_list: script(SESSION_LIST),
            session_delete_user: script(SESSION_DELETE_USER),
            session_sweep: script(SESSION_SWEEP),
            family_create: script(FAMILY_CREATE),
            family_peek: script(FAMILY_PEEK),
            rotate: script(ROTATE),
            revoke_by_token: script(REVOKE_BY_TOKEN),
            revoke_family: script(REVOKE_FAMILY),
            revoke_user_families: script(REVOKE_USER_FAMILIES),
            family_sweep: script(FAMILY_SWEEP),
            deny_jti: script(DENY_JTI),
            issued_before: script(ISSUED_BEFORE),
            throttle_hit: script(THROTTLE_HIT),
            attempt_reserve: script(&format!("{ATTEMPT_PRELUDE}{ATTEMPT_RESERVE}")),
            attempt_settle: script(&format!("{ATTEMPT_PRELUDE}{ATTEMPT_SETTLE}")),
        }
    }
}
