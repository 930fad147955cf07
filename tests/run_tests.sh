#!/usr/bin/env bash
# Runs every C test binary under $BUILD/tests, then every tests/it_*.sh integration script.
# Exit status is nonzero if any failed. GPU tests skip themselves where no GPU is present.
set -u
BUILD=${BUILD:-build}
export KFORGE_BIN="$(cd "$(dirname "$0")/.." && pwd)/$BUILD/kforge"
cd "$(dirname "$0")/.."
fail=0; ran=0; failed=()
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  ran=$((ran+1)); start=$(date +%s)
  if "$t" > "$BUILD/tests/$(basename "$t").log" 2>&1; then
    echo "PASS $(basename "$t") ($(( $(date +%s) - start ))s)"
  else
    echo "FAIL $(basename "$t") ($(( $(date +%s) - start ))s)"; tail -n 40 "$BUILD/tests/$(basename "$t").log"
    fail=1; failed+=("$(basename "$t")")
  fi
done
for s in tests/it_*.sh; do
  [ -f "$s" ] || continue
  ran=$((ran+1)); start=$(date +%s); log="$BUILD/tests/$(basename "$s").log"
  if bash "$s" > "$log" 2>&1; then
    echo "PASS $(basename "$s") ($(( $(date +%s) - start ))s)"
  else
    echo "FAIL $(basename "$s") ($(( $(date +%s) - start ))s)"; tail -n 40 "$log"
    fail=1; failed+=("$(basename "$s")")
  fi
done
echo "ran $ran test programs; ${#failed[@]} failed ${failed[*]:-}"
exit $fail
