-- Remove a service, its history and its index entries; with an expected revision, only if it still matches.
-- KEYS: 1 service hash, 2 history list, 3 slug index, 4 due index.
-- ARGV: 1 key prefix, 2 slug, 3 expected revision ('' = any), 4 the number of events to append and their arguments
--       (_log.lua).
-- Returns 1 when a service was removed (and the events appended), else 0 (stale index entries of a vanished service
-- are dropped too).
local f = redis.call('HMGET', KEYS[1], 'rev', 'status', 'tags', 'caps')
if f[1] and ARGV[3] ~= '' and tonumber(f[1]) ~= tonumber(ARGV[3]) then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
forget(ARGV[2])
if f[1] then
  set_members('tag:', ARGV[2], f[3], false)
  set_members('cap:', ARGV[2], f[4], false)
  log_drafts(4, {})
  return 1
end
return 0
