-- Insert a service and its first history entry, unless the slug is taken.
-- KEYS: 1 service hash, 2 history list, 3 slug index, 4 due index.
-- ARGV: 1 key prefix, 2 slug, 3 due score ('' = none), 4 expiry ms ('' = none), 5 history entry, 6 status, 7 tags
--       (msgpack array), 8 capabilities (msgpack array), 9 the number of events to append and their arguments
--       (_log.lua), then hash field/value pairs (status, tags and caps included).
-- Returns 1 when written (and the events appended), 0 when the slug is taken.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'rev', '1', 'crev', '1', 'dfpr', '1', unpack(ARGV, after_drafts(9)))
redis.call('RPUSH', KEYS[2], ARGV[5])
index(ARGV[2], ARGV[3], ARGV[4])
set_status(ARGV[2], false, ARGV[6])
set_members('tag:', ARGV[2], false, ARGV[7])
set_members('cap:', ARGV[2], false, ARGV[8])
log_drafts(9, {})
return 1
