-- Drop the index entries and history of services whose hash is gone (native expiry, or removed by hand).
-- KEYS: 1 service hash, 2 history list, 3 slug index, 4 due index, then the service hash and history list of each
-- slug in turn (1 and 2 are those of the first slug). ARGV: 1 key prefix, 2.. the slugs.
-- A slug whose hash exists again (re-created meanwhile) is left alone. Returns how many slugs were pruned.
local pruned = 0
for i = 2, #ARGV do
  local svc, hist = KEYS[1], KEYS[2]
  if i > 2 then
    svc, hist = KEYS[2 * i - 1], KEYS[2 * i]
  end
  if redis.call('EXISTS', svc) == 0 then
    redis.call('DEL', hist)
    forget(ARGV[i])
    pruned = pruned + 1
  end
end
return pruned
