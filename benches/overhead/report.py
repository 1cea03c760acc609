#!/usr/bin/env python3
"""Tables for run.sh.

report.py parse WRK_OUT       -> prints JSON {requests, seconds, rps, p50_us, p99_us, errors,
                                 latency: {percentiles, buckets}} (the latency distribution from
                                 the `latency-distribution` line of traceparent.lua's done())
report.py parse-h2load H2LOAD_OUT LOG_FILE -> the same for an h2load run (latencies from its
                                             per-request --log-file)
report.py round RAW.jsonl N LOAD -> prints the table of round N under load LOAD
report.py final RAW.jsonl OUT.json META.json -> prints the tables of medians (one per load),
                                                headed by date, commit and machine; writes OUT.json
"""
import bisect
import json
import re
import statistics
import sys
from fractions import Fraction

VARIANTS = ["bare", "tracelayer", "peers", "telemetry-init", "demo",
            "telemetry-init-logs-off", "telemetry-init-no-export"]
LOADS = ["h1-c32", "h1-c256", "h2c-c32"]
# (key, header, format, better)
METRICS = [
    ("cpu_us_per_req", "CPU µs/req", "{:.1f}"),
    ("rps", "req/s", "{:.0f}"),
    ("p50_us", "p50 µs", "{:.0f}"),
    ("p99_us", "p99 µs", "{:.0f}"),
    ("rss_mib", "peak RSS MiB", "{:.1f}"),
]
UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6}
# The latency distribution of every run: these percentiles (and the maximum),
# and the share of requests in each bucket: (previous bound, bound] in µs, the
# last one above 20 ms. traceparent.lua prints the same lists for wrk.
PERCENTILES = [("p50", "50"), ("p75", "75"), ("p90", "90"), ("p99", "99"),
               ("p99.9", "99.9"), ("p99.99", "99.99")]
PERCENTILE_KEYS = [k for k, _ in PERCENTILES] + ["max"]
BUCKET_LE_US = [100, 200, 500, 1000, 2000, 5000, 10000, 20000]


def to_us(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot read latency {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def distribution(durations_us):
    """The latency distribution of a list of request durations (µs):
    {"percentiles": {p50 .. p99.99, max}, "buckets": [{"le_us", "fraction"}, ...]}.

    A percentile p is the sample of rank floor(p/100 * n) + 1 (1-based,
    at most n): wrk's rule (round(p/100 * n + 0.5) in its src/stats.c), so that
    h1 and h2c runs are read alike. A bucket's fraction is the share of samples
    in (previous bound, le_us]; the last bucket (le_us None) holds the rest."""
    xs = sorted(durations_us)
    n = len(xs)
    if n == 0:
        raise ValueError("no latency samples")
    percentiles = {}
    for key, p in PERCENTILES:
        rank = min(n, int(Fraction(p) * n / 100) + 1)
        percentiles[key] = float(xs[rank - 1])
    percentiles["max"] = float(xs[-1])
    buckets, below = [], 0
    for le in BUCKET_LE_US:
        upto = bisect.bisect_right(xs, le)
        buckets.append({"le_us": le, "fraction": (upto - below) / n})
        below = upto
    buckets.append({"le_us": None, "fraction": (n - below) / n})
    return {"percentiles": percentiles, "buckets": buckets}


def check_distribution(dist, where):
    """Raises SystemExit unless dist has every percentile and bucket, in order."""
    pct = dist.get("percentiles", {})
    missing = [k for k in PERCENTILE_KEYS if not isinstance(pct.get(k), (int, float))]
    les = [b.get("le_us") for b in dist.get("buckets", [])]
    if missing or les != BUCKET_LE_US + [None]:
        raise SystemExit(f"{where}: latency distribution incomplete (percentiles missing: {missing},"
                         f" bucket bounds {les})")
    values = [pct[k] for k in PERCENTILE_KEYS]
    if values != sorted(values):
        raise SystemExit(f"{where}: percentiles not increasing: {pct}")


def latency_line(text, where):
    """The distribution printed by traceparent.lua's done() in wrk's output."""
    m = re.search(r"^latency-distribution (\{.*\})\s*$", text, re.M)
    if not m:
        raise SystemExit(f"{where}: no 'latency-distribution' line (run wrk with -s traceparent.lua)")
    dist = json.loads(m.group(1))
    check_distribution(dist, where)
    return dist


def parse_wrk(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = {}
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m)", text, re.M)
    if not m:
        raise SystemExit(f"{path}: no request count in wrk output:\n{text}")
    out["requests"] = int(m.group(1))
    out["seconds"] = to_us(m.group(2) + m.group(3)) / 1e6
    m = re.search(r"^Requests/sec:\s*([0-9.]+)", text, re.M)
    out["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_us"), ("99", "p99_us")):
        m = re.search(rf"^\s*{pct}(?:\.000)?%\s+(\S+)", text, re.M)
        if not m:
            raise SystemExit(f"{path}: no {pct}% latency (run wrk with --latency)")
        out[key] = to_us(m.group(1))
    # The distribution, from traceparent.lua's done(): exact µs (wrk prints
    # 2 decimals of its unit). Cross-checked against the printout, which rounds.
    dist = latency_line(text, path)
    for key in ("p50", "p99"):
        exact, printed = dist["percentiles"][key], out[f"{key}_us"]
        if abs(exact - printed) > max(0.01, printed * 0.0075):
            raise SystemExit(f"{path}: {key} {exact} µs from done() but {printed} µs printed by wrk")
    out["latency"] = dist
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(g) for g in m.groups())
    out["errors"] = errors
    return out


