#!/usr/bin/env bash
# Ablation throughput (issue 9): evaluations per second of `polymoe ablate` on the `tiny` shape
# (random init; the speed does not depend on the weights) over the embedded corpus's held-out
# text, 11 languages x top-2 experts per layer, one random control, --max-tokens per language.
# One evaluation = one full pass over the held-out tokens under one intervention; ablate loads
# the model once and reuses it for all of them. Prints ablate's summary and one JSON line.
# Usage: bench/ablate_throughput.sh [BUILD_DIR] [MAX_TOKENS]    (default build/release, 256)
set -euo pipefail
BUILD=${1:-build/release}
MAX=${2:-256}
cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/polymoe_ablate_bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
P="$BUILD/polymoe"
export POLYMOE_PROGRESS=0
"$P" prepare --manifest configs/corpus/udhr.yaml --out "$WORK/prep" >/dev/null
"$P" init --preset tiny --seed 1 --out "$WORK/tiny" >/dev/null
"$P" trace --model "$WORK/tiny" --data "$WORK/prep" --max-tokens "$MAX" --seq 128 \
    --out "$WORK/tiny.trace" >/dev/null 2>&1
"$P" analyze --trace "$WORK/tiny.trace" --bootstrap 0 --permutations 0 --no-drift \
    --out "$WORK/analysis.json" >/dev/null 2>&1
"$P" ablate --model "$WORK/tiny" --data "$WORK/prep" --analysis "$WORK/analysis.json" \
    --experts top --top-m 2 --random-seeds 1 --bootstrap 100 --seq 128 --max-tokens "$MAX" \
    --out "$WORK/interventions.json" 2>&1 | tail -1
/usr/bin/python3 - "$WORK/interventions.json" "$MAX" "$(nproc)" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(json.dumps({"bench": "ablate", "shape": "tiny", "max_tokens_per_language": int(sys.argv[2]),
                  "threads": int(sys.argv[3]), "evaluations": j["evaluations"],
                  "seconds": round(j["seconds"], 3),
                  "evaluations_per_s": round(j["evaluations_per_s"], 3)}))
PY
