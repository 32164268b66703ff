-- Insert a service and its first history entry, unless the slug is taken.
-- KEYS: 1 service hash, 2 history list, 3 slug index, 4 due index.
-- ARGV: 1 slug, 2 due score ('' = none), 3 expiry ms ('' = none), 4 history entry, 5.. hash field/value pairs.
-- Returns 1 when written, 0 when the slug is taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'rev', '1', 'crev', '1', unpack(ARGV, 5))
redis.call('RPUSH', KEYS[2], ARGV[4])
index(ARGV[1], ARGV[2], ARGV[3])
return 1
