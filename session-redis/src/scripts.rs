//! The Lua scripts behind every operation that reads and then writes, or writes several
//! keys: each runs atomically in Redis, in one `EVALSHA`.
//!
//! The record hash (`{prefix}s:{id}`) holds the record's JSON in `rec`, plus the fields the
//! scripts compare without decoding it: `user`, `agent` (agent sessions only), `rev` (`1`
//! once revoked) and `ls`/`lns` (`last_active_at` as Unix seconds and nanoseconds). Scripts
//! that change the record decode `rec` with `cjson`, set the changed fields and encode it
//! again (it holds only strings and nulls, so the round trip loses nothing).
//!
//! The per-user index (`{prefix}u:{user}`) is a sorted set of session ids scored by
//! `expires_at` in Unix microseconds (rounded up); revoked sessions leave it. The scripts
//! reach record keys from ids (`ARGV` carries the record-key prefix), which a single Redis
//! (or a primary with replicas) allows; Redis Cluster does not.

use std::sync::LazyLock;

use redis::Script;

/// Deletes the index's sessions whose `expires_at` is at or before `now` (µs, the caller's
/// clock): their index entries and their records. Returns how many. Used by the purge.
const PRUNE: &str = r"
local function prune(index, record_prefix, now)
  local expired = redis.call('ZRANGEBYSCORE', index, '-inf', now)
  for _, id in ipairs(expired) do
    redis.call('DEL', record_prefix .. id)
  end
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
  end
  return #expired
end
";

/// Drops the index entries whose records Redis has already expired (by Redis's clock, with
/// 1 ms to spare: a record's TTL is `expires_at` rounded up to the millisecond). Keeps the
/// index from growing while its user keeps logging in.
const DROP_STALE: &str = r"
local function drop_stale(index)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) - 1000
  redis.call('ZREMRANGEBYSCORE', index, '-inf', string.format('%.0f', now))
end
";

/// Sets a record's revocation, in the JSON and in `rev`, and takes it out of its user's
/// index. Returns the new JSON. Shared by `revoke` and `revoke_many`.
const MARK_REVOKED: &str = r"
local function mark_revoked(key, json, index, id, at, reason)
  local rec = cjson.decode(json)
  rec['revoked_at'] = at
  rec['revocation_reason'] = reason
  local out = cjson.encode(rec)
  redis.call('HSET', key, 'rec', out, 'rev', '1')
  redis.call('ZREM', index, id)
  return out
end
";

/// KEYS: record, user index, user epoch.
/// ARGV: expected epoch, record JSON, user id, agent id (`''` for a user session),
/// last-active seconds, last-active nanoseconds, `expires_at` µs (index score),
/// `expires_at` ms (record deadline), session id.
/// Returns 1 when created (or already there: a retry after a lost reply), 0 when the epoch
/// moved.
const CREATE: &str = r"
local epoch = redis.call('GET', KEYS[3]) or '0'
if epoch ~= ARGV[1] then
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 1
end
redis.call('HSET', KEYS[1], 'rec', ARGV[2], 'user', ARGV[3], 'ls', ARGV[5], 'lns', ARGV[6])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'agent', ARGV[4])
end
redis.call('PEXPIREAT', KEYS[1], ARGV[8])
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[9])
-- The index lives as long as its longest-lived session (PEXPIRETIME: -1 when persistent).
local deadline = redis.call('PEXPIRETIME', KEYS[2])
if deadline < tonumber(ARGV[8]) then
  redis.call('PEXPIREAT', KEYS[2], ARGV[8])
end
return 1
";

/// KEYS: record. ARGV: seconds, nanoseconds, RFC 3339 text of the new `last_active_at`.
/// Returns 1 when it moved forward, 0 otherwise (unknown session, or not later).
const TOUCH: &str = r"
local f = redis.call('HMGET', KEYS[1], 'rec', 'ls', 'lns')
if not f[1] then
  return 0
