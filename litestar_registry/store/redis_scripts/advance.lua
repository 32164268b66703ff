-- The sweep's claim: store what silence did to a service's status, unless its contact state moved since it was read.
-- KEYS: 1 service hash, 2 history list, 3 due index.
-- ARGV: 1 slug, 2 the contact revision read, 3 status, 4 failure count, 5 next check (epoch microseconds; '' = none).
-- Writes only the status fields, so a data write since the read is kept. Returns the stored record's fields (the
-- store's _READ_FIELDS, in order), or nil when the service is gone or its contact revision moved on (contact, a data
-- write that set the status or restarted the clock, another sweeper).
local f = redis.call('HMGET', KEYS[1], 'rev', 'crev')
if not f[1] then
  return false
end
local crev = tonumber(f[2] or '0')
if crev ~= tonumber(ARGV[2]) then
  return false
end
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'fail', ARGV[4], 'next', ARGV[5], 'crev', string.format('%d', crev + 1))
if ARGV[5] == '' then
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
end
if ARGV[3] ~= 'active' and ARGV[3] ~= 'degraded' then
  -- No longer live: kept until the slug registers again, as on every backend (see the store's docstring).
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
return redis.call('HMGET', KEYS[1], 'record', 'status', 'fail', 'seen', 'deadline', 'expires', 'next', 'health', 'rev',
  'crev')
