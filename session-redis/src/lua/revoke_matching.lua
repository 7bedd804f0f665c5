-- KEYS: shard's active set, ended set, log, user set.
-- ARGV: tag, shard, at µs, at ns, reason, actor, '1' for a dry run, created before µs
-- (opt), IP key low (opt), IP key high (opt), user-agent substring (opt), kind ('',
-- 'user', 'agent'), issuer (opt), sid (opt), cursor (opt: the last member of the active
-- set a previous call went through), most sessions to look at, most sessions to revoke.
-- Looks at the shard's sessions unexpired at AT in order of expiry, after the cursor,
-- until either budget is spent.
-- Returns {matched, cursor to go on from ('' when done), [id, event id, user, agent, agent name, expiry ns] per session
-- revoked (none on a dry run)}.
local tag, shard = ARGV[1], ARGV[2]
local now = tonumber(ARGV[3])
local before = opt(ARGV[8])
if before then
  before = tonumber(before)
end
local lo, hi, needle = opt(ARGV[9]), opt(ARGV[10]), opt(ARGV[11])
local kind, issuer, sid = ARGV[12], opt(ARGV[13]), opt(ARGV[14])

expect_shard(tag)

-- A <= B for two IP keys (32 hex digits), by value, whatever the server's locale.
local function key_le(a, b)
  for i = 1, 32, 8 do
    local x, y = tonumber(string.sub(a, i, i + 7), 16), tonumber(string.sub(b, i, i + 7), 16)
    if x ~= y then
      return x < y
    end
  end
  return true
end

local function matches(f)
  if before and not (tonumber(f[5]) < before) then
    return false
  end
  if lo and not (f[7] and #f[7] == 32 and key_le(lo, f[7]) and key_le(f[7], hi)) then
    return false
  end
  if needle and not (f[6] and string.find(f[6], needle, 1, true)) then
    return false
  end
  if kind == 'user' and f[2] or kind == 'agent' and not f[2] then
    return false
  end
  if issuer and f[8] ~= issuer then
    return false
  end
  if sid and f[9] ~= sid then
    return false
  end
  return true
end

local cursor = opt(ARGV[15])
local min = active_after(ARGV[3])
if cursor then
  min = '(' .. cursor
end
local scan, most = tonumber(ARGV[16]), tonumber(ARGV[17])
local members = redis.call('ZRANGEBYLEX', KEYS[1], min, '+', 'LIMIT', 0, scan)
local targets, matched, last = {}, 0, ''
for _, member in ipairs(members) do
  if #targets >= most then
    break
  end
  last = member
  local id = string.sub(member, 18)
  local f = redis.call('HMGET', tag .. ':s:' .. id,
    'u', 'ag', 'rv', 'ex', 'cr', 'ua', 'ipk', 'iss', 'isid')
  if f[1] and not f[3] then
    local ex = tonumber(f[4])
    if not ex or not tonumber(f[5]) then
      fail('ERR', 'corrupt record ' .. id)
    end
    if ex > now and matches(f) then
      matched = matched + 1
      if ARGV[7] ~= '1' then
        local r = {id = id, user = f[1], agent = f[2], ex = ex, ext = f[4]}
        prepare_revoke(tag, r)
        targets[#targets + 1] = r
      end
    end
  end
end

-- Writes.
local out = revoke_all(tag, shard, targets,
  {ns = ARGV[4], us = now, reason = ARGV[5], actor = ARGV[6]})
if #members < scan and #targets < most then
  last = ''
end
table.insert(out, 1, last)
table.insert(out, 1, matched)
return out
