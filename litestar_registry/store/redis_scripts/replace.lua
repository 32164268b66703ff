-- Overwrite a service if its revision still is the expected one; optionally append a history entry.
-- KEYS: 1 service hash, 2 history list, 3 slug index, 4 due index.
-- ARGV: 1 slug, 2 due score ('' = none), 3 expiry ms ('' = none), 4 expected revision, 5 history entry ('' = none),
--       6.. hash field/value pairs.
-- Returns the new revision, -1 when there is no such service (its stale index entries are dropped), -2 when the
-- revision moved on.
local rev = redis.call('HGET', KEYS[1], 'rev')
if not rev then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
  return -1
end
if tonumber(rev) ~= tonumber(ARGV[4]) then
  return -2
end
local new = tonumber(rev) + 1
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'rev', string.format('%d', new), unpack(ARGV, 6))
if ARGV[5] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[5])
end
index(ARGV[1], ARGV[2], ARGV[3])
return new
