-- Take a service out of the due index when the sweep found nothing to do, unless it changed meanwhile.
-- KEYS: 1 service hash, 2 due index. ARGV: 1 slug, 2 the revision the sweep read.
-- Returns 1 when removed, else 0.
local rev = redis.call('HGET', KEYS[1], 'rev')
if rev and tonumber(rev) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
return 0
