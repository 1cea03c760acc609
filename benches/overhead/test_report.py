#!/usr/bin/env python3
"""Tests of report.py's parsing and of traceparent.lua's done() (the latency
distributions of benches/overhead/run.sh), on fabricated load-generator output.

    python3 benches/overhead/test_report.py

The Lua tests run traceparent.lua under LuaJIT (Debian `luajit`, the Lua wrk
embeds) with a stand-in for wrk's latency statistics that follows wrk's
src/stats.c; without luajit they are skipped, or fail when CI is set.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import report  # noqa: E402

# 10 000 durations at the buckets' inclusive upper bounds and one above the
# last: every percentile lands on a different value, one rank off gives
# another one, and a bound counted in the wrong bucket shows.
FIXED = [100] * 5000 + [200] * 2500 + [500] * 1500 + [1000] * 900 + [2000] * 90 + [5000] * 9 + [20001]
FIXED_PERCENTILES = {"p50": 200, "p75": 500, "p90": 1000, "p99": 2000, "p99.9": 5000,
                     "p99.99": 20001, "max": 20001}
FIXED_BUCKETS = [0.5, 0.25, 0.15, 0.09, 0.009, 0.0009, 0.0, 0.0, 0.0001]

H2LOAD_SUMMARY = """starting benchmark...
finished in 2.00s, 5000.50 req/s, 1.20MB/s
requests: 10001 total, 10001 started, 10001 done, 10000 succeeded, 1 failed, 0 errored, 0 timeout
status codes: 10000 2xx, 0 3xx, 0 4xx, 1 5xx
"""

WRK_OUT = """Running 2s test @ http://127.0.0.1:1234/users/42
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   300.00us  100.00us  20.00ms   90.00%
  Latency Distribution
     50%  200.00us
     75%  500.00us
     90%    1.00ms
     99%    2.00ms
  10000 requests in 2.00s, 1.00MB read
