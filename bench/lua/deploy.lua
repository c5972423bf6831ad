-- Create deployments with ids no other request uses; each is placed over the fleet.
dofile(os.getenv("BENCH_DIR") .. "/lua/common.lua")

function request()
  counter = counter + 1
  local name = string.format("bench%s-%d-%d-%d", os.getenv("BENCH_PREFIX") or "", os.time(), id, counter)
  return wrk.format("POST", "/api/v1/deployments", with_token({["Content-Type"] = "application/json"}),
    '{"deployment_id": "' .. name .. '", "template_id": "web", ' ..
    '"rendered_compose": "services:\\n  web:\\n    image: nginx\\n", ' ..
    '"env": {"MODE": "bench"}, "requirements": {"cpus": 0.01, "mem_mb": 16}}')
end
