#!/usr/bin/env bash
# The overhead benchmark of telemetry-init: four axum hello-world servers
# (bare, tracelayer, peers, telemetry-init) and the release `demo` as users
# run it, under the same loads.
#
#   benches/overhead/run.sh [rounds=5] [duration=10s]
#
# The server is pinned to CPU 0 (`taskset -c 0`, so tokio runs one worker),
# the load generator and the discarding OTLP sink to CPU 1. Loads (LOADS, all
# three by default):
#   h1-c32   wrk -t1 -c32 --latency            (HTTP/1.1 keep-alive, 32 connections)
#   h1-c256  wrk -t1 -c256 --latency           (256 connections)
#   h2c-c32  h2load -t1 -c32 -m1 (Debian nghttp2-client), HTTP/2 over cleartext
#            with prior knowledge, 32 connections of one stream each (the
#            same concurrency as h1-c32: only the protocol differs);
#            latencies from its per-request --log-file.
# Rounds interleave loads and variants (round 1: h1-c32 bare, tracelayer, ...,
# h1-c256 bare, ...; round 2: ...). Per run: 2 s of warm-up, then the load for
# <duration> on /users/42 with a sampled `traceparent` on every request; the
# server's CPU time (utime+stime from /proc/<pid>/stat) over the measured run
# divided by the requests served; p50/p99; req/s; peak RSS (VmHWM) after the
# load; the latency distribution (p50 ... p99.99, max, and the share of
# requests per log-spaced bucket: from traceparent.lua's done() for wrk, from
# the per-request log for h2load). Prints a table per round and load, and a
# table of medians per load (each metric also as the median of its per-round
# ratios to bare of the same load) followed by the latency distribution's
# tables, headed by the run's date, commit and machine, and writes
# results/latest.json (RESULTS_JSON=path writes elsewhere, e.g. for a smoke
# run). Everything listens on 127.0.0.1 only and every step is time-bounded.
set -euo pipefail

ROUNDS="${1:-5}"
DURATION="${2:-10s}"
[[ "$ROUNDS" =~ ^[0-9]+$ ]] && (( ROUNDS >= 1 && ROUNDS <= 50 )) \
  || { echo "rounds must be 1..50, got '$ROUNDS'" >&2; exit 2; }
[[ "$DURATION" =~ ^([0-9]+)s$ ]] && (( ${BASH_REMATCH[1]} >= 1 && ${BASH_REMATCH[1]} <= 300 )) \
  || { echo "duration must be like 10s (1s..300s), got '$DURATION'" >&2; exit 2; }
DURATION_S="${DURATION%s}"

HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE"
# When root, the runner raises its priority in a session of its own (see
# NICE below): it re-executes itself under setsid first, before any
# variable is turned into an array (bash does not export arrays, so
# LOADS="h1-c32 h2c-c32" was lost when the re-exec came after it).
if [[ "$(id -u)" == 0 && -z "${OVERHEAD_BENCH_SESSION:-}" ]] && command -v setsid >/dev/null; then
  OVERHEAD_BENCH_SESSION=1 exec setsid -w "$HERE/$(basename "$0")" "$@"
fi
BIN="$HERE/target/release"
ROOT="$(cd "$HERE/../.." && pwd)"
# The demo is a member of the main workspace: its release binary lives there.
DEMO_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/demo"
LUA="$HERE/traceparent.lua"
PATH_UNDER_TEST="/users/42"
TRACEPARENT="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
RESULTS_JSON="${RESULTS_JSON:-$HERE/results/latest.json}"

read -r -a LOADS <<<"${LOADS:-h1-c32 h1-c256 h2c-c32}"
for l in "${LOADS[@]}"; do
  case "$l" in
    h1-c32|h1-c256|h2c-c32) ;;
    *) echo "unknown load $l (h1-c32, h1-c256, h2c-c32)" >&2; exit 2 ;;
  esac
done

if (( $(nproc) < 2 )); then
  echo "needs at least 2 CPUs (server on CPU 0, load generator on CPU 1)" >&2; exit 2
fi
# wrk for HTTP/1.1, h2load (Debian nghttp2-client) for h2c.
need_pkg() {
  local tool="$1" pkg="$2"
  command -v "$tool" >/dev/null && return 0
  if [[ "$(id -u)" == 0 ]]; then
    timeout 300 apt-get install -y "$pkg" >/dev/null
  else
    echo "$tool is missing: apt-get install -y $pkg" >&2; exit 2
  fi
}
need_pkg wrk wrk
[[ " ${LOADS[*]} " == *" h2c-"* ]] && need_pkg h2load nghttp2-client
for tool in taskset python3 curl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing" >&2; exit 2; }
done

