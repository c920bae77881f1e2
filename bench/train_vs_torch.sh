#!/usr/bin/env bash
# Training throughput, recorded (never asserted): `polymoe train` on the tiny preset (B x S =
# 8 x 256, objective hf_z, AdamW, clip 1.0, f32) and the PyTorch reference (bench/torch_train.py,
# same shape and losses) timed in the same run, then the ratio. Medians over steps 2..N (step 1
# allocates), and each side's peak RSS (getrusage ru_maxrss, MiB). Appends JSON lines to
# bench/results/<host>.jsonl. Usage: bench/train_vs_torch.sh [build dir] [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/release}/polymoe
steps=${2:-6}
out=bench/results/$(hostname -s).jsonl
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" init --preset tiny --seed 1 --out "$tmp/tiny" > /dev/null
/usr/bin/python3 -c "import random; random.seed(0); [print(' '.join(str(random.randrange(50280)) for _ in range(256))) for _ in range(8)]" > "$tmp/tokens.txt"
POLYMOE_PROGRESS=0 "$bin" train --model "$tmp/tiny" --tokens "$tmp/tokens.txt" --out "$tmp/run" \
    --steps "$steps" --objective hf_z --threads 2 2> /dev/null
ours=$(/usr/bin/python3 - "$tmp/run/log.jsonl" <<'PY'
import json, statistics, subprocess, sys
steps = [j for j in map(json.loads, open(sys.argv[1])) if "event" not in j]
med = statistics.median(s["seconds"] for s in steps[1:])
commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
print(json.dumps({"bench": "train", "impl": "polymoe train", "commit": commit, "L": 4, "H": 256,
                  "E": 16, "K": 4, "I": 128, "V": 50304, "B": 8, "S": 256, "dtype": "f32",
                  "threads": 2, "steps": len(steps), "median_s": med, "tokens_per_s": 2048 / med,
                  "peak_rss_mib": steps[-1]["peak_rss_mib"]}))
PY
)
theirs=$(cd bench && /usr/bin/python3 torch_train.py --steps "$steps" --threads 2)
echo "$ours" | tee -a "$out"
echo "$theirs" | tee -a "$out"
/usr/bin/python3 -c "import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(json.dumps({'bench':'train_ratio','polymoe_over_pytorch': a['tokens_per_s']/b['tokens_per_s']}))" "$ours" "$theirs" | tee -a "$out"
