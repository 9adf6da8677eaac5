-- wrk script of the pool benchmark: POST one JSON body (from WRK_BODY_FILE) to
-- WRK_PREFIX .. i .. "/infer" for i cycling over 0 .. WRK_MODELS-1, each thread and
-- connection starting at its own random point, so requests spread over every model.
-- Prints the same "WRKJSON " line as post.lua.
local path = os.getenv("WRK_BODY_FILE")
local count = tonumber(os.getenv("WRK_MODELS"))
local prefix = os.getenv("WRK_PREFIX")
if path == nil or count == nil or prefix == nil then
  error("WRK_BODY_FILE, WRK_MODELS and WRK_PREFIX must be set")
end
local file = assert(io.open(path, "rb"))
local body = file:read("*a")
file:close()
local headers = {["Content-Type"] = "application/json"}

local threads = {}
local index = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  responses = 0
  math.randomseed(os.time() + #threads * 7919)
  index = math.random(0, count - 1)
end

function request()
  index = (index + 1) % count
  return wrk.format("POST", prefix .. index .. "/infer", headers, body)
end

function response(status, headers, body)
  responses = responses + 1
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local non = 0
  local seen = 0
  for _, thread in ipairs(threads) do
    non = non + thread:get("non2xx")
    seen = seen + thread:get("responses")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"responses":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"non_2xx":%d,"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f,"stdev":%.1f}}\n',
    summary.requests, seen, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, non,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, latency.stdev))
end
