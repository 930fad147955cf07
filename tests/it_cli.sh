#!/usr/bin/env bash
# Integration test of the kforge binary: check (good and bad programs), bench over a folder
# mixing good and broken problem files (the run goes on, each broken file is a one-line
# error), the JSON report's shape, resume after an interrupted run, and show.
set -u
cd "$(dirname "$0")/.."
K=${KFORGE_BIN:-build/kforge}
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "SKIP: /usr/bin/python3 cannot import torch (apt-get install python3-torch)"; exit 0
fi
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fails=0
ok()   { echo "ok   $*"; }
bad()  { echo "FAIL $*"; fails=$((fails+1)); }
expect() { if eval "$1"; then ok "$2"; else bad "$2"; fi; }

# check: a good program verifies (exit 0); a wrong one is a mismatch (exit 1)
$K check tests/problems/relu.py tests/bad_programs/good --no-time > "$T/good.txt" 2>&1; rc=$?
expect '[ $rc -eq 0 ] && grep -q "status: verified" "$T/good.txt"' "check good program verifies"
$K check tests/problems/relu.py tests/bad_programs/writes_nothing --no-time > "$T/wn.txt" 2>&1; rc=$?
expect '[ $rc -eq 1 ] && grep -q "status: mismatch" "$T/wn.txt"' "check writes_nothing is a mismatch"
$K check tests/problems/relu.py "$T/no_such_program" > "$T/np.txt" 2>&1; rc=$?
expect '[ $rc -ne 0 ] && grep -q "status: invalid" "$T/np.txt"' "check on a missing program folder is invalid"
$K check > /dev/null 2>&1; rc=$?
expect '[ $rc -eq 2 ]' "check without arguments is a usage error"

# bench over good and broken problems
mkdir -p "$T/suite/level1" "$T/suite/level2"
cp tests/problems/relu.py tests/problems/linear_gelu.py "$T/suite/level1/"
cp tests/problems/not_a_problem.py tests/problems/raises_in_init.py tests/problems/syntax_error.py "$T/suite/level2/"
$K bench "$T/suite" --agents naive --attempts 2 --db "$T/k.db" --json "$T/r.json" --quiet > "$T/bench.txt" 2>&1; rc=$?
cat "$T/bench.txt"
expect '[ $rc -eq 0 ]' "bench finishes despite broken problems"
expect '[ -s "$T/r.json" ]' "bench writes the JSON report"
/usr/bin/python3 - "$T/r.json" > "$T/json.txt" 2>&1 <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ps = {p["path"].split("/")[-1]: p for p in r["problems"]}
assert len(ps) == 5, ps.keys()
for k in ("path", "level", "status", "eager_ms", "compile_ms", "kforge_ms", "speedup_eager",
          "speedup_compile", "agent", "attempts"):
    assert all(k in p for p in r["problems"]), k
assert ps["relu.py"]["status"] == "verified", ps["relu.py"]
assert ps["relu.py"]["level"] == 1 and ps["not_a_problem.py"]["level"] == 2
assert ps["relu.py"]["speedup_eager"] > 0 and ps["relu.py"]["agent"] == "naive"
for bad in ("not_a_problem.py", "raises_in_init.py", "syntax_error.py"):
    assert ps[bad]["status"] == "error", ps[bad]
assert "by_level" in r["summary"] and "1" in r["summary"]["by_level"]
print("json ok")
PY
expect 'grep -q "json ok" "$T/json.txt"' "JSON report has every problem, field and status"; cat "$T/json.txt"

# show the winner
$K show "$T/k.db" relu > "$T/show.txt" 2>&1; rc=$?
expect '[ $rc -eq 0 ] && grep -q "kernels.c" "$T/show.txt"' "show prints the winning sources"

# resume: a second run with --resume redoes nothing
$K bench "$T/suite" --agents naive --attempts 2 --db "$T/k.db" --resume --quiet > "$T/resume.txt" 2>&1; rc=$?
expect '[ $rc -eq 0 ] && grep -q "5 problems were already finished" "$T/resume.txt"' "resume skips finished problems"

# interrupt: SIGINT during a run loses nothing finished; --resume completes it
cp tests/problems/tuple_out.py tests/problems/batchnorm_train.py "$T/suite/level1/"
$K bench "$T/suite" --agents naive --attempts 2 --db "$T/k2.db" --quiet > "$T/int.txt" 2>&1 &
pid=$!
for i in $(seq 1 100); do
  n=$(/usr/bin/python3 -c "import sqlite3,sys
try:
  c=sqlite3.connect(sys.argv[1]); print(c.execute(\"select count(*) from problems where done=1\").fetchone()[0])
except Exception: print(0)" "$T/k2.db" 2>/dev/null || echo 0)
  [ "${n:-0}" -ge 1 ] && break; sleep 0.3
done
kill -INT $pid; wait $pid; rc=$?
expect '[ $rc -eq 130 ] && grep -q "interrupted" "$T/int.txt"' "Ctrl-C stops the run with a resume hint"
$K bench "$T/suite" --agents naive --attempts 2 --db "$T/k2.db" --resume --quiet > "$T/int2.txt" 2>&1; rc=$?
expect '[ $rc -eq 0 ] && grep -q "already finished" "$T/int2.txt"' "resume after an interrupt continues"

# no PyTorch for the oracle, no C compiler: a clear one-line error per problem, the run goes on
mkdir -p "$T/notorch"
echo 'raise ImportError("No module named torch")' > "$T/notorch/torch.py"
printf '#!/bin/sh\nPYTHONPATH="%s" exec /usr/bin/python3 "$@"\n' "$T/notorch" > "$T/notorch/py"
chmod +x "$T/notorch/py"
KFORGE_PYTHON="$T/notorch/py" $K bench tests/problems/relu.py tests/problems/tuple_out.py --db "$T/nt.db" \
  --json "$T/nt.json" > "$T/nt.txt" 2>&1; rc=$?
cat "$T/nt.txt"
expect '[ $rc -eq 0 ] && grep -q "cannot import torch" "$T/nt.txt" && [ $(grep -c "error: .*cannot import torch" "$T/nt.txt") -eq 2 ]' \
  "missing PyTorch: one error line per problem, run completes"
KFORGE_CC=/nonexistent/cc $K bench tests/problems/relu.py tests/problems/tuple_out.py --db "$T/nc.db" > "$T/nc.txt" 2>&1; rc=$?
cat "$T/nc.txt"
expect '[ $rc -eq 0 ] && [ $(grep -c "error: .*no C compiler" "$T/nc.txt") -eq 2 ]' \
  "missing C compiler: one error line per problem, run completes"

echo "$fails failures"
[ $fails -eq 0 ]
