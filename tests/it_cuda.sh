#!/usr/bin/env bash
# Integration test of the kforge binary with --target cuda. Without a GPU: `check` and `bench`
# say clearly that the cuda target is unavailable and why. With a GPU: a hand-written CUDA
# program verifies under `check`, and `bench` verifies the naive agent's cuda program.
set -u
cd "$(dirname "$0")/.."
K=${KFORGE_BIN:-build/kforge}; case "$K" in /*) ;; *) K="$PWD/$K" ;; esac
PY=${KFORGE_PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import torch' 2>/dev/null; then
  echo "SKIP: $PY cannot import torch"; exit 0
fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fails=0
ok()   { echo "ok   $*"; }
bad()  { echo "FAIL $*"; fails=$((fails+1)); }
expect() { if eval "$1"; then ok "$2"; else bad "$2"; fi; }

# a CUDA ReLU program
mkdir -p "$T/relu"
cat > "$T/relu/kernels.cu" <<'CU'
extern "C" __global__ void relu(const float *x, float *y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
CU
"$PY" - "$T/relu/plan.json" <<'PYEOF'
import json, sys
n = 4 * 32
plan = {"format": "kforge-program/1", "target": "cuda", "agent": "test:it_cuda",
        "sources": ["kernels.cu"],
        "kernels": [{"name": "relu", "params": [{"name": "x", "kind": "ptr"}, {"name": "y", "kind": "ptr"},
                                                {"name": "n", "kind": "i64"}]}],
        "buffers": [{"name": "x", "role": "input", "index": 0, "dtype": "f32", "shape": [4, 32]},
                    {"name": "y", "role": "output", "index": 0, "dtype": "f32", "shape": [4, 32]}],
        "steps": [{"op": "launch", "kernel": "relu", "args": ["x", "y", {"i64": n}],
                   "grid": [1, 1, 1], "block": [128, 1, 1], "shared_bytes": 0}]}
json.dump(plan, open(sys.argv[1], "w"))
PYEOF
"$PY" - <<'PYEOF' > "$T/shape.txt"
import runpy
m = runpy.run_path("tests/problems/relu.py")
print(list(m["get_inputs"]()[0].shape))
PYEOF
expect 'grep -q "\[4, 32\]" "$T/shape.txt"' "tests/problems/relu.py takes a [4, 32] input"

KFORGE_PYTHON=$PY $K check tests/problems/relu.py "$T/relu" --target cuda --no-time > "$T/check.txt" 2>&1; rc=$?
if grep -q "cuda target unavailable: " "$T/check.txt"; then
  expect '[ $rc -eq 2 ]' "check --target cuda without a GPU exits 2"
  expect 'grep -q "target cuda unavailable: cuda target unavailable: .*(.*)" "$T/check.txt"' \
    "the message says why: $(head -c 200 "$T/check.txt")"
  (cd "$T" && KFORGE_PYTHON=$PY "$K" bench "$OLDPWD/tests/problems/relu.py" --target cuda --agents naive \
     --json "$T/b.json" --db "$T/b.db" > "$T/bench.txt" 2>&1)
  expect 'grep -q "cuda target unavailable" "$T/bench.txt"' "bench --target cuda without a GPU names the reason"
  echo "no GPU here: the GPU half of this test did not run"
else
  expect '[ $rc -eq 0 ] && grep -q "status: verified" "$T/check.txt"' "a CUDA program verifies under check"
  KFORGE_PYTHON=$PY $K bench tests/problems/linear_gelu.py --target cuda --agents naive --json "$T/b.json" \
    --db "$T/b.db" > "$T/bench.txt" 2>&1; rc=$?
  expect '[ $rc -eq 0 ] && grep -q "\"status\":[[:space:]]*\"verified\"" "$T/b.json"' "bench: the naive agent's cuda program verifies"
fi
[ $fails -eq 0 ] || { echo "--- check output:"; cat "$T/check.txt"; cat "$T/bench.txt" 2>/dev/null; }
exit $fails
