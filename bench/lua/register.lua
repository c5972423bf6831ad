-- Register nodes with names no other request uses, with the join token.
dofile(os.getenv("BENCH_DIR") .. "/lua/common.lua")

function request()
  counter = counter + 1
  local name = string.format("bench%s-%d-%d-%d", os.getenv("BENCH_PREFIX") or "", os.time(), id, counter)
  return wrk.format("POST", "/api/v1/nodes/register", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_JOIN"),
  },
    '{"name": "' .. name .. '", "ip": "10.1.0.1", "capabilities": {"os": "linux", ' ..
    '"cpu_count": 8, "mem_mb": 16000, "disk_mb": 100000, ' ..
    '"docker": {"version": "24.0.0", "available": true}}}')
end
