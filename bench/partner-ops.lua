-- wrk2's side of bench/partner-ops.ts (--driver wrk2): one partner operation at wrk2's constant rate.
-- It signs nothing and makes no body: the bench writes, one per line, into the file given after `--`:
--   1. the request path
--   2. the Authorization header's value (a token the bench signed up front, as a partner's app holds one)
--   3. "write" or "read": a write carries an Idempotency-Key, unique per thread and request
--   4. the keys' prefix (unique per run, so no write is a replay of an earlier run's)
--   5… the bodies, one per line, sent in turn
-- done() prints one JSON line (wrk2's corrected latency, in µs) that the bench parses.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

local path, authorization, writes, prefix
local bodies = {}
local next_body = 0
local sent = 0

function init(args)
  local file = assert(io.open(args[1], "r"))
  path = file:read("*l")
  authorization = file:read("*l")
  writes = file:read("*l") == "write"
  prefix = file:read("*l")
  for line in file:lines() do
    if line ~= "" then bodies[#bodies + 1] = line end
  end
  file:close()
  assert(#bodies > 0, "no bodies in " .. args[1])
end

function request()
  next_body = next_body % #bodies + 1
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = authorization }
  if writes then
    sent = sent + 1
    headers["Idempotency-Key"] = prefix .. "-" .. thread_number .. "-" .. sent
  end
  return wrk.format("POST", path, headers, bodies[next_body])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"wrk2":{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
