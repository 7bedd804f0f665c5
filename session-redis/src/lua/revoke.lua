-- KEYS: record, shard's active set, ended set, log, user set.
-- ARGV: tag, shard, session id, at ns, at µs, reason, actor.
-- Returns {id, event id, user, agent, agent name, expiry ns}, or nil when unknown or already revoked.
local tag, shard = ARGV[1], ARGV[2]
expect_shard(tag)
local r = read(tag, ARGV[3])
if not r or r.revoked then
  return false
end
prepare_revoke(tag, r)

-- Writes.
return revoke_all(tag, shard, {r},
  {ns = ARGV[4], us = tonumber(ARGV[5]), reason = ARGV[6], actor = ARGV[7]})
