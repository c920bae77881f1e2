#!/usr/bin/env bash
# The README's main job: install dependencies, build the release preset, create a `tiny` OLMoE
# checkpoint (bf16, 2 shards) and run `polymoe forward` on example tokens, writing into out/.
# (The end-to-end `demo` on the embedded corpus replaces this once it exists.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
bin=build/release/polymoe
mkdir -p out
rm -rf out/tiny
$bin init --preset tiny --seed 1 --dtype bf16 --shards 2 --out out/tiny
$bin forward --model out/tiny --tokens examples/tokens.txt --out out/forward.safetensors
echo "wrote out/forward.safetensors (run record: out/forward.safetensors.run.json)"
