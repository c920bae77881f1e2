#!/usr/bin/env bash
# Tokenizer throughput next to the Hugging Face reference, in one run on the same documents.
# Usage: bench/tokenizer_vs_hf.sh BUILD_DIR   (needs npm `tokenizers` in /tmp/tokref, see
# tools/make_tokenizer_goldens.js, or NODE_PATH pointing at it)
set -euo pipefail
BUILD=${1:-build/ci}
cd "$(dirname "$0")/.."
"$BUILD/bench/bench_tokenizer" --benchmark_min_time=1 --benchmark_counters_tabular=true
NODE_PATH=${NODE_PATH:-/tmp/tokref/node_modules} node tools/bench_tokenizer_reference.js \
    data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json tests/fixtures/tokenizer/cases.jsonl
