-- Prepended to the scripts that append to the change log (after _index.lua, whose P is the key prefix '{ns}:').
-- The log is a stream, P .. 'events', whose entry ids are '<n>-0' with n from the counter P .. 'event_id' (INCR):
-- appended in the same script as the change, so in the order the server runs the scripts, each id once. Every entry
-- starts with 't' (topic), 's' (subject) and 'at' (epoch microseconds), which the read and trim scripts look at.

-- Append one entry of the given field/value pairs; returns its id.
local function log_event(fields)
  local id = redis.call('INCR', P .. 'event_id')
  redis.call('XADD', P .. 'events', string.format('%d-0', id), unpack(fields))
  return id
end

-- Append the events a write was given: ARGV[at] is their count n, then n quintuples (topic, subject, time, data as
-- msgpack, tenant or ''); `extra` field/value pairs go into every entry. Returns the index of the ARGV after them.
local function log_drafts(at, extra)
  local n = tonumber(ARGV[at])
  for i = 0, n - 1 do
    local base = at + 1 + 5 * i
    local fields = {'t', ARGV[base], 's', ARGV[base + 1], 'at', ARGV[base + 2], 'd', ARGV[base + 3]}
    if ARGV[base + 4] ~= '' then
      fields[#fields + 1] = 'n'
      fields[#fields + 1] = ARGV[base + 4]
    end
    for _, value in ipairs(extra) do
      fields[#fields + 1] = value
    end
    log_event(fields)
  end
  return at + 1 + 5 * n
end

-- Where the write's own field/value pairs start, after the events at ARGV[at] (without appending them).
local function after_drafts(at)
  return at + 1 + 5 * tonumber(ARGV[at])
end
