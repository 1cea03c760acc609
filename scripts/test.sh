#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this). Works on a fresh
# Debian machine: it installs what the checks need (Debian `prometheus` for
# promtool/Prometheus, PyPI `check-jsonschema`, npm `@grafana/lezer-logql`,
# `cargo-fuzz`; Debian `valgrind` comes from .ci/run) and then runs, in order:
# formatting, clippy, the dependency gates, the stack checks, a short fuzz run,
# the instruction-count gate of the request path and `cargo test` (last, so its
# summary closes the output). Exit status 0 only if everything passed.
#
# FUZZ_SECONDS (default 10) sets the fuzz time per target; SKIP_FUZZ=1 skips it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "one version of every opentelemetry crate"
# Every (name, version) in the resolved tree; a name listed twice is a duplicate.
otel=$(cargo tree --workspace -e normal,build,dev --prefix none --format '{p}' \
  | awk '{print $1, $2}' | sort -u | grep -E '^(opentelemetry|tracing-opentelemetry)' || true)
echo "$otel"
dups=$(echo "$otel" | awk '{print $1}' | uniq -d)
if [ -z "$otel" ] || [ -n "$dups" ]; then
  echo "duplicate (or missing) opentelemetry crates in the dependency tree: $dups"
  exit 1
fi

step "rustdoc (broken links and missing docs are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

if [ -x scripts/check-deps.sh ]; then
  step "supply chain: cargo deny check bans licenses"
  bash scripts/check-deps.sh
fi

step "stack: rules, dashboards, compose, Alloy"
bash scripts/check-stack.sh

step "stack: real Prometheus scraping the demo"
bash scripts/prometheus-e2e.sh

if [ "${SKIP_FUZZ:-0}" != "1" ] && [ -x crates/telemetry-init-propagation/fuzz/run.sh ]; then
  step "fuzz the header parsers (${FUZZ_SECONDS:-10}s per target)"
  cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
  # libFuzzer is verbose: keep its output in a file, show the summary, and
  # all of it when something fails.
  fuzz_log=$(mktemp)
  if ! bash crates/telemetry-init-propagation/fuzz/run.sh "${FUZZ_SECONDS:-10}" >"$fuzz_log" 2>&1; then
    tail -n 80 "$fuzz_log"
    echo "fuzzing failed (full log: $fuzz_log)"
    exit 1
  fi
  grep -E '^== |^Done [0-9]+ runs' "$fuzz_log" || true

  step "fuzz the redaction parsers (${FUZZ_SECONDS:-10}s per target)"
  fuzz_log=$(mktemp)
  if ! bash crates/telemetry-init/fuzz/run.sh "${FUZZ_SECONDS:-10}" >"$fuzz_log" 2>&1; then
    tail -n 80 "$fuzz_log"
    echo "fuzzing failed (full log: $fuzz_log)"
    exit 1
  fi
  grep -E '^== |^Done [0-9]+ runs' "$fuzz_log" || true
fi

step "instruction-count gate: request path of telemetry-init vs bare (callgrind)"
bash benches/instructions/gate.sh

step "cargo test (unit, integration and doc tests)"
cargo test --workspace
