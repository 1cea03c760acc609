-- Sends a sampled W3C `traceparent` on every request, so that the servers'
-- propagation (extraction and parent-based sampling) is on the measured path.
-- A constant header keeps wrk's cost per request at its minimum (wrk builds
-- the request once): this script has no request() or response() callback on
-- purpose; done() below runs once, after the load.
wrk.method = "GET"
wrk.headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

-- The percentiles reported in the `latency-distribution` line, and the upper
-- bounds (µs, inclusive) of the histogram's buckets; one more bucket holds
-- everything above the last bound. report.py reads the line (same lists).
local PERCENTILES = { { "p50", 50 }, { "p75", 75 }, { "p90", 90 }, { "p99", 99 },
                      { "p99.9", 99.9 }, { "p99.99", 99.99 } }
local BUCKET_LE_US = { 100, 200, 500, 1000, 2000, 5000, 10000, 20000 }

-- Fraction of the latency samples <= le_us, exact: wrk's
-- latency:percentile(p) is the sample of rank round(p/100 * n + 0.5)
-- (src/stats.c), so percentile(p) <= le_us exactly when
-- p < 100 * count(<= le_us) / n. Bisecting p in [0, 100) converges on that
-- threshold (40 halvings: within 1e-12 of the fraction). wrk's Lua API has no
-- sample count, and latency(i) (the i-th distinct value) costs a scan per
-- call, so this is the cheapest exact way.
local function fraction_le(latency, le_us)
  if latency.min > latency.max then return 0 end -- no samples at all
  if le_us >= latency.max then return 1 end
  if le_us < latency.min then return 0 end
  local lo, hi = 0, 100 -- percentile(lo) <= le_us < percentile(hi)
  for _ = 1, 40 do
    local mid = (lo + hi) / 2
    if latency:percentile(mid) <= le_us then lo = mid else hi = mid end
  end
  return hi / 100
end

-- Prints one machine-readable line (JSON after the tag), in µs. The samples
-- are wrk's latency statistics after its coordinated-omission correction, the
-- same ones behind its --latency printout.
function done(summary, latency, requests)
  local parts = {}
  for _, p in ipairs(PERCENTILES) do
    parts[#parts + 1] = string.format('"%s":%.0f', p[1], latency:percentile(p[2]))
  end
  parts[#parts + 1] = string.format('"max":%.0f', latency.max)
  local buckets, below = {}, 0
  for _, le in ipairs(BUCKET_LE_US) do
    local f = fraction_le(latency, le)
    buckets[#buckets + 1] = string.format('{"le_us":%d,"fraction":%.9f}', le, f - below)
    below = f
  end
  -- No samples (nothing answered): every fraction 0, not 100 % above 20 ms.
  local rest = latency.min > latency.max and 0 or 1 - below
  buckets[#buckets + 1] = string.format('{"le_us":null,"fraction":%.9f}', rest)
  io.write(string.format('latency-distribution {"percentiles":{%s},"buckets":[%s]}\n',
    table.concat(parts, ","), table.concat(buckets, ",")))
end
