-- GET a fixed path: the root (anonymous), or the node list (with the API token).
dofile(os.getenv("BENCH_DIR") .. "/lua/common.lua")

function request()
  if wrk.path == "/" then
    return wrk.format("GET", wrk.path)
  end
  return wrk.format("GET", wrk.path, with_token())
end