# What is measured: the library as it is in this working tree.
GIT_HEAD="$(git -C "$HERE" rev-parse --short HEAD 2>/dev/null || echo unknown)"
GIT_DIRTY="$(git -C "$HERE/../.." status --porcelain -- crates examples 2>/dev/null | wc -l)"
echo "== building (release) at $GIT_HEAD ($GIT_DIRTY uncommitted files under crates/ and examples/)" >&2
timeout 3600 cargo build --release --bins >&2
if [[ " ${VARIANTS:-demo} " == *" demo "* ]]; then
  echo "== building the demo (release, main workspace)" >&2
  (cd "$ROOT" && timeout 3600 cargo build --release -p demo --bin demo >&2)
fi

# Other work on the machine (builds, tests) would steal the pinned CPUs: when
# root, the server, wrk and the sink run at nice -19 so that they get nearly all
# of their CPU whatever else runs (the same for every variant).
# With autogroup scheduling (sched_autogroup_enabled=1) a nice value only counts
# inside its session, so the script first moves to a session of its own and
# raises that session's weight too.
# (The move to a session of its own is at the top of the script.)
NICE=()
if [[ "$(id -u)" == 0 ]]; then
  echo -19 >/proc/self/autogroup 2>/dev/null || true
  NICE=(nice -n -19)
fi
LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"

WORK="$(mktemp -d /tmp/overhead-bench.XXXXXX)"
SINK_PID=""
SERVER_PID=""
cleanup() {
  for pid in "$SERVER_PID" "$SINK_PID"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (at most 10 s) for a line matching $2 in file $1 and prints it.
wait_line() {
  local file="$1" pattern="$2" line
  for _ in $(seq 100); do
    line="$(grep -m1 -E "$pattern" "$file" 2>/dev/null || true)"
    if [[ -n "$line" ]]; then echo "$line"; return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for /$pattern/ in $file:" >&2; cat "$file" >&2; return 1
}

echo "== starting the OTLP sink on CPU 1" >&2
"${NICE[@]}" taskset -c 1 "$BIN/sink" >"$WORK/sink.out" 2>"$WORK/sink.err" &
SINK_PID=$!
SINK="$(wait_line "$WORK/sink.out" '^http://127\.0\.0\.1:[0-9]+$')"
echo "   sink at $SINK" >&2

# VARIANTS="bare telemetry-init ..." (environment) runs a subset, or adds the
# diagnostic variants telemetry-init-logs-off (OTEL_LOGS_EXPORTER=none) and
# telemetry-init-no-export (no endpoint: nothing exported, ids still made).
# `demo` is examples/demo as users run it: `cargo build --release`, only
# OTEL_EXPORTER_OTLP_ENDPOINT set (here: the sink). Its /users/{id} answers
# JSON and logs one line of its own, so it does more per request than the
# hello-world variants (the access line plus the handler's line).
read -r -a VARIANTS <<<"${VARIANTS:-bare tracelayer peers telemetry-init demo}"
for v in "${VARIANTS[@]}"; do
  case "$v" in
    bare|tracelayer|peers|telemetry-init|telemetry-init-logs-off|telemetry-init-no-export|demo) ;;
    *) echo "unknown variant $v" >&2; exit 2 ;;
  esac
