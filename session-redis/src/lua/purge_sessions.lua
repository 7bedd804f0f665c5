-- KEYS: shard's ended set, active set. ARGV: tag, cutoff µs, the same not below 0, batch.
-- Deletes up to BATCH records whose life ended at or before the cutoff (revoked ones first,
-- then expired ones), with their index entries. Returns how many.
local tag, batch = ARGV[1], tonumber(ARGV[4])
expect(KEYS[1], 'zset')
expect(KEYS[2], 'zset')
local gone = {}
local function take(id, set, member)
  local user = redis.call('HGET', tag .. ':s:' .. id, 'u')
  if user then
    expect(tag .. ':u:' .. user, 'zset')
  end
  gone[#gone + 1] = {set = set, member = member, id = id, user = user}
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, batch)) do
  take(id, KEYS[1], id)
end
if #gone < batch then
  local members = redis.call('ZRANGEBYLEX', KEYS[2], '-', active_after(ARGV[3]),
    'LIMIT', 0, batch - #gone)
  for _, member in ipairs(members) do
    take(string.sub(member, 18), KEYS[2], member)
  end
end

-- Writes.
for _, g in ipairs(gone) do
  if g.user then
    redis.call('ZREM', tag .. ':u:' .. g.user, g.id)
  end
  redis.call('DEL', tag .. ':s:' .. g.id)
  redis.call('ZREM', g.set, g.member)
end
return #gone
