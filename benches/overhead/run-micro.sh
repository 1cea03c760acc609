#!/usr/bin/env bash
# Criterion micro-benchmarks of the per-request path (benches/middleware.rs).
#
#   benches/overhead/run-micro.sh [criterion filter]
#
# The layer writes one JSON access-log line to stdout per iteration, so the
# bench's stdout goes to a file and the results are read back from
# target/criterion (median time per iteration, with its 95% interval).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE"
if [[ "$(id -u)" == 0 ]]; then
  if [[ -z "${OVERHEAD_BENCH_SESSION:-}" ]] && command -v setsid >/dev/null; then
    OVERHEAD_BENCH_SESSION=1 exec setsid -w "$HERE/$(basename "$0")" "$@"
  fi
  echo -19 >/proc/self/autogroup 2>/dev/null || true
fi
LOG="$(mktemp /tmp/overhead-micro.XXXXXX)"
# No OTEL_* from the caller: the bench exports to its own in-process receiver.
env -i PATH="$PATH" HOME="$HOME" RUST_LOG=info ${CARGO_HOME:+CARGO_HOME="$CARGO_HOME"} ${RUSTUP_HOME:+RUSTUP_HOME="$RUSTUP_HOME"} \
  timeout 1800 cargo bench --bench middleware -- --noplot "$@" >/dev/null 2>"$LOG" \
  || { tail -50 "$LOG" >&2; exit 1; }
python3 - "$HERE/target/criterion" <<'PY'
import json, os, sys
root = sys.argv[1]
rows = []
for group in sorted(os.listdir(root)):
    gdir = os.path.join(root, group)
    if not os.path.isdir(gdir) or group == "report":
        continue
    for bench in sorted(os.listdir(gdir)):
        est = os.path.join(gdir, bench, "new", "estimates.json")
        if not os.path.exists(est):
            continue
        m = json.load(open(est))["median"]
        rows.append((f"{group}/{bench}", m["point_estimate"], m["confidence_interval"]["lower_bound"], m["confidence_interval"]["upper_bound"]))
def fmt(ns):
    return f"{ns/1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"
w = max(len(r[0]) for r in rows)
print(f"| {'benchmark'.ljust(w)} | median | 95% interval |")
print(f"|{'-'*(w+2)}|--------|--------------|")
for name, med, lo, hi in rows:
    print(f"| {name.ljust(w)} | {fmt(med)} | {fmt(lo)} – {fmt(hi)} |")
PY
echo "(criterion log: $LOG)" >&2