done
binary_of() {
  case "$1" in
    telemetry-init*) echo "$BIN/ours" ;;
    demo) echo "$DEMO_BIN" ;;
    *) echo "$BIN/$1" ;;
  esac
}
# The servers get a clean environment: nothing of the caller's OTEL_* or
# RUST_LOG leaks in.
env_of() {
  local common=(PATH=/usr/bin:/bin LISTEN_ADDR=127.0.0.1:0 RUST_LOG=info)
  case "$1" in
    bare|tracelayer) echo "${common[@]}" ;;
    peers) echo "${common[@]}" OTEL_SERVICE_NAME=peers OTEL_TRACES_SAMPLER=always_on \
             OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="$SINK" OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc ;;
    telemetry-init) echo "${common[@]}" OTEL_SERVICE_NAME=telemetry-init OTEL_TRACES_SAMPLER=always_on \
             OTEL_EXPORTER_OTLP_ENDPOINT="$SINK" ;;
    telemetry-init-logs-off) echo "${common[@]}" OTEL_SERVICE_NAME=telemetry-init OTEL_TRACES_SAMPLER=always_on \
             OTEL_EXPORTER_OTLP_ENDPOINT="$SINK" OTEL_LOGS_EXPORTER=none ;;
    telemetry-init-no-export) echo "${common[@]}" OTEL_SERVICE_NAME=telemetry-init OTEL_TRACES_SAMPLER=always_on ;;
    # After `common`, so that its LISTEN_ADDR (a free port picked by
    # start_server: the demo does not print its port) wins.
    demo) echo "${common[@]}" OTEL_EXPORTER_OTLP_ENDPOINT="$SINK" LISTEN_ADDR="127.0.0.1:$DEMO_PORT" ;;
  esac
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_server VARIANT STDOUT_FILE: sets SERVER_PID and ADDR.
start_server() {
  local v="$1" out="$2" err
  RUN_SEQ=$(( ${RUN_SEQ:-0} + 1 ))
  err="$WORK/$v.$RUN_SEQ.err"   # a fresh file per start: never read a previous run's line
  [[ "$v" == demo ]] && DEMO_PORT="$(free_port)"
  # shellcheck disable=SC2046
  env -i $(env_of "$v") "${NICE[@]}" taskset -c 0 "$(binary_of "$v")" >"$out" 2>"$err" &
  SERVER_PID=$!
  if [[ "$v" == demo ]]; then
    # The demo logs its address as JSON on stdout (which may be /dev/null):
    # wait until its untraced /healthz answers instead.
    ADDR="127.0.0.1:$DEMO_PORT"
    for _ in $(seq 100); do
      curl -fs -o /dev/null --max-time 1 "http://$ADDR/healthz" && return 0
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    echo "the demo did not answer on $ADDR within 10 s:" >&2; cat "$err" >&2; return 1
  fi
  ADDR="$(wait_line "$err" 'listening on 127\.0\.0\.1:[0-9]+' | grep -oE '127\.0\.0\.1:[0-9]+')"
}

# run_load LOAD URL SECONDS OUT_PREFIX: drives the server and writes what the
# load generator printed to OUT_PREFIX.txt (h2load's per-request log to
# OUT_PREFIX.log).
run_load() {
  local load="$1" url="$2" secs="$3" out="$4"
  case "$load" in
    h1-c32|h1-c256)
      timeout $(( secs + 30 )) "${NICE[@]}" taskset -c 1 \
        wrk -t1 -c"${load#h1-c}" -d"${secs}s" --latency -s "$LUA" "$url" >"$out.txt" ;;
    h2c-c32)
      timeout $(( secs + 30 )) "${NICE[@]}" taskset -c 1 \
        h2load -t1 -c32 -m1 -D "$secs" -H "traceparent: $TRACEPARENT" \
        --log-file="$out.log" "$url" >"$out.txt" ;;
  esac
}

# parse_load LOAD OUT_PREFIX: prints {requests, seconds, rps, p50_us, p99_us, errors}.
parse_load() {
  case "$1" in
    h1-*) python3 "$HERE/report.py" parse "$2.txt" ;;
    h2c-*) python3 "$HERE/report.py" parse-h2load "$2.txt" "$2.log" ;;
  esac
}

stop_server() {
  local pid="$SERVER_PID"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "   server $pid did not stop within 10 s: killed" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  SERVER_PID=""
}

# Prints the sink's counters {"spans":N,"logs":N,"metrics":N} (received so far).
sink_stats() {
  local before
  before="$(grep -c '^stats ' "$WORK/sink.err" || true)"
  kill -USR1 "$SINK_PID"
  for _ in $(seq 50); do
    (( $(grep -c '^stats ' "$WORK/sink.err" || true) > before )) && break
    sleep 0.1
  done
  grep '^stats ' "$WORK/sink.err" | tail -1 | cut -d' ' -f2-
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLK_TCK="$(getconf CLK_TCK)"

# Sanity check (not timed): one request per variant with stdout captured, to
# show what each variant prints and sends back per request.
echo "== sanity check: one request per variant" >&2
for v in "${VARIANTS[@]}"; do
  start_server "$v" "$WORK/$v.sanity.out"
  code="$(timeout 5 curl -s -o /dev/null -D "$WORK/$v.headers" -w '%{http_code}' \
    -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
    "http://$ADDR$PATH_UNDER_TEST" || true)"
  sleep 1.5   # non-blocking writers flush on their own thread
  lines_before="$(grep -c '' "$WORK/$v.sanity.out" || true)"
  stop_server
  echo "   $v: HTTP $code, stdout lines after 1 request (incl. start-up lines): $lines_before" >&2
  [[ "$code" == 200 ]] || { echo "$v answered $code" >&2; exit 1; }
