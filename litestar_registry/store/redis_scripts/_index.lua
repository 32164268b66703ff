-- Shared by create.lua and replace.lua. KEYS: 1 service hash, 2 history list, 3 slug index, 4 due index.
-- Puts the slug in the slug index, in the due index when it has a next check (score: epoch microseconds), and
-- sets the native safety-net expiry on the service's two keys (milliseconds; '' keeps them forever).
local function index(slug, due_score, expire_ms)
  redis.call('ZADD', KEYS[3], 0, slug)
  if due_score == '' then
    redis.call('ZREM', KEYS[4], slug)
  else
    redis.call('ZADD', KEYS[4], due_score, slug)
  end
  if expire_ms == '' then
    redis.call('PERSIST', KEYS[1])
    redis.call('PERSIST', KEYS[2])
  else
    redis.call('PEXPIRE', KEYS[1], expire_ms)
    redis.call('PEXPIRE', KEYS[2], expire_ms)
  end
end

