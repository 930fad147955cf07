#!/usr/bin/env bash
# bench/cpu.sh: the CPU benchmark. Builds kforge (make -j2), runs every example problem under
# problems/ through the naive and search agents on the cpu target, and prints last a short
# table: geomean speedup vs PyTorch eager per level (measured in the same run, from the JSON
# report's summary.by_level), counts by status, and the total wall time.
#
# usage: bench/cpu.sh [extra kforge bench arguments...]
# environment: OUT (JSON report path, default bench-cpu.json), DB (store, default a fresh
# temporary file), PROBLEMS (default problems), BUILD (build folder, default build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-bench-cpu.json}
PROBLEMS=${PROBLEMS:-problems}
tmpdb=""
if [ -z "${DB:-}" ]; then
  tmpdb=$(mktemp -d)
  DB="$tmpdb/bench.db"
fi
cleanup() { if [ -n "$tmpdb" ]; then rm -rf "$tmpdb"; fi; }
trap cleanup EXIT

make -j2 BUILD="$BUILD" >/dev/null
start=$(date +%s)
status=0
"$BUILD/kforge" bench "$PROBLEMS" --target cpu --agents naive,search --json "$OUT" --db "$DB" "$@" || status=$?
end=$(date +%s)

/usr/bin/python3 -c '
import json, sys
path, wall = sys.argv[1], int(sys.argv[2])
with open(path) as f:
    rep = json.load(f)
levels = rep.get("summary", {}).get("by_level", {})
def fmt(x):
    return "%.2fx" % x if isinstance(x, (int, float)) else "-"
print()
print("level  problems  geomean vs eager  statuses")
for key in sorted(levels, key=lambda k: (k == "all", k)):
    s = levels[key]
    st = ", ".join("%s %d" % (k, v) for k, v in s.get("by_status", {}).items() if v)
    print("%-5s  %8d  %16s  %s" % (key, s.get("count", 0), fmt(s.get("geomean_speedup_eager")), st or "-"))
wins = {}
for p in rep.get("problems", []):
    if p.get("agent"):
        wins[p["agent"]] = wins.get(p["agent"], 0) + 1
if wins:
    print("winners: " + ", ".join("%s %d" % kv for kv in sorted(wins.items())))
# every problem some agent verified, per agent, from the store (the last run)
try:
    import sqlite3
    db = sqlite3.connect(sys.argv[3])
    run = db.execute("SELECT max(id) FROM runs").fetchone()[0]
    n = db.execute("SELECT count(*) FROM problems WHERE run_id = ?", (run,)).fetchone()[0]
    per = db.execute("SELECT a.agent, count(DISTINCT p.id) FROM attempts a JOIN problems p ON a.problem_id = p.id"
                     " WHERE p.run_id = ? AND a.status = ? GROUP BY a.agent", (run, "verified")).fetchall()
    print("verified by agent: " + ", ".join("%s %d/%d" % (a, k, n) for a, k in sorted(per)))
except Exception as e:
    print("verified by agent: unknown (%s)" % e)
print("total wall time: %dm%02ds" % (wall // 60, wall % 60))
' "$OUT" "$((end - start))" "$DB"
exit $status
