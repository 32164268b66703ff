-- Shared by every script that writes a record. ARGV[1] is the key prefix '{ns}:' (the braces are the hash tag every
-- key of one namespace shares, so that each script's keys sit in one Redis Cluster slot).
-- KEYS: 1 service hash, 2 history list, 3 slug index, 4 due index (scripts that need fewer declare fewer).
local P = ARGV[1]
-- STATUSES, the registry's statuses, is prepended by the store (from ServiceStatus).

-- Move a slug from the status set of `old` to that of `new` (either may be false: none).
local function set_status(slug, old, new)
  if old == new then
    return
  end
  if old then
    redis.call('ZREM', P .. 'status:' .. old, slug)
  end
  if new then
    redis.call('ZADD', P .. 'status:' .. new, 0, slug)
  end
end

-- The strings of a msgpack array (a 'tags' or 'caps' field), as a set; an absent field is the empty set.
local function members(packed)
  local set = {}
  if packed and packed ~= '' then
    for _, value in ipairs(cmsgpack.unpack(packed)) do
      set[value] = true
    end
  end
  return set
end

-- Keep the per-tag (kind 'tag:') or per-capability ('cap:') sets in step with a record's new array.
local function set_members(kind, slug, old_packed, new_packed)
  local old, new = members(old_packed), members(new_packed)
  for value in pairs(old) do
    if not new[value] then
      redis.call('ZREM', P .. kind .. value, slug)
    end
  end
  for value in pairs(new) do
    if not old[value] then
      redis.call('ZADD', P .. kind .. value, 0, slug)
    end
  end
end

-- Drop a slug from every index a vanished hash may have left it in, but its tag and capability sets (unknown once
-- the hash is gone): readers verify those against the record and drop stale entries as they meet them.
local function forget(slug)
  redis.call('ZREM', KEYS[3], slug)
  redis.call('ZREM', KEYS[4], slug)
  for _, status in ipairs(STATUSES) do
    redis.call('ZREM', P .. 'status:' .. status, slug)
  end
end

-- Put the slug in the slug index, in the due index when it has a next check (score: epoch microseconds), and set the
-- native safety-net expiry on the service's two keys (milliseconds; '' keeps them forever).
local function index(slug, due_score, expire_ms)
  redis.call('ZADD', KEYS[3], 0, slug)
  if due_score == '' then
    redis.call('ZREM', KEYS[4], slug)
  else
    redis.call('ZADD', KEYS[4], due_score, slug)
  end
  if expire_ms == '' then
    redis.call('PERSIST', KEYS[1])
    redis.call('PERSIST', KEYS[2])
  else
    redis.call('PEXPIRE', KEYS[1], expire_ms)
    redis.call('PEXPIRE', KEYS[2], expire_ms)
  end
end

