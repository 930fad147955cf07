#!/usr/bin/env bash
# bench/cuda_ipc_check.sh: one device call for the device data path (CUDA IPC from the oracle,
# checks on the device). Builds kforge and tests/test_cuda_ipc (with .devdeps for cJSON/SQLite/
# curl, as bench/cuda.sh), runs the test, then times `kforge bench` of a 1 GiB elementwise
# problem (default problems_gpu/level1/4_gelu.py, full size) with the naive agent on the device
# path (KFORGE_DEVICE_DATA=1) and on the host path (KFORGE_DEVICE_DATA=0). Logs go to $OUT
# (default ./ipc-out). torch.compile is left out (--no-compile) on both paths: its first
# compile is the same on both and not what is measured.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/ipc-out}
mkdir -p "$OUT"
if [ -d .devdeps ]; then
  export CFLAGS="-I$PWD/.devdeps/include" LDLIBS="-L$PWD/.devdeps/lib -Wl,--disable-new-dtags -Wl,-rpath,$PWD/.devdeps/lib"
fi
t0=$(date +%s)
make -j"$(nproc)" BUILD=build-gpu build-gpu/kforge build-gpu/tests/test_cuda_ipc > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
echo "build $(( $(date +%s) - t0 ))s"
NV=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="$NV/cu13/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export KFORGE_PYTHON=${KFORGE_PYTHON:-python3}
if [ -z "${KFORGE_CUDA_ARCH:-}" ] && command -v nvidia-smi >/dev/null; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
  [ -n "$cc" ] && export KFORGE_CUDA_ARCH="sm_$cc"
fi
t0=$(date +%s)
timeout "${TEST_TIMEOUT:-150}" build-gpu/tests/test_cuda_ipc > "$OUT/test_cuda_ipc.log" 2>&1
echo "test_cuda_ipc rc=$? $(( $(date +%s) - t0 ))s"
grep -E "FAIL|SKIP|cases passed|path:|timed:|elements," "$OUT/test_cuda_ipc.log" | head -60
P=${P:-problems_gpu/level1/4_gelu.py}
tmp=$(mktemp -d)
for mode in ${MODES:-1 0}; do
  s=$(date +%s%N)
  KFORGE_DEBUG=1 KFORGE_DEVICE_DATA=$mode timeout "${BENCH_TIMEOUT:-200}" build-gpu/kforge bench "$P" --target cuda \
    --agents naive --no-compile --flush-mb 128 --json "$OUT/bench_$mode.json" --db "$tmp/b$mode.db" \
    > "$OUT/bench_$mode.log" 2>&1
  rc=$?
  e=$(date +%s%N)
  echo "== kforge bench $P --target cuda --agents naive --no-compile (KFORGE_DEVICE_DATA=$mode): rc=$rc wall $(( (e - s) / 1000000 )) ms"
  grep -E "data path|verified|mismatch|error|crash" "$OUT/bench_$mode.log" | head -6
done
rm -rf "$tmp"
