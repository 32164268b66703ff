-- wrk request generator for bench/run.py (from the reference harness's wrk_registry.lua).
--
-- Arguments after "--": METHOD PATH BODY_FILE|- ID_SPACE. Per request:
--   * "{id}" in the path or the body becomes string.format(WRK_ID_FORMAT or "svc-%05d", k), k cycling 1..ID_SPACE,
--     so every request names a service registered before the measurement;
--   * WRK_HEADER (env var, optional; several separated by "|") is added, only to paths matching the Lua pattern
--     WRK_HEADER_MATCH when that is set (bench/run.py: the bearer key, for "^/api/").
-- done() prints one "WRKRESULT k=v ..." line (req/s, p50/p90/p99/max in ms, error counts) that run.py parses.

local thread_count = 0

function setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
end

local method, path_tpl, body_tpl, id_space, id_fmt, static_req
local headers = {}
local n = 0

function init(args)
  method = args[1] or "GET"
  path_tpl = args[2] or "/"
  local body_file = args[3]
  id_space = tonumber(args[4] or "10000")
  id_fmt = os.getenv("WRK_ID_FORMAT") or "svc-%05d"
  local extra = os.getenv("WRK_HEADER") or ""
  local only = os.getenv("WRK_HEADER_MATCH") or ""
  if only ~= "" and not path_tpl:find(only) then extra = "" end
  for h in string.gmatch(extra, "[^|]+") do
    local name, value = h:match("^%s*([^:]+):%s*(.-)%s*$")
    if name then headers[name] = value end
  end
  if body_file and body_file ~= "" and body_file ~= "-" then
    local f = assert(io.open(body_file, "rb"))
    body_tpl = f:read("*a")
    f:close()
    headers["Content-Type"] = "application/json"
  end
  local templated = path_tpl:find("{id}", 1, true)
    or (body_tpl and body_tpl:find("{id}", 1, true))
  if not templated then
    static_req = wrk.format(method, path_tpl, headers, body_tpl)
  end
  n = (tid or 0) * 7919
end

function request()
  if static_req then
    return static_req
  end
  local id = string.format(id_fmt, (n % id_space) + 1)
  n = n + 1
  local path = path_tpl:gsub("{id}", id)
  local body = body_tpl and body_tpl:gsub("{id}", id) or nil
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "WRKRESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f mean_ms=%.3f "
      .. "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d bytes=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000,
    e.connect, e.read, e.write, e.status, e.timeout, summary.bytes))
end
