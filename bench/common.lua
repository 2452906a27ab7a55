-- common.lua: shared by every wrk script in bench/ (loaded with dofile).
-- Settings come from the environment (bench/run.py sets them), because wrk
-- passes no arguments to setup().  done() prints one machine-readable line,
-- BENCH_JSON {...}, which bench/run.py parses: requests, non-2xx/3xx count,
-- socket errors and latency percentiles (microseconds).
--
--   BENCH_TOKENS  file with one access token per line (optional)

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("tid", counter)
   table.insert(threads, thread)
end

-- Per-thread state: a distinct random seed and the token list.
function bench_init()
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
   tokens = {}
   local path = os.getenv("BENCH_TOKENS")
   if path and path ~= "" then
      for line in io.lines(path) do
         if line ~= "" then table.insert(tokens, line) end
      end
   end
   token_i = 0
end

-- Next access token, round robin (nil when none were given).
function next_token()
   if #tokens == 0 then return nil end
   token_i = token_i % #tokens + 1
   return tokens[token_i]
end

-- Headers with an Authorization when tokens were given.
function auth_headers(h)
   h = h or {}
   local t = next_token()
   if t then h["Authorization"] = "Bearer " .. t end
   return h
end

function env_int(name, default)
   local v = os.getenv(name)
   if v == nil or v == "" then return default end
   return tonumber(v)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "status_errors": %d, ' ..
      '"connect": %d, "read": %d, "write": %d, "timeout": %d, ' ..
      '"p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, e.status, e.connect, e.read, e.write,
      e.timeout, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.mean))
end
