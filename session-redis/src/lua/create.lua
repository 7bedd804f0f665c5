-- KEYS: record, user index, user meta, shard's active set, ended set, log, user's audit
-- index, shard's user set.
-- ARGV: tag, shard, expected epoch (opt), grantor id ('' for none), cap (opt), session id,
-- user, agent (opt), created µs, expires µs, last-active seconds, last-active nanoseconds,
-- record JSON, user agent (opt), IP key (opt), issuer (opt), subject (opt), sid (opt),
-- created ns, actor, expires ns, agent name (opt).
-- Returns {'created', event id, [id, event id, user, agent, agent name, expiry ns] per evicted session}, or {'disabled'},
-- {'epoch'}, {'grantor'}.
local tag, shard, id, user = ARGV[1], ARGV[2], ARGV[6], ARGV[7]
local agent = opt(ARGV[8])
local cr, ex = tonumber(ARGV[9]), tonumber(ARGV[10])

expect(KEYS[1], 'hash')
expect_shard(tag)
expect_user(tag, user)

local meta = redis.call('HMGET', KEYS[3], 'ep', 'dis')
if meta[2] then
  return {'disabled'}
end
local epoch = meta[1] or '0'
local expected = opt(ARGV[3])
if expected and expected ~= epoch then
  return {'epoch'}
end
local existing = redis.call('HMGET', KEYS[1], 'u', 'ce')
if existing[1] then
  -- A retry of a create that landed (its reply was lost).
  if existing[1] == user and existing[2] then
    return {'created', existing[2]}
  end
  fail('ERR', 'session id ' .. id .. ' is taken')
end
if ARGV[4] ~= '' then
  local g = read(tag, ARGV[4])
  if not g or g.user ~= user or g.revoked or g.ex <= cr or g.ep ~= epoch then
    return {'grantor'}
  end
end
local evict = {}
local cap = opt(ARGV[5])
if cap and not agent then
  local keep = math.max(tonumber(cap) - 1, 0)
  local live = {}
  for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    local r = read(tag, sid)
    if r and not r.agent and not r.revoked and r.ex > cr then
      live[#live + 1] = r
    end
  end
  for i = 1, #live - keep do
    prepare_revoke(tag, live[i])
    evict[i] = live[i]
  end
end

-- Writes.
local out = revoke_all(tag, shard, evict,
  {ns = ARGV[19], us = cr, reason = 'session_limit', actor = 'system'})
local fields = {'rec', ARGV[13], 'u', user, 'cr', ARGV[9], 'ex', ARGV[10], 'exn', ARGV[21],
  'ep', epoch, 'ls', ARGV[11], 'lns', ARGV[12]}
local optional = {ag = agent, an = opt(ARGV[22]), ua = opt(ARGV[14]), ipk = opt(ARGV[15]),
  iss = opt(ARGV[16]), isub = opt(ARGV[17]), isid = opt(ARGV[18])}
for _, name in ipairs({'ag', 'an', 'ua', 'ipk', 'iss', 'isub', 'isid'}) do
  if optional[name] then
    fields[#fields + 1] = name
    fields[#fields + 1] = optional[name]
  end
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[2], cr, id)
redis.call('ZADD', KEYS[4], 0, active_member(ARGV[10], id))
local eid = log_event(tag, shard, {ty = 'session.created', at = ARGV[19], sid = id,
  user = user, agent = agent, reason = false, actor = ARGV[20]})
redis.call('HSET', KEYS[1], 'ce', eid)
table.insert(out, 1, eid)
table.insert(out, 1, 'created')
return out
