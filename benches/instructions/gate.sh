#!/usr/bin/env bash
# The instruction-count gate of the request path (docs/performance.md, "The
# instruction-count gate"): builds the harness in release mode and runs every
# variant under valgrind's callgrind, then compares the ratio
# telemetry-init / bare (instructions per request) with baseline.json.
#
#   bash benches/instructions/gate.sh                 # check; exit 1 on a regression
#   bash benches/instructions/gate.sh --update        # measure and rewrite baseline.json
#   bash benches/instructions/gate.sh --requests 5000 # more requests per variant
#
# Needs valgrind (Debian: apt-get install valgrind); fails, never skips, when
# it is missing. Takes about a minute after the build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

command -v valgrind >/dev/null 2>&1 || {
  echo "valgrind is missing: apt-get install valgrind" >&2
  exit 1
}
mode=check
if [[ "${1:-}" == "--update" ]]; then
  mode=update
  shift
fi
cargo build --release -p instruction-gate --quiet
exec "${CARGO_TARGET_DIR:-$ROOT/target}/release/instruction-gate" "$mode" "$@"
