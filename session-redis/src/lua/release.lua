-- KEYS: lease. ARGV: holder. Deletes the lease if HOLDER holds it.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 1
