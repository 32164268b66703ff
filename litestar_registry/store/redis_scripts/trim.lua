-- Drop old entries of the change log: those with an id up to a bound, then those older than a time.
-- KEYS: 1 the log (stream).
-- ARGV: 1 the highest id to drop ('' = none), 2 drop entries older than this (epoch microseconds; '' = none),
--       3 budget (entries examined at most for the time).
-- Returns {how many were dropped, 1 when the time criterion may have more to drop (the budget ran out)}. By id it is
-- one XTRIM MINID; by time it reads from the oldest entry until the first young enough (entries are appended in
-- time order), so it costs what it drops, never a scan of what stays.
local before = redis.call('XLEN', KEYS[1])
if ARGV[1] ~= '' then
  redis.call('XTRIM', KEYS[1], 'MINID', string.format('%.0f-0', tonumber(ARGV[1]) + 1))
end
local more = 0
if ARGV[2] ~= '' then
  local older = tonumber(ARGV[2])
  local budget = tonumber(ARGV[3])
  local keep = false
  local examined = 0
  local start = '-'
  while not keep and examined < budget do
    local entries = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', math.min(100, budget - examined))
    if #entries == 0 then
      break
    end
    for _, entry in ipairs(entries) do
      examined = examined + 1
      -- 'at' is the third field: see _log.lua.
      if tonumber(entry[2][6]) >= older then
        keep = entry[1]
        break
      end
      start = '(' .. entry[1]
    end
  end
  if keep then
    redis.call('XTRIM', KEYS[1], 'MINID', keep)
  elseif start ~= '-' then
    -- Every entry examined is older: drop through the last one (exclusive start of what follows it).
    local id = tonumber(string.match(start, '^%((%d+)'))
    redis.call('XTRIM', KEYS[1], 'MINID', string.format('%.0f-0', id + 1))
    if examined >= budget then
      more = 1
    end
  end
end
return {before - redis.call('XLEN', KEYS[1]), more}
