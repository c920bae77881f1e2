#!/usr/bin/env bash
# End-to-end forward benchmark, recorded (never asserted): polymoe's in-process forward on the
# tiny preset and on OLMoE-1B-7B dimensions with 2 layers (S 512, f32 and bf16 compute), the
# whole `polymoe forward` process on a bf16 checkpoint of those dimensions (load + compute +
# writing all outputs), and the PyTorch reference (tools/bench_torch.py forward) timed in the
# same run.
# Appends JSON lines to bench/results/<host>.jsonl. Usage: bench/forward_vs_torch.sh [build dir]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/release}/polymoe
out=bench/results/$(hostname -s).jsonl
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p bench/results
olmoe2=(--preset olmoe-1b-7b --set num_hidden_layers=2)
"$bin" bench forward --preset tiny --seq 512 --threads 2 --out "$out"
"$bin" bench forward "${olmoe2[@]}" --seq 512 --threads 2 --dtype f32 --compute f32 --out "$out"
"$bin" bench forward "${olmoe2[@]}" --seq 512 --threads 2 --dtype bf16 --compute bf16 --out "$out"
# Whole process: a 2-layer real-dimension bf16 checkpoint, 512 tokens, every output written.
"$bin" init "${olmoe2[@]}" --dtype bf16 --shards 2 --out "$tmp/olmoe2"
/usr/bin/python3 -c "import random; random.seed(0); print(' '.join(str(random.randrange(50280)) for _ in range(512)))" > "$tmp/tokens.txt"
for compute in bf16 f32; do
    start=$(date +%s.%N)
    "$bin" forward --model "$tmp/olmoe2" --tokens "$tmp/tokens.txt" --out "$tmp/out.safetensors" \
        --compute "$compute" --threads 2
    end=$(date +%s.%N)
    /usr/bin/python3 - "$start" "$end" "$compute" "$out" <<'PY'
import json, sys
start, end, compute, out = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
line = json.dumps({"bench": "forward_process", "impl": "polymoe forward", "L": 2, "H": 2048,
                   "E": 64, "K": 8, "I": 1024, "V": 50304, "B": 1, "S": 512, "dtype": "bf16",
                   "compute": compute, "threads": 2, "wall_s": end - start,
                   "tokens_per_s": 512 / (end - start)})
print(line)
open(out, "a").write(line + "\n")
PY
done
for dt in f32 bf16; do
    /usr/bin/python3 tools/bench_torch.py forward --layers 2 --seq 512 --dtype "$dt" --threads 2 \
        | tee -a "$out"
done
