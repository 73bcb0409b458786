#!/bin/bash
# Runs every check: formatting, lints, all tests (incl. the differential
# tests against the real ignition-validate) and a short fuzz run per target.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/boxcar-target}
# Incremental artefacts only cost disk on a one-shot run (they reached 8 GB).
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
for t in $(cd fuzz && cargo +nightly fuzz list); do
  mkdir -p "$CARGO_TARGET_DIR/fuzz-corpus/$t"
  (cd fuzz && cargo +nightly fuzz run --target-dir "$CARGO_TARGET_DIR/fuzz" "$t" \
     "$CARGO_TARGET_DIR/fuzz-corpus/$t" "seeds/$t" -- -max_total_time="$FUZZ_SECONDS" -max_len=65536 2>&1 | tail -n 3)
done
echo "all checks passed"
