-- A page of a service's version history, oldest first, by stable position.
-- KEYS: 1 service hash, 2 history list. ARGV: 1 position to start after ('' = from the oldest), 2 page size plus one
-- ('' = every entry). Positions count every entry ever appended: entry i of the list is at 'hdrop' + i, where 'hdrop'
-- is how many entries were dropped beyond the history limit, so a position stays valid while the list is trimmed.
-- Returns {position of the first entry returned, entries}.
local dropped = tonumber(redis.call('HGET', KEYS[1], 'hdrop') or '0')
local start = 0
if ARGV[1] ~= '' then
  start = math.max(0, tonumber(ARGV[1]) + 1 - dropped)
end
local stop = -1
if ARGV[2] ~= '' then
  stop = start + tonumber(ARGV[2]) - 1
end
return {dropped + start, redis.call('LRANGE', KEYS[2], start, stop)}
