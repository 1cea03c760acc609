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
# Env:   DEMO_BIN (prebuilt demo), E2E_TRAFFIC_SECONDS (default 20), KEEP_E2E_DIR=1,
#        E2E_ALLOW_MISSING=metric,metric (temporary, printed waiver for metrics the
#        service does not emit yet; empty by default).
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
    DEMO_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/demo"
  fi
  echo "starting $DEMO_BIN on $DEMO"
  # No OTLP endpoint: the demo then exports to its embedded OTLP receiver, so the SDK's
  # export self-metrics count successes.
  unset OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT \
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT OTEL_EXPORTER_OTLP_METRICS_ENDPOINT
  LISTEN_ADDR="127.0.0.1:$DEMO_PORT" \
    OTEL_SERVICE_NAME="$SERVICE" \
    OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=e2e" \
    DOWNSTREAM_URL="$DEMO/hello" \
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
curl -fsS "$DEMO/metrics" >"$WORK/metrics.txt"
if ! grep -q '^http_server_request_duration_seconds_bucket{' "$WORK/metrics.txt"; then
  echo "FAIL: $DEMO/metrics does not expose http_server_request_duration_seconds_bucket (the metric contract)"
  head -40 "$WORK/metrics.txt"
  exit 1
fi
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

# Prometheus hands targets to the scraper a few seconds after start: wait for the first
# scrape, or the first seconds of traffic would be invisible to every rate().
scraped() {
  curl -fsS "$PROM/api/v1/query?query=up" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; sys.exit(0 if r and r[0]["value"][1] == "1" else 1)'
}
for ((n = 0; n < 150; n++)); do scraped && break; sleep 0.2; done
scraped || { echo "FAIL: Prometheus did not scrape the demo within 30s"; tail -20 "$WORK/prometheus.log"; exit 1; }

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

scraped || { echo "FAIL: Prometheus could not scrape the demo at the end of the run"; exit 1; }

status=0
python3 scripts/e2e-queries.py --prom "$PROM" --service "$SERVICE" --root "$ROOT" || status=1

# The traffic above fails ~6 % of requests, over 14.4x the 0.1 % budget of the
# availability SLO on both the 1h and 5m windows: the page must be firing in Prometheus.
if curl -fsS "$PROM/api/v1/alerts" | python3 -c '
import json, sys
alerts = json.load(sys.stdin)["data"]["alerts"]
firing = [a for a in alerts if a["labels"].get("alertname") == "SLOErrorBudgetBurnPage"
          and a["labels"].get("slo") == "availability" and a["state"] == "firing"
          and a["annotations"].get("runbook_url", "").endswith("slo-error-budget-burn-page.md")]
print(f"{len(firing)} SLOErrorBudgetBurnPage alert(s) firing for slo=availability")
sys.exit(0 if firing else 1)'; then
  echo "ok    generated burn-rate alert fires under a fast burn"
else
  echo "FAIL  SLOErrorBudgetBurnPage{slo=\"availability\"} is not firing despite ~6 % errors"
  status=1
fi
exit $status
