-- Drop the index entries and history of services whose hash is gone (native expiry, or removed by hand).
-- KEYS: 1 slug index, 2 due index, then the service hash and history list of each slug in turn.
-- ARGV: the slugs. A slug whose hash exists again (re-created meanwhile) is left alone.
-- Returns how many slugs were pruned.
local pruned = 0
for i, slug in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[2 * i + 1]) == 0 then
    redis.call('DEL', KEYS[2 * i + 2])
    redis.call('ZREM', KEYS[1], slug)
    redis.call('ZREM', KEYS[2], slug)
    pruned = pruned + 1
  end
end
return pruned
