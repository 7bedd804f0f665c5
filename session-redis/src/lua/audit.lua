-- KEYS: user's audit index, log.
-- ARGV: before (opt: an event id, none for the newest), limit.
-- Returns {event id, fields} per event, newest first.
local max = '+'
local before = opt(ARGV[1])
if before then
  max = '(' .. before
end
local limit = tonumber(ARGV[2])
local out, offset = {}, 0
while #out < limit do
  local ids = redis.call('ZREVRANGEBYLEX', KEYS[1], max, '-', 'LIMIT', offset, limit - #out)
  if #ids == 0 then
    break
  end
  for _, eid in ipairs(ids) do
    local ms, seq = string.match(eid, '^(%d+)%-%d+%-(%d+)$')
    if ms then
      local id = string.gsub(ms, '^0+(%d)', '%1') .. '-' .. string.gsub(seq, '^0+(%d)', '%1')
      local entry = redis.call('XRANGE', KEYS[2], id, id)
      -- An index entry whose event was trimmed is skipped.
      if entry[1] then
        out[#out + 1] = {eid, entry[1][2]}
      end
    end
  end
  offset = offset + #ids
end
return out
