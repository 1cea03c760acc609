#!/usr/bin/env bash
# Smoke test of the running compose stack (docker compose up -d --build --wait first).
# Sends one request with a known W3C trace id through demo-a -> demo-b, then checks that
#   Tempo   has the trace, with spans of both services;
#   Loki    has the request's logs, found by trace_id (structured metadata, not a label),
#           with service_name and level as labels;
#   Mimir   has the HTTP histogram pushed over OTLP (suffixed names), demo-b's scraped
#           series, Alloy's own metrics, the SLO recording rules evaluated by the ruler,
#           and the Alertmanager up;
#   Grafana is healthy and has the provisioned data sources and dashboards.
# Used by .github/workflows/stack.yml; runnable on any machine with the stack up.
# Usage: scripts/stack-smoke.sh   (env TIMEOUT=seconds per check, default 180)
set -uo pipefail

TIMEOUT="${TIMEOUT:-180}"
DEMO=http://127.0.0.1:8080
TEMPO=http://127.0.0.1:3200
LOKI=http://127.0.0.1:3100
MIMIR=http://127.0.0.1:9009
GRAFANA=http://127.0.0.1:3000
ALLOY=http://127.0.0.1:12345

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

# retry <description> <command...>: run until it succeeds or TIMEOUT passes.
retry() {
  local what="$1" start=$SECONDS
  shift
  until "$@" >/dev/null 2>&1; do
    if [ $((SECONDS - start)) -ge "$TIMEOUT" ]; then
      fail "$what (after ${TIMEOUT}s)"
      return 1
    fi
    sleep 5
  done
  ok "$what"
}

json_has() { # url, python expression over `d` that must be truthy
  curl -fsS --max-time 10 "$1" | python3 -c "import json,sys; d=json.load(sys.stdin); sys.exit(0 if ($2) else 1)"
}
prom_has_data() { # PromQL
  json_has "$MIMIR/prometheus/api/v1/query?query=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1")" \
    'd["status"] == "success" and len(d["data"]["result"]) > 0'
}

TRACE_ID="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
PARENT_ID="$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
echo "trace id: $TRACE_ID"
for _ in 1 2 3; do
  curl -fsS -o /dev/null -H "traceparent: 00-$TRACE_ID-$PARENT_ID-01" "$DEMO/chain" && break
  sleep 2
done
# More traffic so rates and ruler series exist even without the load generator.
for i in $(seq 1 30); do
  curl -s -o /dev/null "$DEMO/users/$i"
  curl -s -o /dev/null "$DEMO/hello"
done
curl -s -o /dev/null "$DEMO/error"

# ------------------------------------------------------------------ Tempo
retry "Tempo has trace $TRACE_ID with spans of demo and demo-downstream" \
  json_has "$TEMPO/api/v2/traces/$TRACE_ID" \
  '"\"demo\"" in json.dumps(d) and "demo-downstream" in json.dumps(d)'

# ------------------------------------------------------------------ Loki
q="$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "{service_name=\"demo\"} | trace_id=\"$TRACE_ID\"")"
retry "Loki has demo logs for trace $TRACE_ID (trace_id as structured metadata)" \
  json_has "$LOKI/loki/api/v1/query_range?query=$q&since=1h&limit=10" \
  'd["status"] == "success" and any(s["values"] for s in d["data"]["result"])'
retry "Loki labels include service_name and level" \
  json_has "$LOKI/loki/api/v1/labels?since=1h" '"service_name" in d["data"] and "level" in d["data"]'
if json_has "$LOKI/loki/api/v1/labels?since=1h" '"trace_id" not in d["data"] and "span_id" not in d["data"]'; then
  ok "trace_id/span_id are not Loki labels"
else
  fail "trace_id or span_id became a Loki label (unbounded streams)"
fi

# ------------------------------------------------------------------ Mimir
retry "Mimir: OTLP-pushed histogram with Prometheus names (otel_metric_suffixes_enabled)" \
  prom_has_data 'sum by (http_route) (http_server_request_duration_seconds_count{service_name="demo"})'
retry "Mimir: demo-downstream's /metrics scraped by Alloy" \
  prom_has_data 'http_server_request_duration_seconds_count{service_name="demo-downstream"}'
retry "Mimir: Alloy's own metrics (prometheus.exporter.self)" \
  prom_has_data 'alloy_component_controller_running_components'
retry "Mimir ruler loaded the SLO rule groups" \
  json_has "$MIMIR/prometheus/api/v1/rules" \
  'any(g["name"] == "slo-demo-availability-alerts" for g in d["data"]["groups"])'
retry "Mimir ruler evaluates the SLO recording rules" \
  prom_has_data 'slo:sli_error:ratio_rate5m{service_name="demo"}'
retry "Mimir Alertmanager is up" \
  curl -fsS --max-time 10 "$MIMIR/alertmanager/api/v2/status"
if prom_has_data 'sum(otelcol_exporter_send_failed_spans_total) + sum(otelcol_exporter_send_failed_log_records_total) + sum(otelcol_exporter_send_failed_metric_points_total) > 0'; then
  fail "Alloy reports failed exports"
else
  ok "Alloy reports no failed exports"
fi
# Exemplars depend on the SDK attaching them; report, don't fail.
if json_has "$MIMIR/prometheus/api/v1/query_exemplars?query=http_server_request_duration_seconds_bucket%7Bservice_name%3D%22demo%22%7D&start=$(($(date +%s) - 3600))&end=$(date +%s)" \
  'len(d.get("data") or []) > 0'; then
  echo "info: exemplars present (metric -> trace links work)"
else
  echo "info: no exemplars found for the demo histogram"
fi

# ------------------------------------------------------------------ Grafana and Alloy
retry "Grafana healthy" curl -fsS --max-time 10 "$GRAFANA/api/health"
retry "Grafana data sources provisioned (mimir, loki, tempo, mimir-alertmanager)" \
  json_has "http://admin:${GRAFANA_ADMIN_PASSWORD:-admin}@127.0.0.1:3000/api/datasources" \
  '{"mimir","loki","tempo","mimir-alertmanager"} <= {x["uid"] for x in d}'
retry "Grafana dashboards provisioned" \
  json_has "$GRAFANA/api/search?tag=telemetry-init" \
  '{"telemetry-init-red","telemetry-init-slo","telemetry-init-pipeline"} <= {x["uid"] for x in d}'
retry "Alloy ready" curl -fsS --max-time 10 "$ALLOY/-/ready"

echo
echo "stack-smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