done

RAW="$WORK/raw.jsonl"
: >"$RAW"
echo "== $ROUNDS rounds x ${#LOADS[@]} loads (${LOADS[*]}) x ${#VARIANTS[@]} variants x $DURATION" >&2
for round in $(seq "$ROUNDS"); do
  for load in "${LOADS[@]}"; do
  for v in "${VARIANTS[@]}"; do
    sink0="$(sink_stats)"
    start_server "$v" /dev/null
    url="http://$ADDR$PATH_UNDER_TEST"
    run_load "$load" "$url" 2 "$WORK/r$round-$load-$v.warmup"
    t0="$(cpu_ticks "$SERVER_PID")"
    s0="$(cpu_ticks "$SINK_PID")"
    run_load "$load" "$url" "$DURATION_S" "$WORK/r$round-$load-$v"
    t1="$(cpu_ticks "$SERVER_PID")"
    s1="$(cpu_ticks "$SINK_PID")"
    hwm_kib="$(awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status")"
    stop_server   # the servers flush their telemetry on SIGTERM
    sink1="$(sink_stats)"
    warm_requests="$(parse_load "$load" "$WORK/r$round-$load-$v.warmup" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')"
    rm -f "$WORK/r$round-$load-$v.warmup.log"  # h2load's per-request logs: large
    parse_load "$load" "$WORK/r$round-$load-$v" >"$WORK/r$round-$load-$v.json"
    rm -f "$WORK/r$round-$load-$v.log"  # parsed: drop it (large)
    python3 -c '
import json, sys
round_, load, v, t0, t1, s0, s1, hz, hwm, sink0, sink1, warm, parsed = sys.argv[1:]
w = json.load(open(parsed))
hz = int(hz)
k0, k1 = json.loads(sink0), json.loads(sink1)
served = w["requests"] + int(warm)   # everything this server process answered
w.update(spans_exported_per_req=(k1["spans"] - k0["spans"]) / served,
         logs_exported_per_req=(k1["logs"] - k0["logs"]) / served)
w.update(round=int(round_), load=load, variant=v, rss_kib=int(hwm),
         cpu_us_per_req=(int(t1) - int(t0)) * 1e6 / hz / w["requests"],
         sink_cpu_us_per_req=(int(s1) - int(s0)) * 1e6 / hz / w["requests"])
print(json.dumps(w))' "$round" "$load" "$v" "$t0" "$t1" "$s0" "$s1" "$CLK_TCK" "$hwm_kib" "$sink0" "$sink1" "$warm_requests" "$WORK/r$round-$load-$v.json" >>"$RAW"
  done
  python3 "$HERE/report.py" round "$RAW" "$round" "$load"
  done
done

mkdir -p "$(dirname "$RESULTS_JSON")"
python3 - "$WORK/meta.json" "$ROUNDS" "$DURATION" "$LOADAVG_START" "${NICE[*]:-none}" "$GIT_HEAD" "$GIT_DIRTY" "${LOADS[*]}" <<'PY'
import json, os, platform, subprocess, sys, datetime
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
json.dump({
    "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "command": f"benches/overhead/run.sh {sys.argv[2]} {sys.argv[3]}",
    "rounds": int(sys.argv[2]), "duration": sys.argv[3],
    "cpus": os.cpu_count(), "cpu_model": cpu, "kernel": platform.release(), "rustc": rustc,
    "loadavg_at_start": sys.argv[4].split(), "priority": sys.argv[5],
    "git_head": sys.argv[6], "uncommitted_files_under_crates": int(sys.argv[7]),
    "loadavg_at_end": open("/proc/loadavg").read().split()[:3],
    "loads": sys.argv[8].split(),
    "load": "GET /users/42 with a sampled traceparent; h1-cN: wrk -t1 -cN --latency; h2c-c32: h2load -t1 -c32 -m1 (h2c prior knowledge); server on CPU 0, load generator and sink on CPU 1",
}, open(sys.argv[1], "w"), indent=2)
PY
python3 "$HERE/report.py" final "$RAW" "$RESULTS_JSON" "$WORK/meta.json"
kill -TERM "$SINK_PID" 2>/dev/null || true
for _ in $(seq 50); do kill -0 "$SINK_PID" 2>/dev/null || break; sleep 0.1; done
SINK_PID=""
echo >&2
grep -h '^sink:' "$WORK/sink.err" >&2 || true
echo "results: $RESULTS_JSON (raw load-generator outputs in $WORK)" >&2
