#!/usr/bin/env bash
# Builds and runs every fuzz target of telemetry-init for N seconds each
# (first argument, default 20). Exits non-zero on any crash, leak, timeout or
# build failure. Called from CI (scripts/test.sh). See docs/fuzzing.md.
set -euo pipefail

seconds="${1:-20}"
targets=(redact)
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi

toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

echo "== building fuzz targets"
cargo "${toolchain[@]}" fuzz build

status=0
for t in "${targets[@]}"; do
    echo "== fuzz ${t} for ${seconds}s"
    mkdir -p "corpus/${t}"
    if ! cargo "${toolchain[@]}" fuzz run "$t" "corpus/${t}" -- \
        -max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        echo "!! fuzz target ${t} failed; see artifacts/${t}/" >&2
        status=1
    fi
done
exit "$status"
