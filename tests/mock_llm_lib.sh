# mock_llm_lib.sh: sourced by the integration tests that talk to the mock LLM server
# (tests/tool_mock_llm): the ok/bad/expect helpers, and mock_llm_start FIXTURE KEY LIFETIME,
# which makes the temporary folder $T, starts the server on FIXTURE (replaying its answers to
# requests carrying KEY), sets $MOCK and $PORT, and stops it and removes $T on exit. $TOOL is
# the server binary (set by the caller).
fails=0
ok()   { echo "ok   $*"; }
bad()  { echo "FAIL $*"; fails=$((fails+1)); }
expect() { if eval "$1"; then ok "$2"; else bad "$2"; fi; }

mock_llm_start() {
  T=$(mktemp -d)
  "$TOOL" --fixture "$1" --log "$T/log" --key "$2" --lifetime "$3" > "$T/port" 2> "$T/mock.err" &
  MOCK=$!
  trap 'kill $MOCK 2>/dev/null; wait $MOCK 2>/dev/null; rm -rf "$T"' EXIT
  for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
  PORT=$(head -n1 "$T/port")
  expect '[ -n "$PORT" ]' "the mock server started (port $PORT)"
}
