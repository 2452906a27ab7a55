-- plain.lua: a fixed GET of the URL given to wrk (static file, hello).
-- Only adds common.lua's summary line.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
