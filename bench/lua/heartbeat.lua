-- POST a heartbeat for each seeded node in turn, with that node's token.
dofile(os.getenv("BENCH_DIR") .. "/lua/common.lua")
dofile(os.getenv("BENCH_NODES"))

function request()
  counter = counter + 1
  local node = nodes[((counter * 7 + id) % #nodes) + 1]
  return wrk.format("POST", "/api/v1/nodes/" .. node[1] .. "/heartbeat", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. node[2],
  }, '{"cpu_usage": 12.5, "mem_usage": 40.0, "disk_free_mb": 100000, "running_containers": ["web"]}')
end
