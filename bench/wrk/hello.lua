-- wrk script: the ceiling, GET /v1/bench/hello (faasd frontend --bench-hello).
wrk.method = "GET"
wrk.path = "/v1/bench/hello"

function done(summary, latency, requests)
  io.write(string.format("requests=%d non_2xx=%d rate=%.0f/s p50=%.2fms p99=%.2fms max=%.2fms\n",
    summary.requests, summary.errors.status, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
