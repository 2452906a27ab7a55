-- product_get.lua: GET /products/{id}, id uniform in [BENCH_ID_LO, BENCH_ID_HI].
-- BENCH_NOCACHE=1 adds "Cache-Control: no-cache", which makes HAProxy's cache
-- skip its lookup (the response still comes from the service).
-- BENCH_TOKENS set: every request carries a Bearer token (ES256 verify in the
-- service; HAProxy never caches requests with Authorization).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

function init(args)
   bench_init()
   lo = env_int("BENCH_ID_LO", 1)
   hi = env_int("BENCH_ID_HI", lo)
   nocache = os.getenv("BENCH_NOCACHE") == "1"
end

function request()
   local h = auth_headers()
   if nocache then h["Cache-Control"] = "no-cache" end
   return wrk.format("GET", "/products/" .. math.random(lo, hi), h)
end
