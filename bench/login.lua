-- login.lua: POST /auth/login with one bench user's credentials
-- (BENCH_EMAIL, BENCH_PASSWORD).  Each login verifies an Argon2id hash and
-- stores a refresh token.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

function init(args)
   bench_init()
   body = string.format('{"email":"%s","password":"%s"}',
                        os.getenv("BENCH_EMAIL"), os.getenv("BENCH_PASSWORD"))
end

function request()
   return wrk.format("POST", "/auth/login",
                     {["Content-Type"] = "application/json"}, body)
end
