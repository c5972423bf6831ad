-- Shared by the scenarios: per-thread counters and a report of non-2xx answers.
local threads = {}

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
