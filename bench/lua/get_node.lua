-- GET one seeded node after another.
dofile(os.getenv("BENCH_DIR") .. "/lua/common.lua")
dofile(os.getenv("BENCH_NODES"))

function request()
  counter = counter + 1
  local node = nodes[((counter * 7 + id) % #nodes) + 1]
  return wrk.format("GET", "/api/v1/nodes/" .. node[1], with_token())
end
