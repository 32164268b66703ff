-- A heartbeat or ping: refresh the clock fields of a live service in one step, or do nothing.
-- KEYS: 1 service hash, 2 history list, 3 slug index (unused), 4 due index.
-- ARGV: 1 key prefix, 2 slug, 3 contact time (epoch microseconds), 4 new status, 5 health ('' = keep), 6 '1' to
--       require the account in 7, 8 safety-net retention ms ('' = keep the keys forever), 9 the status whose change
--       to the new one is a transition to log, 10 its topic ('' = none), 11.. statuses that take contact.
-- Returns the record's fields (the store's _READ_FIELDS, in order), or nil when nothing matched; when the contact
-- moved the status from ARGV[9], it appends the transition to the change log and returns {fields, 1}. The entry
-- keeps the previous status ('p') and the record's fields after the change ('r'), from which the store builds the
-- payload when the log is read. A contact older than the stored one changes nothing (contact never goes backwards)
-- and returns the record as it is. The data revision is left alone: contact is not data. A missing hash matches
-- nothing, so a ping racing a delete never brings the service back.
local f = redis.call('HMGET', KEYS[1], 'status', 'expires', 'account', 'ttl', 'windows', 'seen')
if not f[1] then
  return false
end
local allowed = false
for i = 11, #ARGV do
  if ARGV[i] == f[1] then
    allowed = true
    break
  end
end
if not allowed then
  return false
end
local at = tonumber(ARGV[3])
if at >= tonumber(f[2]) then
  return false
end
if ARGV[6] == '1' and f[3] ~= ARGV[7] then
  return false
end
if at >= tonumber(f[6]) then
  local ttl = tonumber(f[4])
  local windows = tonumber(f[5])
  -- Epoch microseconds stay below 2^53, so these sums are exact in Lua's doubles; '%.0f' prints them in full.
  local deadline = string.format('%.0f', at + ttl)
  local expires = string.format('%.0f', at + ttl * windows)
  redis.call('HSET', KEYS[1], 'status', ARGV[4], 'fail', '0', 'seen', ARGV[3], 'deadline', deadline,
    'expires', expires, 'next', deadline)
  redis.call('HINCRBY', KEYS[1], 'crev', 1)
  if ARGV[5] ~= '' then
    redis.call('HSET', KEYS[1], 'health', ARGV[5])
  end
  set_status(ARGV[2], f[1], ARGV[4])
  redis.call('ZADD', KEYS[4], deadline, ARGV[2])
  if ARGV[8] == '' then
    redis.call('PERSIST', KEYS[1])
    redis.call('PERSIST', KEYS[2])
  else
    local ms = string.format('%.0f', math.ceil(ttl * windows / 1000) + tonumber(ARGV[8]))
    redis.call('PEXPIRE', KEYS[1], ms)
    redis.call('PEXPIRE', KEYS[2], ms)
  end
  if ARGV[10] ~= '' and f[1] == ARGV[9] then
    local record = read(KEYS[1])
    log_event({'t', ARGV[10], 's', ARGV[2], 'at', ARGV[3], 'p', f[1], 'r', record})
    return {record, 1}
  end
end
return read(KEYS[1])
