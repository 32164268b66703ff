-- Read the change log after a cursor: up to `limit` entries of the given subject and topics, oldest first.
-- KEYS: 1 the log (stream), 2 its counter.
-- ARGV: 1 cursor (entries with a greater id), 2 limit, 3 budget (entries examined at most), 4 '1' to keep only the
--       subject in 5, 6 '1' to keep only the topics in 7...
-- Returns {the counter (0 before the first event), the id examined last, 1 when the log was read to its end, the
-- entries as XRANGE gives them}. Entries are examined a chunk at a time from the cursor; the budget bounds how long
-- one call with sparse filters keeps the server busy (the caller calls again from the id examined last).
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local cursor = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local subject = ARGV[4] == '1' and ARGV[5] or false
local topics = false
if ARGV[6] == '1' then
  topics = {}
  for i = 7, #ARGV do
    topics[ARGV[i]] = true
  end
end
local found = {}
local examined = 0
local done = 0
while #found < limit do
  local want = limit - #found
  if subject or topics then
    want = math.min(budget - examined, math.max(want, 100))
  end
  if want <= 0 then
    break
  end
  local entries = redis.call('XRANGE', KEYS[1], string.format('%.0f-0', cursor + 1), '+', 'COUNT', want)
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    cursor = tonumber(string.match(entry[1], '^(%d+)'))
    examined = examined + 1
    -- Every entry starts with 't' (topic) and 's' (subject): see _log.lua.
    if (not topics or topics[fields[2]]) and (not subject or fields[4] == subject) then
      found[#found + 1] = entry
      if #found == limit then
        break
      end
    end
  end
  if #entries < want then
    done = 1
    break
  end
end
return {last, string.format('%.0f', cursor), done, found}
