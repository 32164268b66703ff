-- Remove a service, its history and its index entries; with an expected revision, only if it still matches.
-- KEYS: 1 service hash, 2 history list, 3 slug index, 4 due index.
-- ARGV: 1 slug, 2 expected revision ('' = any).
-- Returns 1 when a service was removed, else 0 (stale index entries of a vanished service are dropped too).
local rev = redis.call('HGET', KEYS[1], 'rev')
if rev and ARGV[2] ~= '' and tonumber(rev) ~= tonumber(ARGV[2]) then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if rev then
  return 1
end
return 0
