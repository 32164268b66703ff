-- Move one service from the first layout (keys '{ns}:svc:{slug}' without a hash tag, no status, tag or capability
-- sets) to this one, on a standalone server (the first layout never ran on a cluster: its scripts' keys spanned slots).
-- KEYS: 1 new service hash, 2 new history list, 3 new slug index, 4 new due index, 5 old service hash, 6 old history
--       list, 7 old slug index, 8 old due index.
-- ARGV: 1 key prefix, 2 slug, 3 tags (msgpack array), 4 capabilities (msgpack array), 5.. field/value pairs to add
--       (tags, caps, folded text). Returns 1 when moved, 0 when the old hash was gone (its index entries are dropped).
redis.call('ZREM', KEYS[7], ARGV[2])
redis.call('ZREM', KEYS[8], ARGV[2])
if redis.call('EXISTS', KEYS[5]) == 0 then
  redis.call('DEL', KEYS[6])
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('RENAME', KEYS[5], KEYS[1])
if redis.call('EXISTS', KEYS[6]) == 1 then
  redis.call('RENAME', KEYS[6], KEYS[2])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
local f = redis.call('HMGET', KEYS[1], 'status', 'next')
redis.call('ZADD', KEYS[3], 0, ARGV[2])
if f[2] and f[2] ~= '' then
  redis.call('ZADD', KEYS[4], f[2], ARGV[2])
end
set_status(ARGV[2], false, f[1])
set_members('tag:', ARGV[2], false, ARGV[3])
set_members('cap:', ARGV[2], false, ARGV[4])
return 1
