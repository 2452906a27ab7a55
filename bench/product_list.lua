-- product_list.lua: GET /products?limit=20, the first page, or with
-- BENCH_CURSOR the page after that cursor (the deep page).  The cursor is the
-- product service's own encoding (scripts/shoplib.py product_cursor, after
-- lib/http.c http_cursor_prefix): bench/run.py builds it for an id near the
-- end of the 1,000,000 seeded rows and checks the service accepts it and
-- answers the expected first id.
-- BENCH_Q adds &q=<it> (a search; bench/run.py seeds a rare word).
-- BENCH_NOCACHE=1 adds "Cache-Control: no-cache" so HAProxy's cache (which
-- also stores anonymous lists) skips its lookup: the row measures the service.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

function init(args)
   bench_init()
   local c = os.getenv("BENCH_CURSOR")
   path = "/products?limit=20"
   if c and c ~= "" then path = path .. "&cursor=" .. c end
   local q = os.getenv("BENCH_Q")
   if q and q ~= "" then path = path .. "&q=" .. q end
   nocache = os.getenv("BENCH_NOCACHE") == "1"
end

function request()
   local h = auth_headers()
   if nocache then h["Cache-Control"] = "no-cache" end
   return wrk.format("GET", path, h)
end
