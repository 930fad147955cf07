#!/usr/bin/env bash
# it_confirm_winner.sh: the bench keeps the candidate that is fastest under the full timing
# protocol, not the one that only looked fastest while being ranked. A mock LLM (tests/
# tool_mock_llm) proposes two correct ReLU programs: the first is fast for its first 8 runs in
# a process and 3 ms slower after that (short ranking sessions see it fast, the full protocol
# sees it slow), the second takes a steady 1 ms. The winner must be the second, and the
# output must say why.
set -u
cd "$(dirname "$0")/.."
K=${KFORGE_BIN:-build/kforge}
TOOL="$(dirname "$K")/tests/tool_mock_llm"
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "SKIP: /usr/bin/python3 cannot import torch (apt-get install python3-torch)"; exit 0
fi
if [ ! -x "$TOOL" ]; then echo "FAIL: $TOOL is missing (make tests builds it)"; exit 1; fi
KEY=sk-it-confirm-0123456789SECRET
. tests/mock_llm_lib.sh
mock_llm_start tests/llm_fixtures/confirm_winner.json "$KEY" 600

mkdir -p "$T/suite/level1"
cp tests/problems/relu.py "$T/suite/level1/"
env -u ANTHROPIC_API_KEY OPENAI_API_KEY="$KEY" OPENAI_BASE_URL="http://127.0.0.1:$PORT/v1" \
  KFORGE_CACHE="$T/cache" "$K" bench "$T/suite" --agents llm:openai:mock-model --attempts 2 \
  --no-compile --db "$T/k.db" --json "$T/r.json" > "$T/out.txt" 2>&1; rc=$?
cat "$T/out.txt"
expect '[ $rc -eq 0 ]' "bench finishes"
expect 'grep -q "under the full protocol" "$T/out.txt" && grep -q "the runner-up (llm:openai:mock-model) took" "$T/out.txt"' \
  "the disagreement between ranking and full timing is reported"
/usr/bin/python3 - "$T/k.db" "$T/r.json" > "$T/check.txt" 2>&1 <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
win = db.execute("SELECT a.number, a.ms FROM problems p JOIN attempts a ON a.id = p.winner_attempt").fetchall()
ranked = dict(db.execute("SELECT number, ms FROM attempts").fetchall())
rep = json.load(open(sys.argv[2]))["problems"][0]
assert win and win[0][0] == 2, "winner %r, attempts %r" % (win, ranked)
assert ranked[1] < ranked[2], "the bimodal program must rank first: %r" % ranked
assert 0.9 < rep["kforge_ms"] < 2.0, "reported time %r is the steady program's" % rep["kforge_ms"]
print("ok")
PY
expect 'grep -q "^ok" "$T/check.txt"' "the steady program wins with its own time: $(tail -n1 "$T/check.txt")"
[ $fails -eq 0 ] && echo "PASS it_confirm_winner.sh" || echo "FAIL it_confirm_winner.sh ($fails)"
exit $fails
