#!/usr/bin/env bash
# it_llm_bench.sh: `kforge bench PROBLEM --agents naive,llm:openai:mock-model --attempts 5`
# against the local mock LLM server (tests/tool_mock_llm replaying tests/llm_fixtures/
# relu_bench.json: a wrong kernel, a malformed answer, a 429, a kernel that does not compile, a
# right one, a faster one). Checks the whole loop through the harness: the feedback text the
# model received after each attempt, the per-attempt records in the store, and that no key,
# prompt or response leaks into the JSON report, the store or the terminal.
set -u
cd "$(dirname "$0")/.."
K=${KFORGE_BIN:-build/kforge}
TOOL="$(dirname "$K")/tests/tool_mock_llm"
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "SKIP: /usr/bin/python3 cannot import torch (apt-get install python3-torch)"; exit 0
fi
if [ ! -x "$TOOL" ]; then echo "FAIL: $TOOL is missing (make tests builds it)"; exit 1; fi
KEY=sk-it-llm-bench-0123456789SECRET
. tests/mock_llm_lib.sh
mock_llm_start tests/llm_fixtures/relu_bench.json "$KEY" 900

mkdir -p "$T/suite/level1"
cp tests/problems/relu.py "$T/suite/level1/"
env -u ANTHROPIC_API_KEY OPENAI_API_KEY="$KEY" OPENAI_BASE_URL="http://127.0.0.1:$PORT/v1" \
  "$K" bench "$T/suite" --agents naive,llm:openai:mock-model --attempts 5 --llm-profile --db "$T/k.db" \
  --json "$T/r.json" > "$T/out.txt" 2>&1; rc=$?
cat "$T/out.txt"
expect '[ $rc -eq 0 ]' "bench with an llm agent finishes"
expect '[ -s "$T/r.json" ]' "bench writes the JSON report"

# What the model was told, turn by turn (requests 3 and 4 are the 429 and its retry).
/usr/bin/python3 - "$T/log" > "$T/feedback.txt" 2>&1 <<'PY'
import json, os, sys
log = sys.argv[1]
def req(n):
    return json.load(open(os.path.join(log, "req-%03d.json" % n)))
def last_user(n):
    m = req(n)["messages"]
    assert m[-1]["role"] == "user", m[-1]["role"]
    return m[-1]["content"]
n = len([f for f in os.listdir(log) if f.endswith(".json")])
assert n == 6, "expected 6 requests, got %d" % n
r1 = req(1)["messages"]
assert [m["role"] for m in r1] == ["system", "user"], r1
assert "class Model(nn.Module)" in r1[1]["content"] and "torch.relu(x)" in r1[1]["content"]
assert "x0: f32[4, 32]" in r1[1]["content"], "graph summary missing"
assert req(1)["model"] == "mock-model"
f2 = last_user(2)
assert "Attempt 1 of 5 compiled and ran, but its output is wrong (status: mismatch)." in f2, f2
assert "Worst element: trial " in f2 and "got " in f2 and "expected " in f2, f2
f3 = last_user(3)
assert f3.startswith("Your answer to attempt 2 of 5 could not be read as a kernel program: "
                     "no ```json block with plan.json was found"), f3
assert req(3) == req(4), "the retry after 429 must resend the same request"
f5 = last_user(5)
assert "Attempt 3 of 5 failed to compile (status: compile_error)." in f5, f5
assert "error: expected" in f5 and "kernels.c:" in f5, f5
f6 = last_user(6)
assert "Attempt 4 of 5 is correct: it matched PyTorch on every trial (status: verified)." in f6, f6
assert "Its time: " in f6 and "Now make it faster" in f6, f6
assert "PyTorch eager: " in f6 and "speedup over eager" in f6, f6
assert "Profile: Your last kernel program moved " in f6 and "GB/s" in f6, f6
assert len(req(6)["messages"]) == 10, len(req(6)["messages"])
print("feedback ok")
PY
expect 'grep -q "feedback ok" "$T/feedback.txt"' "the model received the exact harness results"
cat "$T/feedback.txt"

# Per-attempt records in the store.
/usr/bin/python3 - "$T/k.db" > "$T/store.txt" 2>&1 <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT number, status FROM attempts WHERE agent = 'llm:openai:mock-model' "
                  "ORDER BY number").fetchall()
assert [r[1] for r in rows] == ["mismatch", "invalid", "compile_error", "verified", "verified"], rows
assert [r[0] for r in rows] == [1, 2, 3, 4, 5], rows
naive = db.execute("SELECT count(*) FROM attempts WHERE agent = 'naive'").fetchone()[0]
assert naive >= 1, naive
print("store ok")
PY
expect 'grep -q "store ok" "$T/store.txt"' "every llm attempt is recorded with its status"
cat "$T/store.txt"

# No key anywhere; no prompt or response text in the report or on the terminal.
expect '! grep -rqa -- "$KEY" "$T/out.txt" "$T/r.json" "$T/k.db"' "the key is in no output, report or store"
expect '! grep -q "You are an expert performance engineer" "$T/out.txt" "$T/r.json"' "no prompt text in the report or terminal"
expect '! grep -q "Wrong on purpose" "$T/out.txt" "$T/r.json"' "no response text in the report or terminal"

# A missing key is a clear error naming the variable.
env -u OPENAI_API_KEY "$K" bench "$T/suite" --agents llm:openai:mock-model --attempts 1 \
  --db "$T/k2.db" > "$T/nokey.txt" 2>&1; rc=$?
expect '[ $rc -ne 0 ] && grep -q "OPENAI_API_KEY is not set (needed by agent llm:openai:mock-model)" "$T/nokey.txt"' \
  "a missing key names the variable"
cat "$T/nokey.txt"

echo "$fails failed"
[ $fails -eq 0 ]
