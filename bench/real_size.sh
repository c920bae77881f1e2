#!/usr/bin/env bash
# Real-size benchmark (issue 7), NOT run in CI: it writes a ~14 GB checkpoint. Generates the
# OLMoE-1B-7B configuration (16 layers, H 2048, E 64, k 8, I 1024, V 50304; 6.9 B parameters)
# with the streaming `polymoe init --dtype bf16`, then runs `polymoe forward` and `polymoe trace`
# with --weights bf16-resident (GEMM weights memory-mapped from the shards) on a short
# multilingual batch: the first S tokens of the UDHR in B languages, one language per row; and
# router-only continual pretraining (`polymoe train --weights bf16-resident --trainable routers`,
# TRAIN_STEPS steps on the B=1 batch, then the final checkpoint written: ~14 GB more on disk).
# Reports peak RSS (GNU time's "Maximum resident set size", which counts the mapped checkpoint
# pages a process touched) and tokens/s, as JSON lines on stdout. The checkpoint directory is
# deleted on exit. Run only one real-size job at a time on a 24 GiB machine.
# Usage: bench/real_size.sh [BUILD_DIR] [S] [B...]   (defaults: build/ci, 512, "1 4")
#        TRAIN_STEPS=N (default 3; 0 skips the training run)
set -euo pipefail
BUILD=${1:-build/ci}
S=${2:-512}
shift 2 2>/dev/null || shift $#
BATCHES=("$@")
[ ${#BATCHES[@]} -eq 0 ] && BATCHES=(1 4)
cd "$(dirname "$0")/.."
P="$BUILD/polymoe"
WORK=$(mktemp -d /tmp/polymoe_real_size.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export POLYMOE_PROGRESS=0
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}  # shared machines: no spin-waiting

# Runs a command under GNU time; prints "<max RSS in KiB> <wall seconds>" on fd 3.
measure() {
    /usr/bin/time -f "%M %e" -o "$WORK/time.txt" "$@" >"$WORK/cmd.log" 2>&1 ||
        { cat "$WORK/cmd.log" >&2; exit 1; }
    cat "$WORK/time.txt"
}

# Token rows: the first S ids of each language's UDHR (all passages concatenated).
LANGS=(eng arb cmn_hans rus hin spa)
for lang in "${LANGS[@]}"; do
    "$P" tokenize --in "data/corpus/udhr/$lang.jsonl" --out "$WORK/$lang.ids"
done
"$P" prepare --manifest configs/corpus/udhr.yaml --out "$WORK/prep" >/dev/null 2>&1

read -r rss secs < <(measure "$P" init --preset olmoe-1b-7b --dtype bf16 --shards 4 --seed 1 \
    --out "$WORK/olmoe")
bytes=$(du -sb "$WORK/olmoe" | cut -f1)
echo "{\"bench\": \"real_size_init\", \"dtype\": \"bf16\", \"shards\": 4, \"bytes\": $bytes," \
     "\"peak_rss_mib\": $((rss / 1024)), \"seconds\": $secs}"

for B in "${BATCHES[@]}"; do
    /usr/bin/python3 - "$WORK" "$S" "$B" "${LANGS[@]}" <<'PY'
import sys
work, S, B, langs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
rows = []
for lang in langs[:B]:
    ids = open(f"{work}/{lang}.ids").read().split()
    if len(ids) < S:
        sys.exit(f"{lang}: expected at least {S} tokens, found {len(ids)}")
    rows.append(" ".join(ids[:S]))
open(f"{work}/tokens_{B}.txt", "w").write("\n".join(rows) + "\n")
PY
    read -r rss secs < <(measure "$P" forward --model "$WORK/olmoe" --weights bf16-resident \
        --tokens "$WORK/tokens_$B.txt" --out "$WORK/fwd_$B.safetensors")
    /usr/bin/python3 - "$WORK/fwd_$B.safetensors.run.json" "$B" "$S" "$rss" "$secs" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(json.dumps({"bench": "real_size_forward", "weights": "bf16-resident", "B": int(sys.argv[2]),
                  "S": int(sys.argv[3]), "ce": round(j["losses"]["loss.ce"], 4),
                  "threads": j["threads"], "tokens_per_s": round(j["tokens_per_second"], 1),
                  "seconds": j["seconds"],
                  "peak_rss_mib": int(sys.argv[4]) // 1024, "process_seconds": float(sys.argv[5])}))
PY
    rm -f "$WORK/fwd_$B.safetensors"
done

read -r rss secs < <(measure "$P" trace --model "$WORK/olmoe" --weights bf16-resident \
    --data "$WORK/prep" --languages eng,arb --max-tokens 512 --seq "$S" --batch 1 \
    --out "$WORK/real.trace")
/usr/bin/python3 - "$WORK/real.trace.run.json" "$S" "$rss" "$secs" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(json.dumps({"bench": "real_size_trace", "weights": "bf16-resident", "seq": int(sys.argv[2]),
                  "threads": j["threads"], "tokens": j["tokens"],
                  "tokens_per_s": round(j["tokens_per_s"], 1),
                  "peak_rss_mib": int(sys.argv[3]) // 1024, "process_seconds": float(sys.argv[4])}))
PY

TRAIN_STEPS=${TRAIN_STEPS:-3}
if [ "$TRAIN_STEPS" -gt 0 ]; then
    read -r rss secs < <(measure "$P" train --model "$WORK/olmoe" --weights bf16-resident \
        --trainable routers --tokens "$WORK/tokens_${BATCHES[0]}.txt" --steps "$TRAIN_STEPS" \
        --lr 1e-4 --out "$WORK/train")
    /usr/bin/python3 - "$WORK/train/log.jsonl" "$rss" "$secs" "$TRAIN_STEPS" <<'PY'
import json, statistics, sys
steps = [json.loads(l) for l in open(sys.argv[1]) if '"step"' in l and '"event"' not in l]
secs = [s["seconds"] for s in steps[1:]]  # per-step seconds; step 1 allocates
print(json.dumps({"bench": "real_size_train", "weights": "bf16-resident", "trainable": "routers",
                  "steps": int(sys.argv[4]), "tokens_per_step": steps[0]["tokens"],
                  "losses": [round(s["loss"], 4) for s in steps],
                  "first_step_s": round(steps[0]["seconds"], 1),
                  "median_step_s_after_first": round(statistics.median(secs), 1) if secs else None,
                  "rss_mib_by_step": [round(s["rss_mib"]) for s in steps],
                  "peak_rss_mib": int(sys.argv[2]) // 1024,
                  "process_seconds_incl_load_and_final_save": float(sys.argv[3])}))
PY
    rm -rf "$WORK/train"
fi
