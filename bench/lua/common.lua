-- Shared by the scenarios: per-thread counters, credentials and a report of non-2xx
-- answers.
local threads = {}

-- Headers with the operator API token the harness created (BENCH_TOKEN).
function with_token(headers)
  headers = headers or {}
  headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
  return headers
end

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  failures = 0
end

function response(status, headers, body)
  if status < 200 or status >= 300 then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
  end
  io.write(string.format("NON2XX %d\n", failed))
  io.write(string.format("P50US %d\n", latency:percentile(50)))
  io.write(string.format("P99US %d\n", latency:percentile(99)))
end
