-- KEYS: log, user's audit index, shard's user set.
-- ARGV: tag, shard, type, at ns, session id, user, agent (opt), reason (opt), actor.
-- Returns the event id.
expect(KEYS[1], 'stream')
expect(KEYS[2], 'zset')
expect(KEYS[3], 'set')

-- Writes.
return log_event(ARGV[1], ARGV[2], {ty = ARGV[3], at = ARGV[4], sid = ARGV[5],
  user = ARGV[6], agent = opt(ARGV[7]), reason = opt(ARGV[8]), actor = ARGV[9]})
