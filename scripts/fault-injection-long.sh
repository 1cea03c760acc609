#!/usr/bin/env bash
# Fault injection, long form: the scenarios of
# examples/demo/tests/fault_injection.rs at a larger scale (several minutes),
# against the real demo binary, loopback only. Prints one summary line per
# scenario and exits non-zero if any scenario fails. See
# docs/fault-injection.md.
#
# Sizes (environment, defaults in brackets):
#   FAULT_LONG_CYCLES     kill/restart cycles of the collector          [10]
#   FAULT_LONG_UP_SECS    seconds up between kills                      [5]
#   FAULT_LONG_DOWN_SECS  seconds down per kill                         [5]
#   FAULT_LONG_SLOW_SECS  seconds of load against the slow collector    [180]
#   FAULT_LONG_HANG_SECS  seconds each export hangs                     [4]
#   FAULT_LONG_REQUESTS   requests against the dead collector           [200000]
set -euo pipefail
cd "$(dirname "$0")/.."

export FAULT_LONG_CYCLES="${FAULT_LONG_CYCLES:-10}"
export FAULT_LONG_UP_SECS="${FAULT_LONG_UP_SECS:-5}"
export FAULT_LONG_DOWN_SECS="${FAULT_LONG_DOWN_SECS:-5}"
export FAULT_LONG_SLOW_SECS="${FAULT_LONG_SLOW_SECS:-180}"
export FAULT_LONG_HANG_SECS="${FAULT_LONG_HANG_SECS:-4}"
export FAULT_LONG_REQUESTS="${FAULT_LONG_REQUESTS:-200000}"

log="$(mktemp -t fault-injection-long.XXXXXX)"
trap 'rm -f "$log"' EXIT

echo "== fault injection, long form ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores)"
echo "   cycles=${FAULT_LONG_CYCLES} up=${FAULT_LONG_UP_SECS}s down=${FAULT_LONG_DOWN_SECS}s" \
    "slow=${FAULT_LONG_SLOW_SECS}s hang=${FAULT_LONG_HANG_SECS}s requests=${FAULT_LONG_REQUESTS}"
cargo build -q -p demo --tests

started=$(date +%s)
status=0
# One test at a time (they also serialise themselves): latency and memory
# are measured.
if ! cargo test -q -p demo --test fault_injection -- --ignored --nocapture --test-threads=1 \
    >"$log" 2>&1; then
    status=1
fi
elapsed=$(( $(date +%s) - started ))

echo "== summary (${elapsed}s)"
grep -o 'SUMMARY .*' "$log" | sed 's/^SUMMARY /- /' || true
grep -E 'test result' "$log" || true
if [ "$status" -ne 0 ]; then
    echo "!! failures:" >&2
    grep -E -A5 'panicked at' "$log" >&2 || tail -50 "$log" >&2
fi
exit "$status"
