-- The sweep's claim: store what silence did to a service's status, unless its contact state moved since it was read.
-- KEYS: 1 service hash, 2 history list, 3 slug index (unused), 4 due index.
-- ARGV: 1 key prefix, 2 slug, 3 the contact revision read, 4 status, 5 failure count, 6 next check (epoch
--       microseconds; '' = none), 7 the topic of the event this change appends ('' = none), 8 its time (epoch
--       microseconds), 9 its data (msgpack).
-- Writes only the status fields, so a data write since the read is kept, and appends the event only with a claim.
-- Returns the stored record's fields (the store's _READ_FIELDS, in order), or nil when the service is gone or its
-- contact revision moved on (contact, a data write that set the status or restarted the clock, another sweeper).
local f = redis.call('HMGET', KEYS[1], 'rev', 'crev', 'status')
if not f[1] then
  return false
end
local crev = tonumber(f[2] or '0')
if crev ~= tonumber(ARGV[3]) then
  return false
end
redis.call('HSET', KEYS[1], 'status', ARGV[4], 'fail', ARGV[5], 'next', ARGV[6], 'crev', string.format('%d', crev + 1))
set_status(ARGV[2], f[3], ARGV[4])
if ARGV[6] == '' then
  redis.call('ZREM', KEYS[4], ARGV[2])
else
  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[2])
end
if ARGV[4] ~= 'active' and ARGV[4] ~= 'degraded' then
  -- No longer live: kept until the slug registers again, as on every backend (see the store's docstring).
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
if ARGV[7] ~= '' then
  log_event({'t', ARGV[7], 's', ARGV[2], 'at', ARGV[8], 'd', ARGV[9]})
end
return read(KEYS[1])
