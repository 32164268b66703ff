-- Prepended to every script. Replies carry a record as one string, not ten: each field as '<length>:<bytes>', or '-'
-- when absent (redis-py parses every bulk string of a reply in Python, so fewer of them is less work a call).
local READ = {'record', 'status', 'fail', 'seen', 'deadline', 'expires', 'next', 'health', 'rev', 'crev'}

local function pack(values, first, last)
  local parts = {}
  for i = first, last do
    local value = values[i]
    if value then
      parts[#parts + 1] = #value .. ':' .. value
    else
      parts[#parts + 1] = '-'
    end
  end
  return table.concat(parts)
end

-- The fields a record is rebuilt from (the store's _READ_FIELDS, in order), packed.
local function read(key)
  return pack(redis.call('HMGET', key, unpack(READ)), 1, #READ)
end

