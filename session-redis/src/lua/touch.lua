-- KEYS: record. ARGV: seconds, nanoseconds of the new last activity.
-- Returns 1 when it moved forward, 0 otherwise (unknown session, or not later).
local f = redis.call('HMGET', KEYS[1], 'u', 'ls', 'lns')
if not f[1] then
  return 0
end
local s, ns = tonumber(f[2]), tonumber(f[3])
local at_s, at_ns = tonumber(ARGV[1]), tonumber(ARGV[2])
if s and ns and (at_s < s or (at_s == s and at_ns <= ns)) then
  return 0
end
redis.call('HSET', KEYS[1], 'ls', ARGV[1], 'lns', ARGV[2])
return 1
