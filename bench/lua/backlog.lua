-- Create BENCH_BACKLOG deployments, then stop: a quarter ask for more than any node
-- has and stay pending, the rest are placed.
dofile(os.getenv("BENCH_DIR") .. "/lua/common.lua")

local wanted = tonumber(os.getenv("BENCH_BACKLOG") or "20000")

function request()
  counter = counter + 1
  if counter > wanted / 2 then
    wrk.thread:stop()
  end
  local name = string.format("backlog-%d-%d", id, counter)
  local cpus = (counter % 4 == 0) and 1000 or 0.001
  return wrk.format("POST", "/api/v1/deployments", with_token({["Content-Type"] = "application/json"}),
    '{"deployment_id": "' .. name .. '", "template_id": "web", ' ..
    '"rendered_compose": "services:\\n  web:\\n    image: nginx\\n", ' ..
    '"requirements": {"cpus": ' .. cpus .. ', "mem_mb": 1}}')
end
