-- A data write: overwrite a service's data if its revision still is the expected one (and its status one of those
-- given); keep the status and the contact fields, which contact and sweeps move, unless told to set the status or to
-- restart the clock. Optionally append a history entry and drop the oldest beyond a limit.
-- KEYS: 1 service hash, 2 history list, 3 slug index, 4 due index.
-- ARGV: 1 key prefix, 2 slug, 3 expected revision, 4 statuses the stored one must be in (space-separated; '*' = any),
--       5 status to write ('' = keep), 6 restart time (epoch microseconds; '' = keep the clock), 7 health to write
--       with the restart ('' = keep), 8 safety-net retention ms ('' = keep the keys forever), 9 history entry ('' =
--       none), 10 history limit ('' = none), 11 account ('' = none), 12 tags (msgpack array), 13 capabilities
--       (msgpack array), 14 the number of events to append and their arguments (_log.lua), then data field/value
--       pairs (record, ttl, windows, tags, caps, folded text).
-- Returns the stored record's fields (the store's _READ_FIELDS, in order), -1 when there is no such service (its
-- stale index entries are dropped), -2 when the revision moved on or the status is not one of those given. Only a
-- write appends its events, each with 'st', the status stored (a write that keeps it learns it only here).
local f = redis.call('HMGET', KEYS[1], 'rev', 'status', 'seen', 'next', 'tags', 'caps')
if not f[1] then
  redis.call('DEL', KEYS[2])
  forget(ARGV[2])
  return -1
end
if tonumber(f[1]) ~= tonumber(ARGV[3]) then
  return -2
end
if ARGV[4] ~= '*' then
  local allowed = false
  for status in string.gmatch(ARGV[4], '%S+') do
    if status == f[2] then
      allowed = true
      break
    end
  end
  if not allowed then
    return -2
  end
end
local status = f[2]
local moved = false
if ARGV[5] ~= '' then
  status = ARGV[5]
  moved = true
end
local rev = string.format('%d', tonumber(f[1]) + 1)
redis.call('HSET', KEYS[1], 'rev', rev, 'dfpr', rev, 'status', status, unpack(ARGV, after_drafts(14)))
if ARGV[11] == '' then
  redis.call('HDEL', KEYS[1], 'account')
else
  redis.call('HSET', KEYS[1], 'account', ARGV[11])
end
local clock = redis.call('HMGET', KEYS[1], 'ttl', 'windows')
local ttl = tonumber(clock[1])
local windows = tonumber(clock[2])
local nxt = f[4]
if ARGV[6] ~= '' then
  -- The later of the stored contact and the restart: contact never goes backwards. Exact below 2^53 (see touch.lua).
  local at = tonumber(ARGV[6])
  local seen = tonumber(f[3])
  if seen > at then
    at = seen
  end
  nxt = string.format('%.0f', at + ttl)
  redis.call('HSET', KEYS[1], 'seen', string.format('%.0f', at), 'deadline', nxt,
    'expires', string.format('%.0f', at + ttl * windows), 'fail', '0')
  if ARGV[7] ~= '' then
    redis.call('HSET', KEYS[1], 'health', ARGV[7])
  end
  moved = true
end
local live = status == 'active' or status == 'degraded'
if not live then
  nxt = ''
end
redis.call('HSET', KEYS[1], 'next', nxt)
if moved then
  redis.call('HINCRBY', KEYS[1], 'crev', 1)
end
local expire_ms = ''
if live and ARGV[8] ~= '' then
  expire_ms = string.format('%.0f', math.ceil(ttl * windows / 1000) + tonumber(ARGV[8]))
end
index(ARGV[2], nxt, expire_ms)
set_status(ARGV[2], f[2], status)
set_members('tag:', ARGV[2], f[5], ARGV[12])
set_members('cap:', ARGV[2], f[6], ARGV[13])
if ARGV[9] ~= '' then
  local length = redis.call('RPUSH', KEYS[2], ARGV[9])
  if ARGV[10] ~= '' then
    local excess = length - tonumber(ARGV[10])
    if excess > 0 then
      redis.call('LTRIM', KEYS[2], excess, -1)
      redis.call('HINCRBY', KEYS[1], 'hdrop', excess)
    end
  end
end
log_drafts(14, {'st', status})
return read(KEYS[1])
