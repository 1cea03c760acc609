#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this). Works on a fresh
# Debian machine: it installs what the checks need (Debian `prometheus` for
# promtool/Prometheus, PyPI `check-jsonschema`, npm `@grafana/lezer-logql`,
# `cargo-fuzz`, `cargo-machete`, `cargo-hack`; Debian `valgrind`, `luajit` and
# PyPI `prometheus-client` come from .ci/run) and then runs, in order: formatting,
# clippy (with the workspace lints), the toolchain and module-cycle checks, the
# overhead benchmark's report tests,
# the dependency gates (unused dependencies, every feature on its own,
# packaging), the stack checks, a short fuzz run, the instruction-count gate
# of the request path and `cargo test` (last, so its summary closes the
# output). Exit status 0 only if everything passed. Each step prints its
# duration.
#
# Tests that need an external tool (promtool, prometheus, the Python
# OpenMetrics parser, chromium, luajit) fail instead of skipping when `CI` is set,
# which this script does.
#
# FUZZ_SECONDS (default 10) sets the fuzz time per target; SKIP_FUZZ=1 skips it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

export CI="${CI:-true}"

# Pinned versions of the cargo tools the checks install.
CARGO_MACHETE_VERSION=0.9.2
CARGO_HACK_VERSION=0.6.46

step_started=$SECONDS
step_name=""
step() {
  if [ -n "$step_name" ]; then
    printf '    (%s: %ss)\n' "$step_name" "$((SECONDS - step_started))"
  fi
  step_name="$*"
  step_started=$SECONDS
  printf '\n==> %s\n' "$*"
}
trap 'if [ -n "$step_name" ]; then printf "    (%s: %ss)\n" "$step_name" "$((SECONDS - step_started))"; fi' EXIT

# `cargo install --locked` of a pinned version, unless that version is there.
cargo_tool() {
  local crate=$1 version=$2 subcommand=$3
  if ! cargo "$subcommand" --version 2>/dev/null | grep -qwF "$version"; then
    cargo install "$crate" --version "$version" --locked --quiet
  fi
}

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "rust-version is the toolchain this CI builds with"
declared=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
actual=$(rustc --version | awk '{print $2}' | cut -d. -f1,2)
echo "rust-version = $declared, rustc $actual"
if [ "$declared" != "$actual" ]; then
  echo "rust-version ($declared) is not the toolchain CI builds with ($actual): update it in Cargo.toml"
  exit 1
fi

step "no module imports a module that imports it back"
python3 scripts/check-module-cycles.py --self-test
python3 scripts/check-module-cycles.py --known scripts/module-cycles.known

step "overhead benchmark's latency parsing (benches/overhead/test_report.py)"
python3 benches/overhead/test_report.py

step "unused dependencies (cargo machete)"
cargo_tool cargo-machete "$CARGO_MACHETE_VERSION" machete
cargo machete

step "packaging (cargo package --workspace --no-verify)"
# --no-verify: the manifests, the file lists and the path dependencies'
# versions are what can break here; verifying rebuilds every dependency.
cargo package --workspace --no-verify --quiet

step "every feature on its own (cargo hack --each-feature)"
cargo_tool cargo-hack "$CARGO_HACK_VERSION" hack
# The library crates with features, their libraries only: with resolver 3 a
# library build does not unify the features dev-dependencies turn on
# (--no-dev-deps would do the same by editing the manifests, and re-resolve
# Cargo.lock). clippy, not check: an import only one feature uses is a
# warning, so an error. The manifests and the lock file must come out as
# they went in.
manifests() { find . -name Cargo.toml -not -path './target/*' -o -name Cargo.lock -not -path './target/*' | sort | xargs sha256sum; }
before=$(manifests)
cargo hack clippy --each-feature --lib -p telemetry-init -p telemetry-init-metrics -- -D warnings
if [ "$(manifests)" != "$before" ]; then
  echo "cargo hack changed a manifest or the lock file"
  exit 1
fi

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

if [ "${SKIP_FUZZ:-0}" != "1" ]; then
  cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
  for fuzz_crate in "header parsers:crates/telemetry-init-propagation/fuzz" \
                    "redaction parsers:crates/telemetry-init/fuzz"; do
    step "fuzz the ${fuzz_crate%%:*} (${FUZZ_SECONDS:-10}s per target)"
    # libFuzzer is verbose: keep its output in a file, show the summary, and
    # all of it when something fails.
    fuzz_log=$(mktemp)
    if ! bash scripts/fuzz.sh "${fuzz_crate#*:}" "${FUZZ_SECONDS:-10}" >"$fuzz_log" 2>&1; then
      tail -n 80 "$fuzz_log"
      echo "fuzzing failed (full log: $fuzz_log)"
      exit 1
    fi
    grep -E '^== |^Done [0-9]+ runs' "$fuzz_log" || true
  done
fi

step "instruction-count gate: request path of telemetry-init vs bare (callgrind)"
bash benches/instructions/gate.sh

step "cargo test (unit, integration and doc tests)"
cargo test --workspace
