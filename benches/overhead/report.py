#!/usr/bin/env python3
"""Tables for run.sh.

report.py parse WRK_OUT       -> prints JSON {requests, seconds, rps, p50_us, p99_us, errors}
report.py parse-h2load H2LOAD_OUT LOG_FILE -> the same for an h2load run (latencies from its
                                             per-request --log-file)
report.py round RAW.jsonl N LOAD -> prints the table of round N under load LOAD
report.py final RAW.jsonl OUT.json META.json -> prints the tables of medians (one per load),
                                                headed by date, commit and machine; writes OUT.json
"""
import json
import re
import statistics
import sys

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


def parse_h2load(path, log_path):
    """h2load's summary (request counts, req/s) and its per-request log
    (tab-separated: start time µs, status, duration µs) for the percentiles."""
    text = open(path, encoding="utf-8").read()
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
    durations.sort()
    pick = lambda q: float(durations[min(len(durations) - 1, int(q * len(durations)))])
    out["p50_us"], out["p99_us"] = pick(0.50), pick(0.99)
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
        final[v] = d
    return rounds, final


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