Requests/sec:   5000.00
Transfer/sec:    500.00KB
"""


def lua_line(percentiles, buckets):
    return "latency-distribution " + json.dumps({
        "percentiles": percentiles,
        "buckets": [{"le_us": le, "fraction": f} for le, f in zip(report.BUCKET_LE_US + [None], buckets)],
    })


class Distribution(unittest.TestCase):
    def test_percentiles_and_buckets_of_known_durations(self):
        shuffled = FIXED[:]
        random.Random(7).shuffle(shuffled)
        d = report.distribution(shuffled)
        self.assertEqual(d["percentiles"], FIXED_PERCENTILES)
        self.assertEqual([b["le_us"] for b in d["buckets"]], report.BUCKET_LE_US + [None])
        for got, want in zip(d["buckets"], FIXED_BUCKETS):
            self.assertAlmostEqual(got["fraction"], want, places=12, msg=got)

    def test_single_sample(self):
        d = report.distribution([150])
        self.assertEqual(set(d["percentiles"].values()), {150})
        self.assertEqual([b["fraction"] for b in d["buckets"]], [0, 1, 0, 0, 0, 0, 0, 0, 0])

    def test_no_sample_is_an_error(self):
        with self.assertRaises(ValueError):
            report.distribution([])


class ParseH2load(unittest.TestCase):
    def test_log_file_gives_the_distribution_and_the_old_fields(self):
        with tempfile.TemporaryDirectory() as tmp:
            out, log = os.path.join(tmp, "h2load.txt"), os.path.join(tmp, "h2load.log")
            with open(out, "w", encoding="utf-8") as f:
                f.write(H2LOAD_SUMMARY)
            rows = [(1733370000000000 + i, 200, us) for i, us in enumerate(FIXED)]
            rows.append((1733370000999999, 503, 5000))   # a failed request still has a duration
            random.Random(3).shuffle(rows)
            with open(log, "w", encoding="utf-8") as f:
                f.writelines(f"{t}\t{status}\t{us}\n" for t, status, us in rows)
            got = report.parse_h2load(out, log)
        # 10 001 samples now, the 10 001st in (2000, 5000]: p50 is rank 5001,
        # p99 rank 9901, p99.9 rank 9991 (floor(p/100 * n) + 1).
        self.assertEqual(got["requests"], 10001)
        self.assertEqual(got["errors"], 1 + 1)   # 1 failed in the summary, 1 non-2xx in the log
        self.assertEqual(got["p50_us"], 200)
        self.assertEqual(got["p99_us"], 2000)
        self.assertEqual(got["latency"]["percentiles"]["p99.9"], 5000)
        self.assertAlmostEqual(got["latency"]["buckets"][0]["fraction"], 5000 / 10001, places=12)
        self.assertAlmostEqual(got["latency"]["buckets"][1]["fraction"], 2500 / 10001, places=12)
        self.assertAlmostEqual(got["latency"]["buckets"][5]["fraction"], 10 / 10001, places=12)
        self.assertAlmostEqual(got["latency"]["buckets"][8]["fraction"], 1 / 10001, places=12)
        self.assertAlmostEqual(sum(b["fraction"] for b in got["latency"]["buckets"]), 1.0, places=12)


class ParseWrk(unittest.TestCase):
    def parse(self, text):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "wrk.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            return report.parse_wrk(path)

    def test_reads_the_done_line(self):
        pct = dict(FIXED_PERCENTILES, p99=1996)   # exact µs; wrk printed 2.00ms
        got = self.parse(WRK_OUT + lua_line(pct, FIXED_BUCKETS) + "\n")
        self.assertEqual(got["p50_us"], 200.0)   # the old fields: from wrk's printout, as before
        self.assertEqual(got["p99_us"], 2000.0)
        self.assertEqual(got["latency"]["percentiles"], pct)
        self.assertEqual([b["fraction"] for b in got["latency"]["buckets"]], FIXED_BUCKETS)

    def test_missing_done_line_fails(self):
        with self.assertRaises(SystemExit):
            self.parse(WRK_OUT)

    def test_done_line_disagreeing_with_wrk_fails(self):
        # p50 in ms instead of µs, say: far from wrk's own 200.00us.
        pct = dict(FIXED_PERCENTILES, p50=0.2)
        with self.assertRaises(SystemExit):
            self.parse(WRK_OUT + lua_line(pct, FIXED_BUCKETS) + "\n")

    def test_incomplete_done_line_fails(self):
        pct = {k: v for k, v in FIXED_PERCENTILES.items() if k != "p99.9"}
        with self.assertRaises(SystemExit):
            self.parse(WRK_OUT + lua_line(pct, FIXED_BUCKETS) + "\n")


class Tables(unittest.TestCase):
    def rows(self):
        rows = []
        for rnd, scale in ((1, 1.0), (2, 1.2), (3, 1.1)):
            for v, slow in (("bare", 1.0), ("telemetry-init", 2.0)):
                lat = report.distribution([x * slow * scale for x in FIXED])
                rows.append({"round": rnd, "load": "h2c-c32", "variant": v, "rss_kib": 10240,
                             "cpu_us_per_req": 10.0 * slow, "rps": 1000 / slow, "errors": 0,
                             "spans_exported_per_req": 1.0, "latency": lat,
                             "p50_us": lat["percentiles"]["p50"], "p99_us": lat["percentiles"]["p99"]})
        for r in rows:
            r["rss_mib"] = r["rss_kib"] / 1024
        return rows

    def test_medians_and_ratios(self):
        _, final = report.medians(self.rows(), "h2c-c32")
        pct = final["telemetry-init"]["latency"]["percentiles"]
        # Median over rounds of 2 × 5000 × {1, 1.2, 1.1}; ratio to bare 2 in every round.
        self.assertAlmostEqual(pct["p99.9"][0], 11000.0)
        self.assertAlmostEqual(pct["p99.9"][1], 2.0)
        self.assertAlmostEqual(final["bare"]["latency"]["percentiles"]["max"][1], 1.0)
        text = report.distribution_tables(final, "h2c-c32", 3)
        self.assertIn("p99.9 µs (× bare)", text)
        self.assertIn("11000 (2.00×)", text)
        self.assertIn("≤100µs", text)
        self.assertIn(">20ms", text)


def luajit():
    path = shutil.which("luajit")
    if path is None:
        if os.environ.get("CI"):
            raise AssertionError("luajit is missing (Debian luajit): needed to test traceparent.lua")
        raise unittest.SkipTest("luajit is missing (apt-get install luajit)")
    return path


# wrk's latency statistics, as far as done() sees them (src/stats.c and
# src/script.c of wrk 4.1): counts per µs value; percentile(p) is the value of
# rank round(p/100 * n + 0.5) (C round: halves away from zero), 0 past the end.
HARNESS = r"""
wrk = { headers = {} }
dofile(arg[1])
for _, cb in ipairs({ "setup", "init", "request", "response", "delay" }) do
  if _G[cb] ~= nil then io.stderr:write("traceparent.lua defines " .. cb .. "()\n"); os.exit(3) end
