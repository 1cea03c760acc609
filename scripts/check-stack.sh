#!/usr/bin/env bash
# Offline checks of the observability stack: SLO rules, dashboards, compose file, Alloy
# config, backend configs. Idempotent; installs what it needs when missing:
#   Debian `prometheus` (promtool), PyPI `check-jsonschema`,
#   npm `@grafana/lezer-logql@0.4.2` (into target/stack-tools/node),
#   crates.io `promql-parser` (dev-dependency of telemetry-init-cli, via cargo).
# Needs no network once those are installed, and no Docker: what only the real binaries
# can check (alloy validate, compose up, queries against Tempo/Loki/Mimir) runs in
# .github/workflows/stack.yml.
#
# Usage: scripts/check-stack.sh            (from anywhere in the repo)
# Exit status 0 only if every check passed; the last line is "N passed, M failed".
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="$ROOT/target/stack-tools"
mkdir -p "$TOOLS"

passed=0
failed=0
failures=()

step() { printf '\n==> %s\n' "$*"; }
run_check() {
  local name="$1"
  shift
  step "$name"
  if "$@"; then
    passed=$((passed + 1))
    echo "ok: $name"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "FAILED: $name"
  fi
}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# ------------------------------------------------------------------ tools
ensure_promtool() {
  command -v promtool >/dev/null 2>&1 && return 0
  step "installing promtool (Debian package prometheus)"
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus >/dev/null
}
ensure_check_jsonschema() {
  command -v check-jsonschema >/dev/null 2>&1 && return 0
  step "installing check-jsonschema (PyPI)"
  python3 -m pip install --quiet check-jsonschema || python3 -m pip install --quiet --user check-jsonschema
  hash -r
  command -v check-jsonschema >/dev/null 2>&1 || export PATH="$HOME/.local/bin:$PATH"
}
ensure_lezer_logql() {
  [ -f "$TOOLS/node/node_modules/@grafana/lezer-logql/package.json" ] && return 0
  step "installing @grafana/lezer-logql@0.4.2 (npm) into $TOOLS/node"
  mkdir -p "$TOOLS/node"
  [ -f "$TOOLS/node/package.json" ] || echo '{"private":true}' >"$TOOLS/node/package.json"
  (cd "$TOOLS/node" && npm install --no-audit --no-fund --silent @grafana/lezer-logql@0.4.2)
}

ensure_promtool || { echo "cannot install promtool"; exit 2; }
ensure_check_jsonschema || { echo "cannot install check-jsonschema"; exit 2; }
ensure_lezer_logql || { echo "cannot install @grafana/lezer-logql"; exit 2; }

# ------------------------------------------------------------------ checks
# The committed rules are exactly what the spec generates.
for spec in slo/*.yaml; do
  out="dashboards/rules/$(basename "$spec" .yaml)-slo.rules.yml"
  run_check "generated rules up to date: $out" \
    cargo run --quiet -p telemetry-init-cli -- rules --spec "$spec" --out "$out" --check
done

# Rule files: YAML structure, PromQL, duplicate rules.
run_check "promtool check rules" promtool check rules --lint=duplicate-rules dashboards/rules/*.yml

# Burn-rate behaviour: fast burn pages, slow burn tickets, at-budget quiet, recovery clears.
run_check "promtool test rules" promtool test rules dashboards/rules/tests/*.yml

# compose.yaml against the Compose Specification (replaces `docker compose config`).
run_check "compose.yaml matches the compose-spec schema" \
  check-jsonschema --builtin-schema vendor.compose-spec compose.yaml

run_check ".github/workflows/stack.yml matches the GitHub workflow schema" \
  check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/stack.yml

# Every other YAML/JSON config at least parses as a mapping.
object_schema="$TOOLS/object.schema.json"
echo '{"type": "object"}' >"$object_schema"
run_check "stack configs and dashboards parse" \
  check-jsonschema --schemafile "$object_schema" \
  stack/*.yaml stack/grafana/provisioning/*/*.yaml slo/*.yaml dashboards/*.json

# PromQL of every dashboard panel, template variable and rule parses (promql-parser),
# uses only contract / Alloy / recording-rule metric names and contract labels;
# dashboard hygiene (uids, titles, descriptions, units, data sources, $__rate_interval).
run_check "PromQL parse + metric contract + dashboard lint (cargo test)" \
  cargo test --quiet -p telemetry-init-cli --test queries

# LogQL of every Loki panel and of the trace->logs data-source link parses.
run_check "LogQL parse (@grafana/lezer-logql)" \
  env LOGQL_NODE_MODULES="$TOOLS/node" node scripts/check-logql.mjs "$ROOT"

# Alloy: grammar, components, arguments, wiring, pipeline order, bind addresses.
run_check "Alloy config structure" python3 scripts/check-alloy.py alloy/config.alloy compose.yaml
run_check "Alloy check detects broken configs (self-test)" \
  python3 scripts/check-alloy.py --self-test alloy/config.alloy compose.yaml

# Shell scripts at least parse.
run_check "stack scripts parse (bash -n)" \
  bash -c 'for f in scripts/check-stack.sh scripts/prometheus-e2e.sh scripts/stack-smoke.sh; do bash -n "$f" || exit 1; done'

# Every alert links to a runbook that exists.
check_runbooks() {
  local ok=0 url file
  while read -r url; do
    file="docs/runbooks/${url##*/}"
    if [ ! -f "$file" ]; then
      echo "missing runbook $file (linked from $url)"
      ok=1
    fi
  done < <(grep -ho 'runbook_url: .*' dashboards/rules/*.yml | sed "s/runbook_url: //; s/'//g" | sort -u)
  return $ok
}
run_check "every runbook_url points to an existing docs/runbooks file" check_runbooks

# ------------------------------------------------------------------ summary
echo
if [ "$failed" -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "check-stack: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
