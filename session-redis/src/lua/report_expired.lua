-- KEYS: record, log, shard's user set.
-- ARGV: tag, shard, session id, at ns.
-- Returns {event id, user, agent (or nil)}, or nil when unknown or reported already.
local tag, shard = ARGV[1], ARGV[2]
local f = redis.call('HMGET', KEYS[1], 'u', 'ag', 'xr')
if not f[1] or f[3] then
  return false
end
expect(KEYS[2], 'stream')
expect(KEYS[3], 'set')
expect(tag .. ':a:' .. f[1], 'zset')

-- Writes.
redis.call('HSET', KEYS[1], 'xr', '1')
local eid = log_event(tag, shard, {ty = 'session.expired', at = ARGV[4], sid = ARGV[3],
  user = f[1], agent = f[2], reason = false, actor = 'system'})
return {eid, f[1], f[2]}
