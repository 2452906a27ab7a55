-- order.lua: POST /orders of one line (quantity 1), product id uniform in
-- [BENCH_ID_LO, BENCH_ID_HI] (LO = HI: every order on one hot row).  Tokens
-- rotate over a few users (BENCH_TOKENS).  The seeded products have stock
-- 10^9, so no order ever runs out.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

function init(args)
   bench_init()
   lo = env_int("BENCH_ID_LO", 1)
   hi = env_int("BENCH_ID_HI", lo)
end

function request()
   local body = string.format('{"items":[{"product_id":%d,"quantity":1}]}',
                              math.random(lo, hi))
   return wrk.format("POST", "/orders",
                     auth_headers({["Content-Type"] = "application/json"}), body)
end
