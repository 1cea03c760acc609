#!/usr/bin/env bash
# End-to-end check of the metric contract, the generated SLO rules and the dashboards
# against a real Prometheus, no Docker needed:
#
#   1. start the demo (target/debug/demo) on a free loopback port;
#   2. start Prometheus (Debian package) scraping it every second and evaluating the
#      generated recording and alerting rules (dashboards/rules/*.yml) every second;
#   3. drive bounded mixed traffic with curl: fast and slow requests, /users/{id},
#      /chain, 5xx, unmatched routes;
#   4. evaluate every PromQL expression of every dashboard panel, template variable and
#      rule through the HTTP API (scripts/e2e-queries.py): each must succeed and, unless
#      it is one of the few series a lone demo cannot produce, return data.
#
# Usage: scripts/prometheus-e2e.sh           # the real demo (cargo build -p demo)
#        scripts/prometheus-e2e.sh --fake    # scripts/fake-demo.py, to test the harness
# Env:   DEMO_BIN (prebuilt demo), E2E_TRAFFIC_SECONDS (default 20), KEEP_E2E_DIR=1.
# Everything listens on 127.0.0.1 only; every process started here is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODE=demo
[ "${1:-}" = "--fake" ] && MODE=fake
TRAFFIC_SECONDS="${E2E_TRAFFIC_SECONDS:-20}"
SERVICE=demo

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "installing Prometheus (Debian package prometheus)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
fi
python3 -c 'import yaml' 2>/dev/null || python3 -c 'import ruamel.yaml' 2>/dev/null ||
  python3 -m pip install --quiet pyyaml

WORK="$(mktemp -d "${TMPDIR:-/tmp}/telemetry-init-e2e.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ "${KEEP_E2E_DIR:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
wait_http() { # url, seconds
  local i
  for ((i = 0; i < $2 * 5; i++)); do
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "timed out waiting for $1"
  return 1
}

DEMO_PORT="$(free_port)"
PROM_PORT="$(free_port)"
DEAD_PORT="$(free_port)" # nothing listens: the SDK's OTLP exports fail, visibly, in its self-metrics
DEMO="http://127.0.0.1:$DEMO_PORT"
PROM="http://127.0.0.1:$PROM_PORT"

# ------------------------------------------------------------------ demo
if [ "$MODE" = fake ]; then
  echo "starting scripts/fake-demo.py on $DEMO"
  LISTEN_ADDR="127.0.0.1:$DEMO_PORT" OTEL_SERVICE_NAME="$SERVICE" \
    python3 scripts/fake-demo.py >"$WORK/demo.log" 2>&1 &
  PIDS+=($!)
else
  if [ -z "${DEMO_BIN:-}" ]; then
    cargo build --quiet -p demo
    DEMO_BIN="$ROOT/target/debug/demo"
  fi
  echo "starting $DEMO_BIN on $DEMO"
  LISTEN_ADDR="127.0.0.1:$DEMO_PORT" \
    OTEL_SERVICE_NAME="$SERVICE" \
    OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=e2e" \
    DOWNSTREAM_URL="$DEMO/hello" \
    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$DEAD_PORT" \
    OTEL_EXPORTER_OTLP_TIMEOUT=1000 \
    OTEL_METRIC_EXPORT_INTERVAL=1000 \
    OTEL_BSP_SCHEDULE_DELAY=500 \
    OTEL_BLRP_SCHEDULE_DELAY=500 \
    RUST_LOG=warn \
    "$DEMO_BIN" >"$WORK/demo.log" 2>&1 &
  PIDS+=($!)
fi
wait_http "$DEMO/healthz" 60 || { tail -50 "$WORK/demo.log"; exit 1; }
curl -fsS -o /dev/null "$DEMO/hello"
sleep 1
if ! curl -fsS "$DEMO/metrics" | grep -q '^http_server_request_duration_seconds_bucket{'; then
  echo "FAIL: $DEMO/metrics does not expose http_server_request_duration_seconds_bucket (the metric contract)"
  curl -fsS "$DEMO/metrics" | head -40 || true
  exit 1
fi
curl -fsS "$DEMO/metrics" >"$WORK/metrics.txt"
# Informational: Prometheus' own lint of the exposition (naming, help, units).
promtool check metrics <"$WORK/metrics.txt" >"$WORK/metrics-lint.txt" 2>&1 || true

# ------------------------------------------------------------------ Prometheus
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
$(for f in "$ROOT"/dashboards/rules/*.yml; do echo "  - $f"; done)
scrape_configs:
  - job_name: demo
    static_configs:
      - targets: ["127.0.0.1:$DEMO_PORT"]
EOF
promtool check config "$WORK/prometheus.yml"
prometheus --config.file="$WORK/prometheus.yml" \
  --storage.tsdb.path="$WORK/data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" \
  --log.level=warn >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
wait_http "$PROM/-/ready" 60 || { tail -50 "$WORK/prometheus.log"; exit 1; }

# ------------------------------------------------------------------ traffic
echo "driving mixed traffic for ${TRAFFIC_SECONDS}s"
end=$((SECONDS + TRAFFIC_SECONDS))
i=0
while [ "$SECONDS" -lt "$end" ] && [ "$i" -lt 5000 ]; do
  i=$((i + 1))
  curl -s -o /dev/null --max-time 5 "$DEMO/hello"
  curl -s -o /dev/null --max-time 5 "$DEMO/users/$((i % 20))"
  [ $((i % 3)) -eq 0 ] && curl -s -o /dev/null --max-time 5 "$DEMO/chain"
  [ $((i % 4)) -eq 0 ] && curl -s -o /dev/null --max-time 5 "$DEMO/error"
  [ $((i % 5)) -eq 0 ] && curl -s -o /dev/null --max-time 5 "$DEMO/slow?ms=300"
  [ $((i % 7)) -eq 0 ] && curl -s -o /dev/null --max-time 5 "$DEMO/no/such/route"
  curl -s -o /dev/null --max-time 5 -X POST "$DEMO/hello"
  sleep 0.05
done
echo "$i traffic rounds"
# Let the last scrapes and rule evaluations land.
sleep 4

up="$(curl -fsS "$PROM/api/v1/query?query=up" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")')"
[ "$up" = 1 ] || { echo "FAIL: Prometheus could not scrape the demo (up=$up)"; exit 1; }

python3 scripts/e2e-queries.py --prom "$PROM" --service "$SERVICE" --root "$ROOT"
