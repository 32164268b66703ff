-- Take a service out of the due index when the sweep found nothing to do, unless its contact state moved meanwhile.
-- KEYS: 1 service hash, 2 due index. ARGV: 1 slug, 2 the contact revision the sweep read.
-- Returns 1 when removed, else 0.
local f = redis.call('HMGET', KEYS[1], 'rev', 'crev')
if f[1] and tonumber(f[2] or '0') == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
return 0