end
local s, ns = tonumber(f[2]), tonumber(f[3])
local at_s, at_ns = tonumber(ARGV[1]), tonumber(ARGV[2])
if s and ns and (at_s < s or (at_s == s and at_ns <= ns)) then
  return 0
end
local rec = cjson.decode(f[1])
rec['last_active_at'] = ARGV[3]
redis.call('HSET', KEYS[1], 'rec', cjson.encode(rec), 'ls', ARGV[1], 'lns', ARGV[2])
return 1
";

/// KEYS: record. ARGV: index key prefix, session id, RFC 3339 `revoked_at`, reason.
/// Returns the revoked record's JSON, or nil when unknown or already revoked.
const REVOKE: &str = r"
local f = redis.call('HMGET', KEYS[1], 'rec', 'rev', 'user')
if not f[1] or f[2] then
  return false
end
return mark_revoked(KEYS[1], f[1], ARGV[1] .. (f[3] or ''), ARGV[2], ARGV[3], ARGV[4])
";

/// KEYS: user index, user epoch.
/// ARGV: record key prefix, now µs (sessions that expire at or before it are left alone),
/// `1` to move the epoch, scope (`all`, `user`, `agent`),
/// agent id (scope `agent`), session id to keep (or `''`), RFC 3339 `revoked_at`, reason.
/// Returns the revoked records' JSON.
const REVOKE_MANY: &str = r"
if ARGV[3] == '1' then
  redis.call('INCR', KEYS[2])
end
drop_stale(KEYS[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf')
local out = {}
for _, id in ipairs(ids) do
  if id ~= ARGV[6] then
    local key = ARGV[1] .. id
    local f = redis.call('HMGET', key, 'rec', 'rev', 'agent')
    if not f[1] then
      redis.call('ZREM', KEYS[1], id)
    elseif not f[2] then
      local covered = ARGV[4] == 'all'
        or (ARGV[4] == 'user' and not f[3])
        or (ARGV[4] == 'agent' and f[3] == ARGV[5])
      if covered then
        out[#out + 1] = mark_revoked(key, f[1], KEYS[1], id, ARGV[7], ARGV[8])
      end
    end
  end
end
return out
";

/// KEYS: user index. ARGV: record key prefix, now µs.
/// Returns the JSON of the user's sessions that are neither revoked nor expired at `now`.
/// (Expired ones stay in the index for the purge, unless Redis has expired them already.)
const LIST_ACTIVE: &str = r"
drop_stale(KEYS[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf')
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', ARGV[1] .. id, 'rec', 'rev')
  if not f[1] then
    redis.call('ZREM', KEYS[1], id)
  elseif not f[2] then
    out[#out + 1] = f[1]
  end
end
return out
";

/// KEYS: user indexes. ARGV: record key prefix, now µs.
/// Returns how many index entries (and their records) were deleted.
const PURGE: &str = r"
local n = 0
for _, index in ipairs(KEYS) do
  n = n + prune(index, ARGV[1], ARGV[2])
end
return n
";

/// The compiled scripts (their SHA1s are computed once).
pub(crate) struct Scripts {
    pub(crate) create: Script,
    pub(crate) touch: Script,
    pub(crate) revoke: Script,
    pub(crate) revoke_many: Script,
    pub(crate) list_active: Script,
    pub(crate) purge: Script,
}

impl Scripts {
    /// Every script, to load them all when connecting.
    pub(crate) fn all(&self) -> [&Script; 6] {
        [
            &self.create,
            &self.touch,
            &self.revoke,
            &self.revoke_many,
            &self.list_active,
            &self.purge,
        ]
    }
}

/// The scripts, built on first use.
pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    create: Script::new(CREATE),
    touch: Script::new(TOUCH),
    revoke: Script::new(&format!("{MARK_REVOKED}{REVOKE}")),
    revoke_many: Script::new(&format!("{DROP_STALE}{MARK_REVOKED}{REVOKE_MANY}")),
    list_active: Script::new(&format!("{DROP_STALE}{LIST_ACTIVE}")),
    purge: Script::new(&format!("{PRUNE}{PURGE}")),
});
