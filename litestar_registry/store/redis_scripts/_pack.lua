-- Prepended to every script. A record travels as one msgpack array the store decodes in one call, typed, with no
-- field parsed by Python code: [record, status, fail, seen, deadline, expires, next, health, rev, crev] (the store's
-- _READ_FIELDS): the stored msgpack of the record and of its health as they are, the times as msgpack timestamps,
-- the counters as integers; msgpack nil when the hash is gone.
local READ = {'record', 'status', 'fail', 'seen', 'deadline', 'expires', 'next', 'health', 'rev', 'crev'}
local NIL = '\192'

-- A decimal string (absent: 0) as a msgpack int64.
local function mp_int(value)
  return '\211' .. struct.pack('>i8', tonumber(value or '0'))
end

-- Epoch microseconds (a decimal string; '' or absent: nil) as a msgpack timestamp (the 96-bit form).
local function mp_time(value)
  if not value or value == '' then
    return NIL
  end
  local n = #value
  if n > 6 and string.byte(value, 1) ~= 45 then -- split as text, exact however far the time ('-' is 45)
    local seconds = tonumber(string.sub(value, 1, n - 6))
    return '\199\12\255' .. struct.pack('>I4', tonumber(string.sub(value, n - 5)) * 1000) .. struct.pack('>i8', seconds)
  end
  local micros = tonumber(value)
  local seconds = math.floor(micros / 1000000)
  local rest = micros - seconds * 1000000 -- exact below 2^53 (before 1685, negative times are not)
  if rest < 0 then
    seconds = seconds - 1
    rest = rest + 1000000
  elseif rest >= 1000000 then
    seconds = seconds + 1
    rest = rest - 1000000
  end
  return '\199\12\255' .. struct.pack('>I4', rest * 1000) .. struct.pack('>i8', seconds)
end

-- The header of a msgpack array of n items.
local function mp_array(n)
  if n < 16 then
    return string.char(144 + n)
  elseif n < 65536 then
    return '\220' .. struct.pack('>I2', n)
  end
  return '\221' .. struct.pack('>I4', n)
end

-- The record stored at `key`, as described above.
local function read(key)
  local v = redis.call('HMGET', key, unpack(READ))
  if not v[1] then
    return NIL
  end
  return '\154' .. v[1] .. string.char(160 + #v[2]) .. v[2] .. mp_int(v[3]) .. mp_time(v[4]) .. mp_time(v[5])
    .. mp_time(v[6]) .. mp_time(v[7]) .. (v[8] or NIL) .. mp_int(v[9]) .. mp_int(v[10])
end
