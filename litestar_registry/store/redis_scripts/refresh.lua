-- A re-registration that changes no data (see ServiceStore.refresh): if the stored data's fingerprint is the given
-- one, the status is one that takes it, a live record has not expired and the account matches, restart the clock as
-- replace.lua does with a restart and nothing else (the stored data, status, account and indexes stay), and move the
-- data revision on as every data write does. No history entry, no event: the data did not change.
-- KEYS: 1 service hash, 2 history list, 3 slug index, 4 due index.
-- ARGV: 1 key prefix, 2 slug, 3 data fingerprint, 4 restart time (epoch microseconds), 5 '1' to require the account
--       in 6 (or none stored), 7 safety-net retention ms ('' = keep the keys forever), 8.. statuses that take it.
-- Returns {1, fields} when refreshed, {0, fields} when nothing was written (fields: the store's _READ_FIELDS, packed;
-- every one absent when there is no such service).
local f = redis.call('HMGET', KEYS[1], 'dfp', 'status', 'expires', 'account', 'seen', 'ttl', 'windows', 'rev', 'dfpr')
-- 'dfpr', the revision 'dfp' was written at, tells a digest that a data write of an earlier version (which knew no
-- digest) left behind.
if not f[1] or f[1] ~= ARGV[3] or f[9] ~= f[8] then
  return {0, read(KEYS[1])}
end
local status = f[2]
local allowed = false
for i = 8, #ARGV do
  if ARGV[i] == status then
    allowed = true
    break
  end
end
local live = status == 'active' or status == 'degraded'
local at = tonumber(ARGV[4])
if not allowed or (live and at >= tonumber(f[3])) or (ARGV[5] == '1' and f[4] and f[4] ~= ARGV[6]) then
  return {0, read(KEYS[1])}
end
-- The later of the stored contact and the restart, exact below 2^53 (see touch.lua).
local seen = tonumber(f[5])
if seen > at then
  at = seen
end
local ttl = tonumber(f[6])
local windows = tonumber(f[7])
local deadline = string.format('%.0f', at + ttl)
local nxt = ''
local expire_ms = ''
if live then
  nxt = deadline
  if ARGV[7] ~= '' then
    expire_ms = string.format('%.0f', math.ceil(ttl * windows / 1000) + tonumber(ARGV[7]))
  end
end
local rev = string.format('%d', tonumber(f[8]) + 1)
redis.call('HSET', KEYS[1], 'rev', rev, 'dfpr', rev, 'seen', string.format('%.0f', at),
  'deadline', deadline, 'expires', string.format('%.0f', at + ttl * windows), 'fail', '0', 'next', nxt)
redis.call('HINCRBY', KEYS[1], 'crev', 1)
index(ARGV[2], nxt, expire_ms)
return {1, read(KEYS[1])}
