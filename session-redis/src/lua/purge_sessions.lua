-- KEYS: shard's ended set, active set. ARGV: tag, cutoff µs, batch.
-- Deletes up to BATCH records whose life ended at or before the cutoff (revoked ones first,
-- then expired ones), with their index entries. Returns how many.
local tag, batch = ARGV[1], tonumber(ARGV[3])
expect(KEYS[1], 'zset')
expect(KEYS[2], 'zset')
local gone = {}
for _, set in ipairs({KEYS[1], KEYS[2]}) do
  if #gone < batch then
    local ids = redis.call('ZRANGEBYSCORE', set, '-inf', ARGV[2], 'LIMIT', 0, batch - #gone)
    for _, id in ipairs(ids) do
      local user = redis.call('HGET', tag .. ':s:' .. id, 'u')
      if user then
        expect(tag .. ':u:' .. user, 'zset')
      end
      gone[#gone + 1] = {set = set, id = id, user = user}
    end
  end
end

-- Writes.
for _, g in ipairs(gone) do
  if g.user then
    redis.call('ZREM', tag .. ':u:' .. g.user, g.id)
  end
  redis.call('DEL', tag .. ':s:' .. g.id)
  redis.call('ZREM', g.set, g.id)
end
return #gone
