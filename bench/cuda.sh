#!/usr/bin/env bash
# bench/cuda.sh: the GPU benchmark, for a machine with an NVIDIA GPU. Builds kforge
# (BUILD=build-gpu), runs `kforge bench` on the GPU suite (problems_gpu/, one level at a time so
# a level that runs out of time does not lose the others) with --target cuda and the naive
# agent by default, PyTorch eager and torch.compile timed in the same run on the same GPU (strict
# float32, and again at PyTorch's default precision; L2 flushed with a 128 MiB write before every
# timed run), and prints a per-problem table, then last a table: geomean speedup per level vs
# eager and vs torch.compile (strict, and at torch's defaults), correctness counts, wall time.
#
# usage: bench/cuda.sh [extra kforge bench arguments...]
# environment:
#   PROBLEMS   suite folder (default problems_gpu); its level*/ folders are run in order
#   AGENTS     default search
#   OUTDIR     where the JSON reports go (default bench-cuda/)
#   LEVELS     the level folders to run, e.g. "level1 level2" (default all)
#   LEVEL_TIMEOUT  seconds allowed per level (default 1800)
#   DEVDEPS    a folder with include/ and lib/ holding cJSON, SQLite, libcurl and (OpenBLAS)
#              headers and libraries for machines without Debian's dev packages (default
#              .devdeps when it exists); linked with an rpath into it
#   KFORGE_PYTHON  the interpreter with torch (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gpu}
PROBLEMS=${PROBLEMS:-problems_gpu}
AGENTS=${AGENTS:-search}
OUTDIR=${OUTDIR:-bench-cuda}
LEVEL_TIMEOUT=${LEVEL_TIMEOUT:-1800}
export KFORGE_PYTHON=${KFORGE_PYTHON:-python3}
mkdir -p "$OUTDIR"

# build
DEVDEPS=${DEVDEPS:-}
if [ -z "$DEVDEPS" ] && [ -d .devdeps ]; then DEVDEPS=$(pwd)/.devdeps; fi
if [ -n "$DEVDEPS" ]; then
  export CFLAGS="-I$DEVDEPS/include ${CFLAGS:-}"
  export LDLIBS="-L$DEVDEPS/lib -Wl,--disable-new-dtags -Wl,-rpath,$DEVDEPS/lib ${LDLIBS:-}"
fi
make -j"$(nproc)" BUILD="$BUILD" "$BUILD/kforge" >"$OUTDIR/build.log" 2>&1 || { tail -n 30 "$OUTDIR/build.log"; exit 1; }

# NVRTC, cuBLAS and cuDNN: the copies PyTorch's wheels bring, else the toolkit's
libdirs=$("$KFORGE_PYTHON" - <<'PY' 2>/dev/null || true
import glob, os
try:
    import nvidia
    roots = list(nvidia.__path__)
except Exception:
    roots = []
dirs = []
for r in roots:
    for pat in ("**/libnvrtc.so*", "**/libcublas.so*", "**/libcudnn.so*"):
        for f in glob.glob(os.path.join(r, pat), recursive=True):
            d = os.path.dirname(f)
            if d not in dirs:
                dirs.append(d)
print(":".join(dirs))
PY
)
[ -d /usr/local/cuda/lib64 ] && libdirs="${libdirs:+$libdirs:}/usr/local/cuda/lib64"
export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# the architecture NVRTC compiles for, read once here (else each build probes the GPU)
if [ -z "${KFORGE_CUDA_ARCH:-}" ] && command -v nvidia-smi >/dev/null; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
  if [ -n "$cc" ]; then export KFORGE_CUDA_ARCH="sm_$cc"; fi
fi

tmpdb=$(mktemp -d "${TMPDIR:-/tmp}/kforge-bench-cuda.XXXXXX")
trap 'rm -rf "$tmpdb"' EXIT
start=$(date +%s)
status=0
for dir in "$PROBLEMS"/level*/; do
  lvl=$(basename "$dir")
  if [ -n "${LEVELS:-}" ] && [[ " $LEVELS " != *" $lvl "* ]]; then continue; fi
  echo "== $lvl"
  timeout "$LEVEL_TIMEOUT" "$BUILD/kforge" bench "$dir" --target cuda --agents "$AGENTS" --flush-mb 128 \
    --json "$OUTDIR/$lvl.json" --db "$tmpdb/bench.db" "$@" || status=$?
done
end=$(date +%s)

"$KFORGE_PYTHON" - "$OUTDIR" "$((end - start))" <<'PY'
import glob, json, math, os, sys
outdir, wall = sys.argv[1], int(sys.argv[2])
rows = {}
for path in sorted(glob.glob(os.path.join(outdir, "level*.json"))):
    with open(path) as f:
        rep = json.load(f)
    for p in rep.get("problems", []):
        rows[p["path"]] = p
def gm(xs):
    xs = [x for x in xs if isinstance(x, (int, float)) and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None
def fmt(x):
    return "%.2fx" % x if isinstance(x, (int, float)) and x > 0 else "-"
levels = sorted({p.get("level") for p in rows.values() if p.get("level") is not None})
print()
print("%-48s %-10s %9s %9s %9s %8s %8s %8s %8s  %s" % ("problem", "status", "eager ms", "compile", "kforge",
      "vs eag", "vs comp", "eag dflt", "cmp dflt", "agent"))
for path in sorted(rows, key=lambda k: (rows[k].get("level") or 0, int(os.path.basename(k).split("_")[0]) if os.path.basename(k).split("_")[0].isdigit() else 0)):
    p = rows[path]
    def ms(x):
        return "%.3f" % x if isinstance(x, (int, float)) and x > 0 else "-"
    print("%-48s %-10s %9s %9s %9s %8s %8s %8s %8s  %s" % (path[-48:], p["status"], ms(p.get("eager_ms")),
          ms(p.get("compile_ms")), ms(p.get("kforge_ms")), fmt(p.get("speedup_eager")),
          fmt(p.get("speedup_compile")), fmt(p.get("speedup_eager_default")),
          fmt(p.get("speedup_compile_default")), p.get("agent") or "-"))
print()
print("%-5s %8s %9s %10s %10s %12s %12s  %s" % ("level", "problems", "verified", "vs eager", "vs compile",
      "eager dflt", "compile dflt", "statuses"))
for lv in levels + ["all"]:
    ps = [p for p in rows.values() if lv == "all" or p.get("level") == lv]
    ok = [p for p in ps if p["status"] == "verified" and not p.get("degenerate")]
    st = {}
    for p in ps:
        st[p["status"]] = st.get(p["status"], 0) + 1
    print("%-5s %8d %9d %10s %10s %12s %12s  %s" % (lv, len(ps), len([p for p in ps if p["status"] == "verified"]),
          fmt(gm([p.get("speedup_eager") for p in ok])), fmt(gm([p.get("speedup_compile") for p in ok])),
          fmt(gm([p.get("speedup_eager_default") for p in ok])), fmt(gm([p.get("speedup_compile_default") for p in ok])),
          ", ".join("%s %d" % kv for kv in sorted(st.items()))))
print("(strict float32 unless marked dflt: PyTorch at its default precision, TF32 for cuDNN convolutions)")
print("total wall time: %dm%02ds; KFORGE_GPU_SCALE=%s" % (wall // 60, wall % 60, os.environ.get("KFORGE_GPU_SCALE", "1")))
PY
exit $status
