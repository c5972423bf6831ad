-- GET a fixed path (the root, or the node list).
dofile(os.getenv("BENCH_DIR") .. "/lua/common.lua")
