-- wrk script of the serving benchmark: POST one JSON body, read from the file named
-- by the WRK_BODY_FILE environment variable, on every request; count non-2xx answers
-- per thread; at the end print one JSON line (after the marker "WRKJSON ") with the
-- counts, the errors and the latency percentiles in microseconds.
local path = os.getenv("WRK_BODY_FILE")
if path == nil then
  error("WRK_BODY_FILE is not set")
end
local file = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
local authorization = os.getenv("WRK_AUTHORIZATION")  -- optional: the token to send
if authorization ~= nil then
  wrk.headers["Authorization"] = authorization
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  responses = 0
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
