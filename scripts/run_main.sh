#!/usr/bin/env bash
# The README's main job: install dependencies, build the release preset and run the whole study
# on the embedded corpus (`polymoe demo`): prepare the UDHR + English corpus, pretrain the
# 16-layer demo base model on English, continue pretraining on five high-resource languages
# (stage 1) and five related low-resource languages (stage 2), and trace all three checkpoints
# on held-out text. Outputs go to out/demo/ (rerunning skips finished steps). Extra arguments are
# passed to the demo, e.g. `bash scripts/run_main.sh --quick`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
build/release/polymoe demo --out out/demo "$@"
