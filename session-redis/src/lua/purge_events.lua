-- KEYS: log, shard's user set.
-- ARGV: tag, cutoff ms, '1' to trim the stream, SSCAN cursor over the users, count.
-- Trims the stream (when asked) and the audit indexes of a batch of users to the events
-- at or after the cutoff. Returns {events trimmed, next cursor ('0' when done)}.
local tag = ARGV[1]
expect(KEYS[1], 'stream')
expect(KEYS[2], 'set')
local trimmed = 0
if ARGV[3] == '1' then
  trimmed = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[2] .. '-0')
end
local scan = redis.call('SSCAN', KEYS[2], ARGV[4], 'COUNT', ARGV[5])
local floor = '(' .. pad(ARGV[2], 15)
for _, user in ipairs(scan[2]) do
  local index = tag .. ':a:' .. user
  if redis.call('TYPE', index)['ok'] == 'zset' then
    redis.call('ZREMRANGEBYLEX', index, '-', floor)
  end
  if redis.call('EXISTS', index) == 0 then
    redis.call('SREM', KEYS[2], user)
  end
end
return {trimmed, scan[1]}
