-- wrk script: POST /v1/jobs with a valid bearer token (FAASD_BENCH_TOKEN).
--   FAASD_BENCH_TOKEN=... wrk -t2 -c64 -d20s --latency -s bench/wrk/submit.lua http://127.0.0.1:8080
-- Every request is a new job; non-202 answers are counted and reported.
local token = os.getenv("FAASD_BENCH_TOKEN")
if token == nil or token == "" then
  error("set FAASD_BENCH_TOKEN to a valid access token")
end
wrk.method = "POST"
wrk.path = "/v1/jobs"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"repo":{"url":"https://git.example.org/bench/fn.git","ref":"main"},' ..
           '"data":{"n":42,"text":"benchmark payload"},"timeout_s":30,"tags":["bench"]}'

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local bad = 0
function init(args)
  bad = 0
end

function response(status, headers, body)
  if status ~= 202 then
    bad = bad + 1
    if bad <= 3 then io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n") end
  end
end

function done(summary, latency, requests)
  local ok = summary.requests - summary.errors.status
  io.write(string.format("requests=%d non_2xx=%d rate=%.0f/s p50=%.2fms p99=%.2fms max=%.2fms\n",
    summary.requests, summary.errors.status, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
