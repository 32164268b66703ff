-- A page of services matching every filter, in slug order, read through the narrowest index.
-- KEYS: 1 slug index, 2 due index.
-- ARGV: 1 key prefix, 2 slug to start after ('' = from the first), 3 matches wanted, 4 budget (index entries this call
--       may examine), 5 statuses (space-separated; '*' = any), 6 '1' when filtering on the tag in 7, 8 '1' when
--       filtering on the capability in 9, 10 '1' when filtering on the case-folded text in 11.
-- The candidates come from the smallest of: the slug index, the union of the wanted statuses' sets, the tag's set,
-- the capability's set (their sizes are one ZCARD each), so a filter that matches nothing costs O(1) and a page costs
-- what that index holds up to it, never the whole registry. Each candidate is checked against the record itself
-- (status, 'tags', 'caps', the folded 'fs'/'fn'/'fd' fields); an index entry the record no longer backs (a hash that
-- vanished by native expiry, a slug registered again since) is dropped on the way.
-- Returns {cursor, matches}: the matches as one msgpack array of records (see _pack.lua), and the cursor, the last slug
-- examined when the budget ran out before enough matched ('' when the index has no more, or enough matched).
-- STATUSES (every status) is prepended by the store.
local P = ARGV[1]
local wanted = tonumber(ARGV[3])
local budget = tonumber(ARGV[4])

-- Byte order, as ZRANGEBYLEX sorts (Lua's '<' follows the server's collation locale).
local function before(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

local function holds(packed, value)
  if not packed or packed == '' then
    return false
  end
  for _, member in ipairs(cmsgpack.unpack(packed)) do
    if member == value then
      return true
    end
  end
  return false
end

local best, best_size = nil, nil
local function consider(sources)
  local size = 0
  for _, source in ipairs(sources) do
    size = size + redis.call('ZCARD', source[1])
  end
  -- The smallest; on a tie the fewest sets (no merge), then the later filter (its stale entries get dropped).
  if best == nil or size < best_size or (size == best_size and #sources <= #best) then
    best, best_size = sources, size
  end
end

consider({{KEYS[1], 'all'}})
local statuses = nil
if ARGV[5] ~= '*' then
  statuses = {}
  local sources = {}
  for status in string.gmatch(ARGV[5], '%S+') do
    statuses[status] = true
    sources[#sources + 1] = {P .. 'status:' .. status, 'status', status}
  end
  consider(sources)
end
if ARGV[6] == '1' then
  consider({{P .. 'tag:' .. ARGV[7], 'tag'}})
end
if ARGV[8] == '1' then
  consider({{P .. 'cap:' .. ARGV[9], 'cap'}})
end

-- What a candidate is checked on: its status (present in every hash), and only what the filters and the index
-- walked need; a match is then read whole.
local checks = {'status'}
local walked = best[1][2]
if ARGV[6] == '1' or walked == 'tag' then
  checks[#checks + 1] = 'tags'
end
if ARGV[8] == '1' or walked == 'cap' then
  checks[#checks + 1] = 'caps'
end
if ARGV[10] == '1' then
  checks[#checks + 1] = 'fs'
  checks[#checks + 1] = 'fn'
  checks[#checks + 1] = 'fd'
end
local at = {}
for i, name in ipairs(checks) do
  at[name] = i
end

local result, matches = {'', mp_array(0)}, {}
if best_size == 0 then
  return result
end
local needle = ARGV[10] == '1' and ARGV[11] or nil
local lower = '-'
if ARGV[2] ~= '' then
  lower = '(' .. ARGV[2]
end
local found, examined = 0, 0
while found < wanted and examined < budget do
  local n = math.min(budget - examined, 128)
  local batch, bound = {}, nil
  for _, source in ipairs(best) do
    local slugs = redis.call('ZRANGEBYLEX', source[1], lower, '+', 'LIMIT', 0, n)
    for _, slug in ipairs(slugs) do
      batch[#batch + 1] = {slug, source}
    end
    if #slugs == n and (bound == nil or before(slugs[n], bound)) then
      bound = slugs[n]
    end
  end
  if #best > 1 then
    table.sort(batch, function(x, y) return before(x[1], y[1]) end)
  end
  local last, consumed = nil, 0
  for _, entry in ipairs(batch) do
    local slug, source = entry[1], entry[2]
    if (bound and before(bound, slug)) or found >= wanted then
      break
    end
    consumed = consumed + 1
    examined = examined + 1
    last = slug
    local key = P .. 'svc:' .. slug
    local h = redis.call('HMGET', key, unpack(checks))
    if not h[1] then
      -- The hash vanished (native expiry): drop its history and what indexes it.
      redis.call('DEL', P .. 'hist:' .. slug)
      redis.call('ZREM', KEYS[1], slug)
      redis.call('ZREM', KEYS[2], slug)
      for _, status in ipairs(STATUSES) do
        redis.call('ZREM', P .. 'status:' .. status, slug)
      end
      redis.call('ZREM', source[1], slug)
    else
      local tags, caps = h[at['tags'] or 0], h[at['caps'] or 0]
      local stale = (source[2] == 'status' and h[1] ~= source[3])
        or (source[2] == 'tag' and not holds(tags, ARGV[7]))
        or (source[2] == 'cap' and not holds(caps, ARGV[9]))
      if stale then
        redis.call('ZREM', source[1], slug)
      elseif (not statuses or statuses[h[1]])
        and (ARGV[6] ~= '1' or holds(tags, ARGV[7]))
        and (ARGV[8] ~= '1' or holds(caps, ARGV[9]))
        and (not needle or string.find(h[at['fs']] or '', needle, 1, true)
          or string.find(h[at['fn']] or '', needle, 1, true) or string.find(h[at['fd']] or '', needle, 1, true)) then
        matches[#matches + 1] = read(key)
        found = found + 1
      end
    end
  end
  if last == nil or (bound == nil and consumed == #batch) then
    result[1] = '' -- the index holds nothing more after the cursor
    result[2] = mp_array(#matches) .. table.concat(matches)
    return result
  end
  lower = '(' .. last
  result[1] = last
end
if found >= wanted then
  result[1] = ''
end
result[2] = mp_array(#matches) .. table.concat(matches)
return result