end
local data, n, min, max = {}, 0, math.huge, 0
for line in io.lines() do
  local v = tonumber(line)
  data[v] = (data[v] or 0) + 1
  n = n + 1
  if v < min then min = v end
  if v > max then max = v end
end
local latency = { min = min, max = max, calls = 0 }
function latency:percentile(p)
  self.calls = self.calls + 1
  local rank = math.floor(p / 100 * n + 0.5 + 0.5)
  local total = 0
  for i = self.min, self.max do
    total = total + (data[i] or 0)
    if total >= rank then return i end
  end
  return 0
end
done({}, latency, {})
"""


class LuaDone(unittest.TestCase):
    def run_done(self, durations):
        with tempfile.TemporaryDirectory() as tmp:
            harness = os.path.join(tmp, "harness.lua")
            with open(harness, "w", encoding="utf-8") as f:
                f.write(HARNESS)
            proc = subprocess.run([luajit(), harness, os.path.join(HERE, "traceparent.lua")],
                                  input="".join(f"{d}\n" for d in durations), capture_output=True,
                                  text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return report.latency_line(proc.stdout, "done()")

    def assert_matches_python(self, durations):
        got, want = self.run_done(durations), report.distribution(durations)
        self.assertEqual(got["percentiles"], want["percentiles"])
        for g, w in zip(got["buckets"], want["buckets"]):
            self.assertEqual(g["le_us"], w["le_us"])
            self.assertAlmostEqual(g["fraction"], w["fraction"], places=8, msg=(g, w))

    def test_known_durations(self):
        got = self.run_done(FIXED)
        # As in wrk: the double 99.99 is a hair below 99.99, so with exactly
        # 10 000 samples percentile(99.99) is rank 9999, not 10 000.
        self.assertEqual(got["percentiles"], dict(FIXED_PERCENTILES, **{"p99.99": 5000}))
        for g, want in zip(got["buckets"], FIXED_BUCKETS):
            self.assertAlmostEqual(g["fraction"], want, places=8, msg=g)

    def test_random_durations_agree_with_the_h2load_reading(self):
        # A prime count: no percentile falls exactly between two ranks, where
        # wrk's floating-point rank and report.py's exact one could differ.
        rng = random.Random(11)
        durations = [max(1, int(rng.lognormvariate(6.5, 1.2))) for _ in range(10007)]
        self.assert_matches_python(durations)

    def test_all_below_the_first_bound_and_all_above_the_last(self):
        self.assert_matches_python([37] * 101)
        self.assert_matches_python([25000 + i for i in range(101)])


if __name__ == "__main__":
    unittest.main()
