#!/usr/bin/env bash
# Profiles one variant (default: telemetry-init) under the run.sh load with
# `perf record` (cpu-clock sampling, DWARF call graphs) and prints where the
# server's CPU goes.
#
#   benches/overhead/profile.sh [variant=telemetry-init] [seconds=8]
#
# Needs `perf` (Debian: linux-perf). Same pinning as run.sh: server on CPU 0,
# wrk and the sink on CPU 1. Output: $OUT (default /tmp/overhead-profile)/
# perf.data, report-self.txt (flat, by symbol), report-children.txt
# (inclusive), script.txt (call stacks), and on stdout the CPU split by
# request-path component (profile_breakdown.py), in % and µs per request.
set -euo pipefail
VARIANT="${1:-telemetry-init}"
SECONDS_="${2:-8}"
[[ "$SECONDS_" =~ ^[0-9]+$ ]] && (( SECONDS_ >= 1 && SECONDS_ <= 60 )) || { echo "seconds: 1..60" >&2; exit 2; }
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${OUT:-/tmp/overhead-profile}"
if [[ "$(id -u)" == 0 ]]; then
  if [[ -z "${OVERHEAD_BENCH_SESSION:-}" ]] && command -v setsid >/dev/null; then
    OVERHEAD_BENCH_SESSION=1 exec setsid -w "$HERE/$(basename "$0")" "$@"
  fi
  echo -19 >/proc/self/autogroup 2>/dev/null || true
fi
command -v perf >/dev/null || { echo "perf is missing (apt-get install linux-perf)" >&2; exit 2; }
cd "$HERE"
timeout 3600 cargo build --release --bins >&2
BIN="$HERE/target/release"
mkdir -p "$OUT"
SINK_PID="" SERVER_PID=""
cleanup() {
  for pid in $SERVER_PID $SINK_PID; do
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
taskset -c 1 "$BIN/sink" >"$OUT/sink.out" 2>"$OUT/sink.err" &
SINK_PID=$!
for _ in $(seq 100); do grep -q '^http://' "$OUT/sink.out" 2>/dev/null && break; sleep 0.1; done
SINK="$(head -1 "$OUT/sink.out")"
case "$VARIANT" in
  bare) bin=bare; extra=() ;;
  tracelayer) bin=tracelayer; extra=() ;;
  peers) bin=peers; extra=(OTEL_SERVICE_NAME=peers OTEL_TRACES_SAMPLER=always_on
           OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="$SINK" OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc) ;;
  telemetry-init) bin=ours; extra=(OTEL_SERVICE_NAME=telemetry-init OTEL_TRACES_SAMPLER=always_on
           OTEL_EXPORTER_OTLP_ENDPOINT="$SINK") ;;
  *) echo "unknown variant $VARIANT" >&2; exit 2 ;;
esac
rm -f "$OUT/server.err"
env -i PATH=/usr/bin:/bin LISTEN_ADDR=127.0.0.1:0 RUST_LOG=info "${extra[@]}" \
  nice -n -19 taskset -c 0 "$BIN/$bin" >/dev/null 2>"$OUT/server.err" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q 'listening on' "$OUT/server.err" 2>/dev/null && break; sleep 0.1; done
ADDR="$(grep -oE '127\.0\.0\.1:[0-9]+' "$OUT/server.err" | head -1)"
URL="http://$ADDR/users/42"
timeout 30 taskset -c 1 wrk -t1 -c32 -d2s -s "$HERE/traceparent.lua" "$URL" >/dev/null
timeout $(( SECONDS_ + 30 )) nice -n -19 taskset -c 1 wrk -t1 -c32 -d$(( SECONDS_ + 2 ))s -s "$HERE/traceparent.lua" "$URL" >"$OUT/wrk.txt" &
WRK=$!
sleep 1
T0="$(awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat")"
timeout $(( SECONDS_ + 60 )) perf record -e cpu-clock -F 999 -m 16M --call-graph dwarf,16384 -p "$SERVER_PID" \
  -o "$OUT/perf.data" -- sleep "$SECONDS_" 2>"$OUT/perf-record.err" >/dev/null
T1="$(awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat")"
wait "$WRK"
timeout 600 perf report -i "$OUT/perf.data" --no-children --sort sym --percent-limit 0.3 --stdio -g none \
  >"$OUT/report-self.txt" 2>/dev/null
timeout 600 perf report -i "$OUT/perf.data" --children --sort sym --percent-limit 1 --stdio -g none \
  >"$OUT/report-children.txt" 2>/dev/null
timeout 1800 perf script -i "$OUT/perf.data" -F comm,ip,sym 2>/dev/null >"$OUT/script.txt"
RPS="$(awk '/^Requests\/sec:/ { print $2 }' "$OUT/wrk.txt")"
echo "variant $VARIANT; wrk: $RPS req/s; perf: $(grep -oE '\([0-9]+ samples\)' "$OUT/perf-record.err")"
# The server's CPU per request while perf recorded (requests ~ rate x time;
# the profiler's own cost included), to turn each component's share into µs.
CPU_US="$(python3 -c "print(round(($T1 - $T0) * 1e6 / $(getconf CLK_TCK) / (float('$RPS') * $SECONDS_), 2))")"
echo "server CPU while profiled: $CPU_US µs/request"
python3 "$HERE/profile_breakdown.py" "$OUT/script.txt" "$CPU_US"
echo "profile in $OUT (report-self.txt, report-children.txt)"
