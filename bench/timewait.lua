-- wrk script for bench/timewait: POSTs to create chats at a paced rate (each connection
-- waits TW_DELAY_MS between its requests) and prints one machine-readable line from
-- done(): requests, achieved rate, and how many answers were not 201.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local pause = tonumber(os.getenv("TW_DELAY_MS") or "0")
local threads = {}
-- Global, not local: done() reads it from each thread with thread:get().
not201 = 0

function setup(thread)
  table.insert(threads, thread)
end

function delay()
  return pause
end

function response(status)
  if status ~= 201 then
    not201 = not201 + 1
  end
end

function done(summary, latency, requests)
  local failed = 0
  for _, t in ipairs(threads) do
    failed = failed + (t:get("not201") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    "TIMEWAIT requests=%d rps=%.1f not201=%d sockerr=%d p99_ms=%.3f\n",
    summary.requests,
    summary.requests / (summary.duration / 1e6),
    failed,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(99) / 1000))
end
