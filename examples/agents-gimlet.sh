#!/usr/bin/env bash
# agents-gimlet.sh: the swarm of the Gimlet Labs study (8 frontier models, 5 attempts each,
# best verified kernel kept), plus kforge's own agents, on the problems given.
#   usage: bash examples/agents-gimlet.sh PATH... [more kforge bench options]
#   needs: OPENAI_API_KEY, ANTHROPIC_API_KEY, DEEPSEEK_API_KEY (see docs/llm.md)
# Model names and prices (USD per million tokens, prompt/completion) are examples: edit them to
# the models you want and your providers' current prices. Drop a line to leave a model out.
set -eu
KFORGE=${KFORGE_BIN:-$(dirname "$0")/../build/kforge}
AGENTS=(
  naive
  search
  "llm:anthropic:claude-sonnet-4-20250514?price_in=3&price_out=15"
  "llm:anthropic:claude-opus-4-20250514?price_in=15&price_out=75"
  "llm:openai:gpt-4o?price_in=2.5&price_out=10"
  "llm:openai:gpt-4.1?price_in=2&price_out=8"
  "llm:openai:gpt-5?price_in=1.25&price_out=10&timeout=1200"
  "llm:openai:o3?price_in=2&price_out=8&timeout=1200"
  "llm:deepseek:deepseek-chat?price_in=0.27&price_out=1.1"
  "llm:deepseek:deepseek-reasoner?price_in=0.55&price_out=2.19&timeout=1200"
)
if [ $# -eq 0 ]; then
  echo "usage: bash $0 PATH... [kforge bench options]" >&2
  exit 2
fi
LIST=$(IFS=,; echo "${AGENTS[*]}")
exec "$KFORGE" bench "$@" --attempts 5 --agents "$LIST"
