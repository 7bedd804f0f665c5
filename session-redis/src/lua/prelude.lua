-- Shared by every script that changes sessions. Each such script runs in two phases:
-- first everything that can fail (type checks, reads, decisions), then the writes, which
-- take only values the first phase checked. Redis does not roll a script back, so a
-- script that fails, fails before its first write.

local function fail(code, msg)
  error({err = code .. ' session store: ' .. msg})
end

-- Fails unless KEY is absent or of type WANT.
local function expect(key, want)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= want then
    fail('WRONGTYPE', key .. ' holds a ' .. t .. ', not a ' .. want)
  end
end

-- The keys every change of a shard writes.
local function expect_shard(tag)
  expect(tag .. ':act', 'zset')
  expect(tag .. ':end', 'zset')
  expect(tag .. ':log', 'stream')
  expect(tag .. ':users', 'set')
end

-- The keys a change of USER's sessions writes (checked once per user and script).
local checked_users = {}
local function expect_user(tag, user)
  if checked_users[user] then
    return
  end
  expect(tag .. ':u:' .. user, 'zset')
  expect(tag .. ':a:' .. user, 'zset')
  expect(tag .. ':m:' .. user, 'hash')
  checked_users[user] = true
end

-- An optional argument: '' for none, '=' .. value for a value.
local function opt(arg)
  if arg == '' then
    return false
  end
  return string.sub(arg, 2)
end

local function pad(text, width)
  return string.rep('0', width - #text) .. text
end

-- The member of the shard's active set for the session ID expiring at EX (Unix µs, as
-- text): the expiry, zero-padded, then the id. The set sorts by expiry as text, so a scan
-- can go on after any member, whatever changed meanwhile.
local function active_member(ex, id)
  if string.sub(ex, 1, 1) == '-' then
    ex = '0'
  end
  return pad(ex, 16) .. ':' .. id
end

-- The lexicographic bound just past every member of the active set expiring at or before
-- AT (Unix µs, as text, not negative): ';' sorts right after ':'.
local function active_after(at)
  return '(' .. pad(at, 16) .. ';'
end

-- The event id of stream id 'MS-SEQ' in the shard numbered SHARD (three digits).
local function event_id(stream_id, shard)
  local ms, seq = string.match(stream_id, '^(%d+)%-(%d+)$')
  return pad(ms, 15) .. '-' .. shard .. '-' .. pad(seq, 10)
end

-- What the scripts decide on, of the record of session ID; nil when there is none.
local function read(tag, id)
  local f = redis.call('HMGET', tag .. ':s:' .. id,
    'u', 'ag', 'rv', 'ex', 'cr', 'ep', 'iss', 'isub', 'isid', 'an', 'exn')
  if not f[1] then
    return nil
  end
  local ex, cr = tonumber(f[4]), tonumber(f[5])
  if not ex or not cr then
    fail('ERR', 'corrupt record ' .. id)
  end
  return {id = id, user = f[1], agent = f[2], revoked = f[3], ex = ex, ext = f[4], cr = cr,
    ep = f[6] or '0', iss = f[7], isub = f[8], isid = f[9], name = f[10], exn = f[11]}
end

-- Reads what a revocation returns (the agent's name, the exact expiry) and checks the
-- keys it writes.
local function prepare_revoke(tag, r)
  if not r.exn then
    local f = redis.call('HMGET', tag .. ':s:' .. r.id, 'an', 'exn')
    if not f[2] then
      fail('ERR', 'corrupt record ' .. r.id)
    end
    r.name, r.exn = f[1], f[2]
  end
  expect_user(tag, r.user)
end

local logged_users = {}

-- Appends an event to the shard's log and its user's audit index; returns its id.
-- EV: ty, at (Unix ns), sid, user, agent (or false), reason (or false), actor.
local function log_event(tag, shard, ev)
  local fields = {'ty', ev.ty, 'at', ev.at, 'sid', ev.sid, 'u', ev.user, 'ac', ev.actor}
  if ev.agent then
    fields[#fields + 1] = 'ag'
    fields[#fields + 1] = ev.agent
  end
  if ev.reason then
    fields[#fields + 1] = 'r'
    fields[#fields + 1] = ev.reason
  end
  local id = event_id(redis.call('XADD', tag .. ':log', '*', unpack(fields)), shard)
  redis.call('ZADD', tag .. ':a:' .. ev.user, 0, id)
  if not logged_users[ev.user] then
    redis.call('SADD', tag .. ':users', ev.user)
    logged_users[ev.user] = true
  end
  return id
end

-- Revokes the record R (read, then prepared, in the first phase) and logs its event.
-- CHANGE: ns (Unix ns), us (Unix µs), reason, actor. Returns the event id.
local function revoke(tag, shard, r, change)
  redis.call('HSET', tag .. ':s:' .. r.id, 'rv', change.ns, 'rr', change.reason)
  redis.call('ZREM', tag .. ':act', active_member(r.ext, r.id))
  redis.call('ZREM', tag .. ':u:' .. r.user, r.id)
  redis.call('ZADD', tag .. ':end', math.min(change.us, r.ex), r.id)
  return log_event(tag, shard, {ty = 'session.revoked', at = change.ns, sid = r.id,
    user = r.user, agent = r.agent, reason = change.reason, actor = change.actor})
end

-- Revokes every prepared record of TARGETS; returns for each: id, event id, user, agent,
-- agent name, expiry (Unix ns).
local function revoke_all(tag, shard, targets, change)
  local out = {}
  for _, r in ipairs(targets) do
    local eid = revoke(tag, shard, r, change)
    out[#out + 1] = r.id
    out[#out + 1] = eid
    out[#out + 1] = r.user
    out[#out + 1] = r.agent
    out[#out + 1] = r.name
    out[#out + 1] = r.exn
  end
  return out
end
