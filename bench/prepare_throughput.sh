#!/usr/bin/env bash
# polymoe prepare throughput on a synthetic ~100 MB multilingual corpus built from the embedded
# UDHR texts (every line made unique by a counter so nothing is deduplicated away), half plain
# .jsonl and half .jsonl.zst. Prints prepare's own summary and one JSON line (median of 3 runs).
# Usage: bench/prepare_throughput.sh [BUILD_DIR] [MB]     (default build/release, 100)
set -euo pipefail
BUILD=${1:-build/release}
MB=${2:-100}
cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/polymoe_prepare_bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
langs=(spa rus arb hin cmn_hans glg bel pes_1 nep yue eng)
per_lang=$(( MB * 1000000 / ${#langs[@]} ))
{
  echo "languages:"
  for l in "${langs[@]}"; do
    python3 - "$l" "$per_lang" "$WORK/$l.jsonl" <<'PY'
import json, sys
code, target, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
docs = [json.loads(l)["text"] for l in open(f"data/corpus/udhr/{code}.jsonl", encoding="utf-8")]
n, i = 0, 0
with open(out, "w", encoding="utf-8") as f:
    while n < target:
        line = json.dumps({"text": f"{docs[i % len(docs)]} {i}"}, ensure_ascii=False) + "\n"
        f.write(line)
        n += len(line.encode())
        i += 1
PY
    if [ $((RANDOM % 2)) -eq 0 ] && command -v zstd >/dev/null; then
      zstd -q --rm "$WORK/$l.jsonl"; src="$l.jsonl.zst"
    else
      src="$l.jsonl"
    fi
    echo "  $l: {stage: \"1\", sources: [$src]}"
  done
} > "$WORK/manifest.yaml"
times=()
for run in 1 2 3; do
  rm -rf "$WORK/out"
  POLYMOE_PROGRESS=0 "$BUILD/polymoe" prepare --manifest "$WORK/manifest.yaml" --out "$WORK/out" \
      --no-dedup 2> "$WORK/log.txt"
  tail -1 "$WORK/log.txt"
  times+=("$(python3 -c "import json; print(json.load(open('$WORK/out/run.json'))['seconds'])" 2>/dev/null || grep -o 'in [0-9.]* s' "$WORK/log.txt" | head -1 | tr -dc '0-9.')")
done
bytes=$(python3 -c "import json; print(json.load(open('$WORK/out/stats.json'))['total']['bytes'])")
tokens=$(python3 -c "import json; print(json.load(open('$WORK/out/stats.json'))['total']['tokens'])")
python3 - "$bytes" "$tokens" "$(nproc)" "${times[@]}" <<'PY'
import json, statistics, subprocess, sys
b, t, threads, ts = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), [float(x) for x in sys.argv[4:]]
med = statistics.median(ts)
commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
print(json.dumps({"bench": "prepare", "commit": commit, "threads": threads, "text_bytes": b,
                  "tokens": t, "seconds_median": round(med, 3), "runs": ts,
                  "mb_per_s": round(b / 1e6 / med, 2), "tokens_per_s": round(t / med)}))
PY
