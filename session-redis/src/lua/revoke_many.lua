-- KEYS: user index, user meta, shard's active set, ended set, log, user's audit index,
-- shard's user set.
-- ARGV: tag, shard, user, at µs, at ns, reason, actor, scope ('all', 'user', 'agent',
-- 'idp'), agent id, issuer, subject (opt), sid (opt), session to keep ('' for none),
-- '1' to move the epoch, '1' to disable the user.
-- Returns id, event id, user, agent, agent name, expiry ns per session revoked.
local tag, shard, user = ARGV[1], ARGV[2], ARGV[3]
local now = tonumber(ARGV[4])
local scope, subject, sid = ARGV[8], opt(ARGV[11]), opt(ARGV[12])

expect_shard(tag)
expect_user(tag, user)
local epoch = redis.call('HGET', KEYS[2], 'ep')
if epoch and not tonumber(epoch) then
  fail('ERR', 'corrupt epoch of ' .. user)
end

local function covers(r)
  if scope == 'all' then
    return true
  elseif scope == 'user' then
    return not r.agent
  elseif scope == 'agent' then
    return r.agent == ARGV[9]
  elseif scope == 'idp' then
    return r.iss == ARGV[10] and (not subject or r.isub == subject)
      and (not sid or r.isid == sid)
  end
  fail('ERR', 'unknown scope ' .. scope)
end

local targets = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if id ~= ARGV[13] then
    local r = read(tag, id)
    if r and not r.revoked and r.ex > now and covers(r) then
      prepare_revoke(tag, r)
      targets[#targets + 1] = r
    end
  end
end

-- Writes.
if ARGV[14] == '1' then
  redis.call('HINCRBY', KEYS[2], 'ep', 1)
end
if ARGV[15] == '1' then
  redis.call('HSET', KEYS[2], 'dis', '1')
end
return revoke_all(tag, shard, targets,
  {ns = ARGV[5], us = now, reason = ARGV[6], actor = ARGV[7]})
