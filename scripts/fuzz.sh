#!/usr/bin/env bash
# Builds and runs every fuzz target of one fuzz crate for N seconds each:
#
#   scripts/fuzz.sh crates/telemetry-init-propagation/fuzz 10
#   scripts/fuzz.sh crates/telemetry-init/fuzz 10
#
# Exits non-zero on any crash, leak, timeout or build failure. Called from CI
# (scripts/test.sh); see docs/fuzzing.md.
#
# Each target starts from `corpus/<target>` (not committed; it grows with every
# run) and `regressions/<target>` (committed: every input that once failed, so
# a fix stays fixed on a fresh clone, where the corpus is empty).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain, or a
# stable one with RUSTC_BOOTSTRAP=1 (sanitizer flags are nightly-only).
set -euo pipefail

dir="${1:?usage: scripts/fuzz.sh <fuzz crate directory> [seconds per target]}"
seconds="${2:-20}"
cd "$dir"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi

# Prefer an installed nightly toolchain; otherwise unlock nightly features on
# the default toolchain.
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)
if [ "${#targets[@]}" -eq 0 ]; then
    echo "no fuzz targets in $dir" >&2
    exit 2
fi

echo "== building fuzz targets"
cargo "${toolchain[@]}" fuzz build

status=0
for t in "${targets[@]}"; do
    echo "== fuzz ${t} for ${seconds}s"
    mkdir -p "corpus/${t}"
    dirs=("corpus/${t}")
    [ -d "regressions/${t}" ] && dirs+=("regressions/${t}")
    if ! cargo "${toolchain[@]}" fuzz run "$t" "${dirs[@]}" -- \
        -max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        echo "!! fuzz target ${t} failed; see ${dir}/artifacts/${t}/" >&2
        status=1
    fi
done
exit "$status"
