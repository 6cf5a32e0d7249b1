-- wrk script for bench/run: POSTs BENCH_BODY (JSON) and prints one machine-readable
-- line in done(). wrk's percentiles are in microseconds; printed here in ms.
-- `non2xx` is wrk's errors.status (responses with status > 399, what wrk reports as
-- "Non-2xx or 3xx responses"); `sockerr` sums connect/read/write/timeout errors.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or ""
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f non2xx=%d sockerr=%d\n",
    summary.requests,
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    e.status,
    e.connect + e.read + e.write + e.timeout))
end