def parse_h2load(path, log_path):
    """h2load's summary (request counts, req/s) and its per-request log
    (tab-separated: start time µs, status, duration µs) for the percentiles."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    out = {}
    m = re.search(r"^finished in ([0-9.]+)(us|ms|s|m), ([0-9.]+) req/s", text, re.M)
    if not m:
        raise SystemExit(f"{path}: no 'finished in' line in h2load output:\n{text}")
    out["seconds"] = to_us(m.group(1) + m.group(2)) / 1e6
    out["rps"] = float(m.group(3))
    m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text, re.M)
    if not m:
        raise SystemExit(f"{path}: no 'requests:' line in h2load output:\n{text}")
    done, succeeded = int(m.group(3)), int(m.group(4))
    out["requests"] = done
    durations = []
    non2xx = 0
    with open(log_path, encoding="utf-8") as f:
        for line in f:
            cols = line.split()
            if len(cols) < 3:
                continue
            if not cols[1].startswith("2"):
                non2xx += 1
            durations.append(int(cols[2]))
    if not durations:
        raise SystemExit(f"{log_path}: no requests logged")
    out["latency"] = distribution(durations)
    out["p50_us"] = out["latency"]["percentiles"]["p50"]
    out["p99_us"] = out["latency"]["percentiles"]["p99"]
    out["errors"] = (done - succeeded) + int(m.group(6)) + int(m.group(7)) + non2xx
    return out


def load(raw):
    rows = [json.loads(line) for line in open(raw, encoding="utf-8") if line.strip()]
    for r in rows:
        r["rss_mib"] = r["rss_kib"] / 1024.0
        r.setdefault("load", "h1-c32")
    return rows


def ratio(value, base):
    return value / base if base else float("nan")


def fmt_row(cells, widths):
    return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"


def table(rows_by_variant, title):
    """rows_by_variant: variant -> dict(metric -> (value, ratio), 'dcpu' -> value)."""
    header = ["variant"] + [h for _, h, _ in METRICS] + ["Δ CPU µs/req vs bare", "spans/req", "errors"]
    lines = []
    for v in VARIANTS:
        if v not in rows_by_variant:
            continue
        d = rows_by_variant[v]
        cells = [v]
        for key, _, f in METRICS:
            val, rat = d[key]
            cells.append(f"{f.format(val)} ({rat:.2f}×)")
        cells.append(f"{d['dcpu']:+.1f}")
        cells.append(f"{d['spans']:.2f}")
        cells.append(str(d["errors"]))
        lines.append(cells)
    widths = [max(len(r[i]) for r in [header] + lines) for i in range(len(header))]
    out = [title, "", fmt_row(header, widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt_row(r, widths) for r in lines]
    return "\n".join(out)


def round_table(rows, n, load_name):
    rs = {r["variant"]: r for r in rows if r["round"] == n and r["load"] == load_name}
    base = rs.get("bare")
    data = {}
    for v, r in rs.items():
        d = {key: (r[key], ratio(r[key], base[key]) if base else float("nan")) for key, _, _ in METRICS}
        d["dcpu"] = r["cpu_us_per_req"] - base["cpu_us_per_req"] if base else float("nan")
        d["errors"] = r["errors"]
        d["spans"] = r.get("spans_exported_per_req", float("nan"))
        if "latency" in r:
            bl = base.get("latency") if base else None
            d["latency"] = {
                "percentiles": {k: (r["latency"]["percentiles"][k],
                                    ratio(r["latency"]["percentiles"][k], bl["percentiles"][k])
                                    if bl else float("nan"))
                                for k in PERCENTILE_KEYS},
                "buckets": [b["fraction"] for b in r["latency"]["buckets"]],
            }
        data[v] = d
    return data


def medians(rows, load_name):
    rounds = sorted({r["round"] for r in rows if r["load"] == load_name})
    per_round = {n: round_table(rows, n, load_name) for n in rounds}
    final = {}
    for v in VARIANTS:
        got = [per_round[n][v] for n in rounds if v in per_round[n]]
        if not got:
            continue
        d = {}
        for key, _, _ in METRICS:
            d[key] = (statistics.median(g[key][0] for g in got), statistics.median(g[key][1] for g in got))
        d["dcpu"] = statistics.median(g["dcpu"] for g in got)
        d["errors"] = sum(g["errors"] for g in got)
        d["spans"] = statistics.median(g["spans"] for g in got)
        # Issue 13, goal 1: the full stack's CPU overhead in units of
        # TraceLayer's (median of the per-round quotients).
        q = [g["dcpu"] / per_round[n]["tracelayer"]["dcpu"] for n, g in
             ((n, per_round[n][v]) for n in rounds if v in per_round[n])
             if "tracelayer" in per_round[n] and per_round[n]["tracelayer"]["dcpu"] > 0]
        d["overhead_vs_tracelayer"] = statistics.median(q) if q else float("nan")
        lat = [g["latency"] for g in got if "latency" in g]
        if lat:
            d["latency"] = {
                "percentiles": {k: (statistics.median(x["percentiles"][k][0] for x in lat),
                                    statistics.median(x["percentiles"][k][1] for x in lat))
                                for k in PERCENTILE_KEYS},
                "buckets": [statistics.median(x["buckets"][i] for x in lat)
                            for i in range(len(BUCKET_LE_US) + 1)],
            }
        final[v] = d
    return rounds, final


# The percentiles shown with their ratio to bare in the distribution table.
TAIL_RATIOS = ("p99", "p99.9", "p99.99")


def bucket_label(le_us):
    if le_us is None:
        return f">{bucket_label(BUCKET_LE_US[-1])[1:]}"
    return f"≤{le_us // 1000}ms" if le_us >= 1000 else f"≤{le_us}µs"


def percent(fraction):
    if fraction == 0:
        return "0"
    if fraction < 0.0001:
        return "<0.01%"
    return f"{fraction * 100:.2f}%"


def plain_table(header, lines):
    widths = [max(len(r[i]) for r in [header] + lines) for i in range(len(header))]
    out = [fmt_row(header, widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(out + [fmt_row(r, widths) for r in lines])


def distribution_tables(final, load_name, n_rounds):
    """The latency distribution of each variant (medians over rounds): its
    percentiles, then the share of requests per bucket. Empty when no run of
    this load recorded a distribution."""
    with_lat = [v for v in VARIANTS if v in final and "latency" in final[v]]
    if not with_lat:
        return ""
    header = ["variant"] + [f"{k} µs" + (" (× bare)" if k in TAIL_RATIOS else "") for k in PERCENTILE_KEYS]
    lines = []
    for v in with_lat:
        pct = final[v]["latency"]["percentiles"]
        lines.append([v] + [f"{pct[k][0]:.0f}" + (f" ({pct[k][1]:.2f}×)" if k in TAIL_RATIOS else "")
                            for k in PERCENTILE_KEYS])
    out = [f"Load {load_name}: latency distribution, medians over {n_rounds} rounds"
           " (ratio: median of the per-round ratios to bare)", "", plain_table(header, lines), ""]
    header = ["variant"] + [bucket_label(le) for le in BUCKET_LE_US + [None]]
    lines = [[v] + [percent(f) for f in final[v]["latency"]["buckets"]] for v in with_lat]
    out += [f"Load {load_name}: share of requests per latency bucket (each bucket: above the previous"
            " bound, up to its own), medians over rounds (need not add up to 100 %)", "",
            plain_table(header, lines)]
    return "\n".join(out)


def goals_of(final):
    if "telemetry-init" not in final or "bare" not in final:
        return None
    o = final["telemetry-init"]
    return {
        "cpu_overhead_le_tracelayer": {"value": round(o["overhead_vs_tracelayer"], 3),
                                       "pass": o["overhead_vs_tracelayer"] <= 1.0},
        "throughput_ratio_ge_0.5": {"value": round(o["rps"][1], 3), "pass": o["rps"][1] >= 0.5},
        "p99_ratio_le_2": {"value": round(o["p99_us"][1], 3), "pass": o["p99_us"][1] <= 2.0},
        "rss_ratio_le_2": {"value": round(o["rss_mib"][1], 3), "pass": o["rss_mib"][1] <= 2.0},
    }


def main():
    cmd = sys.argv[1]
    if cmd == "parse":
        print(json.dumps(parse_wrk(sys.argv[2])))
    elif cmd == "parse-h2load":
        print(json.dumps(parse_h2load(sys.argv[2], sys.argv[3])))
    elif cmd == "round":
        rows = load(sys.argv[2])
        n = int(sys.argv[3])
        load_name = sys.argv[4] if len(sys.argv) > 4 else "h1-c32"
        print(table(round_table(rows, n, load_name),
                    f"Round {n}, load {load_name} (ratio to bare of this round and load in parentheses)"))
        print()
    elif cmd == "final":
        rows = load(sys.argv[2])
        meta = json.load(open(sys.argv[4], encoding="utf-8"))
        print(f"Run of {meta['date_utc']} at commit {meta['git_head']}"
              f" ({meta['uncommitted_files_under_crates']} uncommitted files under crates/, examples/);"
              f" machine: {meta['cpus']} x {meta['cpu_model']}, Linux {meta['kernel']}, {meta['rustc']};"
              f" load average {' '.join(meta['loadavg_at_start'])} at start;"
              f" command: {meta['command']}")
        print("Ratios are to bare of the same round and load; absolute values hold for this run only.")
        loads = [l for l in LOADS if any(r["load"] == l for r in rows)]
        result_medians, result_goals = {}, {}
        for load_name in loads:
            rounds, final = medians(rows, load_name)
            print()
            print(table(final, f"Load {load_name}: medians over {len(rounds)} rounds"
                               " (value: median; ratio: median of the per-round ratios to bare)"))
            dist = distribution_tables(final, load_name, len(rounds))
            if dist:
                print()
                print(dist)
            if "tracelayer" in final:
                print()
                print("CPU overhead in units of tracelayer's ((variant - bare) / (tracelayer - bare), median of rounds):")
                for v, d in final.items():
                    if v not in ("bare", "tracelayer"):
                        print(f"  {v}: {d['overhead_vs_tracelayer']:.2f}")
            goals = goals_of(final)
            if goals:
                print()
                print(f"Goals for telemetry-init (full stack), load {load_name}:")
                for k, g in goals.items():
                    print(f"  {k}: {g['value']} {'PASS' if g['pass'] else 'FAIL'}")
            result_goals[load_name] = goals
            result_medians[load_name] = {
                v: {
                    **{key: {"median": d[key][0], "ratio_to_bare": d[key][1]} for key, _, _ in METRICS},
                    "cpu_delta_us_vs_bare": d["dcpu"],
                    "cpu_overhead_vs_tracelayer": d["overhead_vs_tracelayer"],
                    "errors": d["errors"],
                    "spans_exported_per_req": d["spans"],
                    **({"latency": {
                        "percentiles": {k: {"median": m, "ratio_to_bare": r}
                                        for k, (m, r) in d["latency"]["percentiles"].items()},
                        "buckets": [{"le_us": le, "fraction_median": f} for le, f in
                                    zip(BUCKET_LE_US + [None], d["latency"]["buckets"])],
                    }} if "latency" in d else {}),
                }
                for v, d in final.items()
            }
        result = {"meta": meta, "rounds": rows, "medians": result_medians, "goals": result_goals}
        with open(sys.argv[3], "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
