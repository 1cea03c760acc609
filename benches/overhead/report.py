#!/usr/bin/env python3
"""Tables for run.sh.

report.py parse WRK_OUT       -> prints JSON {requests, seconds, rps, p50_us, p99_us, errors}
report.py round RAW.jsonl N   -> prints the table of round N
report.py final RAW.jsonl OUT.json META.json -> prints the table of medians, writes OUT.json
"""
import json
import re
import statistics
import sys

VARIANTS = ["bare", "tracelayer", "peers", "telemetry-init",
            "telemetry-init-logs-off", "telemetry-init-no-export"]
# (key, header, format, better)
METRICS = [
    ("cpu_us_per_req", "CPU µs/req", "{:.1f}"),
    ("rps", "req/s", "{:.0f}"),
    ("p50_us", "p50 µs", "{:.0f}"),
    ("p99_us", "p99 µs", "{:.0f}"),
    ("rss_mib", "peak RSS MiB", "{:.1f}"),
]
UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6}


def to_us(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot read latency {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(path):
    text = open(path, encoding="utf-8").read()
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
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        errors += sum(int(g) for g in m.groups())
    out["errors"] = errors
    return out


def load(raw):
    rows = [json.loads(line) for line in open(raw, encoding="utf-8") if line.strip()]
    for r in rows:
        r["rss_mib"] = r["rss_kib"] / 1024.0
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


def round_table(rows, n):
    rs = {r["variant"]: r for r in rows if r["round"] == n}
    base = rs.get("bare")
    data = {}
    for v, r in rs.items():
        d = {key: (r[key], ratio(r[key], base[key]) if base else float("nan")) for key, _, _ in METRICS}
        d["dcpu"] = r["cpu_us_per_req"] - base["cpu_us_per_req"] if base else float("nan")
        d["errors"] = r["errors"]
        d["spans"] = r.get("spans_exported_per_req", float("nan"))
        data[v] = d
    return data


def main():
    cmd = sys.argv[1]
    if cmd == "parse":
        print(json.dumps(parse_wrk(sys.argv[2])))
    elif cmd == "round":
        rows = load(sys.argv[2])
        n = int(sys.argv[3])
        print(table(round_table(rows, n), f"Round {n} (ratio to bare of this round in parentheses)"))
        print()
    elif cmd == "final":
        rows = load(sys.argv[2])
        meta = json.load(open(sys.argv[4], encoding="utf-8"))
        rounds = sorted({r["round"] for r in rows})
        per_round = {n: round_table(rows, n) for n in rounds}
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
            final[v] = d
        print(table(final, f"Medians over {len(rounds)} rounds (value: median; ratio: median of the per-round ratios to bare)"))
        goals = None
        if "telemetry-init" in final and "bare" in final:
            o = final["telemetry-init"]
            goals = {
                "cpu_delta_us_le_10": {"value": round(o["dcpu"], 2), "pass": o["dcpu"] <= 10.0},
                "throughput_ratio_ge_0.5": {"value": round(o["rps"][1], 3), "pass": o["rps"][1] >= 0.5},
                "p99_ratio_le_2": {"value": round(o["p99_us"][1], 3), "pass": o["p99_us"][1] <= 2.0},
                "rss_ratio_le_2": {"value": round(o["rss_mib"][1], 3), "pass": o["rss_mib"][1] <= 2.0},
            }
            print()
            print("Goals for telemetry-init (full stack) vs bare:")
            for k, g in goals.items():
                print(f"  {k}: {g['value']} {'PASS' if g['pass'] else 'FAIL'}")
        result = {
            "meta": meta,
            "rounds": rows,
            "medians": {
                v: {
                    **{key: {"median": d[key][0], "ratio_to_bare": d[key][1]} for key, _, _ in METRICS},
                    "cpu_delta_us_vs_bare": d["dcpu"],
                    "errors": d["errors"],
                    "spans_exported_per_req": d["spans"],
                }
                for v, d in final.items()
            },
            "goals": goals,
        }
        with open(sys.argv[3], "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
