-- bench/wrk.lua - the requests of every bench/run scenario, and one report line per run.
--
-- wrk -t1 -c64 -d10s --latency -s bench/wrk.lua URL -- mode=MODE [key=value ...]
--
-- Modes (files hold one item per line):
--   static        GET /                            (the nginx baseline)
--   check         GET /v1/check, Bearer <token>    tokens=FILE
--   authz         GET /v1/authz, Bearer <token>    tokens=FILE (a gateway's forward-auth call)
--   introspect    POST /oauth2/introspect, form body token=<token>, HTTP Basic client
--                 authentication                   tokens=FILE basic=B64 (RFC 6749 2.3.1:
--                 base64 of the form-urlencoded "id:secret", made by bench/run; Lua has
--                 no base64)
--   lookup        GET /v1/check?jti=&sub=&iat=     claims=FILE ("jti sub iat exp" lines)
--   admin-revoke  POST /v1/admin/revoke, a fresh jti per request   admin=FILE exp=N
--   revoke        POST /v1/revoke {"token"}        tokens=FILE
--   mixed         95% check (tokens=FILE), 4% admin-revoke, 1% admin revoke-all of a
--                 subject "mixed-<n>" that no checked token has    admin=FILE exp=N
-- Every mode takes cpu=NAME:PID[+PID...],... (PID "self" is wrk): the CPU each process
-- spends during the run is read from /proc/PID/stat, in clock ticks of tck=N per second, and
-- reported as cpu_NAME (% of one core), with cpu_machine for all cores from /proc/stat.
-- statuses=1 counts every response status (wrk then parses each response: costs wrk CPU).
--
-- Rotation: with one wrk thread, one counter serves all connections, so consecutive
-- requests (which go out on different connections) carry consecutive items and every item
-- is sent once per pass over the file; no two in-flight requests share a token.
--
-- done() prints one line, "BENCH key=value ...", which bench/run parses: wrk's own text
-- report has no p99.9 and its format is not an interface.

-- Globals, because done() runs in another Lua state and reads them with thread:get().
opt = {}
statuses = {}
cpu_before = {}

local reqs = {}   -- prebuilt requests, in rotation order
local nreqs = 0
local idx = 0
local fresh = 0   -- admin-revoke and mixed: jti counter
local run_id = ""
local admin_auth = ""

local function lines(path)
  local out = {}
  for line in io.lines(path) do
    if line ~= "" then out[#out + 1] = line end
  end
  assert(#out > 0, "no lines in " .. path)
  return out
end

local function read_first_line(path)
  local f = assert(io.open(path, "r"))
  local line = f:read("*l")
  f:close()
  return line
end

-- Ticks of user + system time of pid ("self" for wrk), or nil if it is gone.
local function ticks(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  -- Fields after "pid (comm) ": state ppid ... utime is the 12th, stime the 13th.
  local rest = s:match("%) (.*)$")
  local i, utime, stime = 0, 0, 0
  for field in rest:gmatch("%S+") do
    i = i + 1
    if i == 12 then utime = tonumber(field) elseif i == 13 then stime = tonumber(field) break end
  end
  return utime + stime
end

-- Busy ticks of the whole machine (all cores): also kernel work charged to no process,
-- such as the loopback network's softirq processing.
local function machine_ticks()
  local f = io.open("/proc/stat", "r")
  if not f then return nil end
  local line = f:read("*l")
  f:close()
  local i, busy = 0, 0
  for field in line:gmatch("%d+") do
    i = i + 1
    -- user nice system idle iowait irq softirq steal (guest time is already in user)
    if i <= 8 and i ~= 4 and i ~= 5 then busy = busy + tonumber(field) end
  end
  return busy
end

-- { name = ticks summed over its pids } for the cpu= option, plus the machine's.
local function cpu_snapshot(spec)
  local out = { machine = machine_ticks() }
  for name, pids in (spec or ""):gmatch("([%w_]+):([%w+]+)") do
    local sum = 0
    for pid in pids:gmatch("[^+]+") do sum = sum + (ticks(pid) or 0) end
    out[name] = sum
  end
  return out
end

local function get(path, headers)
  return wrk.format("GET", path, headers)
end

local function post_json(path, body, auth)
  local h = { ["Content-Type"] = "application/json" }
  if auth then h["Authorization"] = auth end
  return wrk.format("POST", path, h, body)
end

local function admin_revoke()
  fresh = fresh + 1
  return post_json("/v1/admin/revoke",
    '{"jti":"' .. run_id .. "-" .. fresh .. '","exp":' .. opt.exp .. "}", admin_auth)
end

local function revoke_all()
  return post_json("/v1/admin/subjects/mixed-" .. math.random(1, 100000) .. "/revoke-all", "{}",
    admin_auth)
end

local function next_prebuilt()
  idx = idx % nreqs + 1
  return reqs[idx]
end

local generators = {
  static = next_prebuilt,
  check = next_prebuilt,
  authz = next_prebuilt,
  introspect = next_prebuilt,
  lookup = next_prebuilt,
  revoke = next_prebuilt,
  ["admin-revoke"] = admin_revoke,
  mixed = function()
    local r = math.random()
    if r < 0.95 then return next_prebuilt() end
    if r < 0.99 then return admin_revoke() end
    return revoke_all()
  end,
}
local generate

local function count_status(status)
  statuses[status] = (statuses[status] or 0) + 1
end

function init(args)
  for _, a in ipairs(args) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    assert(k, "bad argument " .. a)
    opt[k] = v
  end
  generate = assert(generators[opt.mode], "unknown mode " .. tostring(opt.mode))
  math.randomseed(os.time())
  run_id = string.format("bench-%d-%d", os.time(), math.random(1, 1e9))
  if opt.admin then admin_auth = "Bearer " .. read_first_line(opt.admin) end

  if opt.mode == "static" then
    reqs[1] = get("/")
  elseif opt.mode == "check" or opt.mode == "mixed" then
    for _, t in ipairs(lines(opt.tokens)) do
      reqs[#reqs + 1] = get("/v1/check", { ["Authorization"] = "Bearer " .. t })
    end
  elseif opt.mode == "authz" then
    for _, t in ipairs(lines(opt.tokens)) do
      reqs[#reqs + 1] = get("/v1/authz", { ["Authorization"] = "Bearer " .. t })
    end
  elseif opt.mode == "introspect" then
    assert(opt.basic and opt.basic:match("^[%w+/]+=*$"),
      "introspect needs basic=<base64 of client_id:secret>")
    for _, t in ipairs(lines(opt.tokens)) do
      -- A JWT is base64url and dots, which form-urlencoding leaves as they are.
      assert(t:match("^[%w%-_.]+$"), "a token needs form-urlencoding: " .. t:sub(1, 40))
      reqs[#reqs + 1] = wrk.format("POST", "/oauth2/introspect", {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["Authorization"] = "Basic " .. opt.basic,
      }, "token=" .. t)
    end
  elseif opt.mode == "lookup" then
    for _, l in ipairs(lines(opt.claims)) do
      local jti, sub, iat = l:match("^(%S+) (%S+) (%S+)")
      reqs[#reqs + 1] = get("/v1/check?jti=" .. jti .. "&sub=" .. sub .. "&iat=" .. iat)
    end
  elseif opt.mode == "revoke" then
    for _, t in ipairs(lines(opt.tokens)) do
      reqs[#reqs + 1] = post_json("/v1/revoke", '{"token":"' .. t .. '"}')
    end
  end
  nreqs = #reqs
  if opt.statuses == "1" then response = count_status end
  cpu_before = cpu_snapshot(opt.cpu)
end

function request()
  return generate()
end

local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local t = threads[1]
  local o = t:get("opt")
  local before = t:get("cpu_before")
  -- done() runs in wrk's main Lua state, which is wrk itself: "self" still works.
  local after = cpu_snapshot(o.cpu)
  local secs = summary.duration / 1e6
  local tck = tonumber(o.tck or "100")
  local e = summary.errors
  local out = {
    "BENCH",
    "requests=" .. summary.requests,
    "duration_us=" .. summary.duration,
    string.format("rps=%.1f", summary.requests / secs),
    "p50=" .. latency:percentile(50),
    "p90=" .. latency:percentile(90),
    "p99=" .. latency:percentile(99),
    "p999=" .. latency:percentile(99.9),
    "max=" .. latency.max,
    "non2xx=" .. e.status,
    "connect=" .. e.connect, "read=" .. e.read, "write=" .. e.write, "timeout=" .. e.timeout,
  }
  for name, b in pairs(before) do
    out[#out + 1] = string.format("cpu_%s=%.1f", name, ((after[name] or b) - b) / tck / secs * 100)
  end
  for code, n in pairs(t:get("statuses")) do out[#out + 1] = "status_" .. code .. "=" .. n end
  io.write(table.concat(out, " "), "\n")
end
