-- KEYS: log. ARGV: barrier (Unix ms), first id to read, count.
-- Makes every event the stream takes from now on get an id at or after BARRIER-0, then
-- returns up to COUNT entries from the first id up to, not including, BARRIER-0.
local barrier = ARGV[1] .. '-0'
local last = '0-0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      last = info[i + 1]
    end
  end
end
local ms, seq = string.match(last, '^(%d+)%-(%d+)$')
if tonumber(ms) < tonumber(ARGV[1]) then
  -- Moves the stream's last id to the barrier: an entry added and deleted at once.
  redis.call('XADD', KEYS[1], barrier, 'barrier', '1')
  redis.call('XDEL', KEYS[1], barrier)
end
return redis.call('XRANGE', KEYS[1], ARGV[2], '(' .. barrier, 'COUNT', ARGV[3])
