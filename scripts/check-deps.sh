#!/usr/bin/env bash
# Supply-chain gate: licenses and banned/duplicate crates (deny.toml).
# Installs cargo-deny when missing. The advisory check needs the RustSec
# database download, so it is not run here: see docs/supply-chain.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo-deny >/dev/null 2>&1 || cargo install cargo-deny --locked --quiet
cargo deny check bans licenses
