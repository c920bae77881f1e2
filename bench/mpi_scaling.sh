#!/usr/bin/env bash
# Data-parallel scaling of `polymoe train` (issue 7) on the `tiny` shape (random init; speed does
# not depend on the weights) with one fixed global batch of ROWS x SEQ tokens per step:
#   1 rank x 1 thread, 1 rank x 2 threads, 2 ranks (mpirun) x 1 thread each.
# The 2-rank run splits every step's batch (ROWS/2 rows per rank) and all-reduces the gradient,
# so all three runs compute the same steps. tokens/s per run = global tokens per step / median
# step seconds over steps 2..STEPS (step 1 warms up); each configuration is run REPEATS times
# and the median of the runs is reported. Scaling efficiency of a 2-way configuration =
# (tokens/s) / (2 x tokens/s of 1 rank x 1 thread). Prints one JSON line per configuration.
# Also reported: the CPU seconds (user + sys of the whole process tree, startup included, from
# /usr/bin/time) per run, a load-independent check: ideal scaling keeps it constant. MPI ranks
# yield while they wait (mpi_yield_when_idle) instead of spinning on a shared machine.
# The machine may be shared: numbers are noisy, compare within one invocation.
# Usage: bench/mpi_scaling.sh [BUILD_DIR] [REPEATS] [STEPS] [ROWS] [SEQ]
#        (default build/release 3 6 8 128)
set -euo pipefail
BUILD=${1:-build/release}
REPEATS=${2:-3}
STEPS=${3:-6}
ROWS=${4:-8}
SEQ=${5:-128}
cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/polymoe_mpi_bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
P="$BUILD/polymoe"
export POLYMOE_PROGRESS=0
"$P" init --preset tiny --seed 1 --out "$WORK/tiny" >/dev/null
/usr/bin/python3 - "$WORK/tokens.txt" "$ROWS" "$SEQ" <<'PY'
import random, sys
r = random.Random(7)
with open(sys.argv[1], "w") as f:
    for _ in range(int(sys.argv[2])):
        f.write(" ".join(str(r.randrange(2, 1000)) for _ in range(int(sys.argv[3]))) + "\n")
PY
MPI="mpirun --allow-run-as-root --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 -np 2"
run() {  # name ranks threads
    local out="$WORK/$1"
    local pre=""
    [ "$2" -gt 1 ] && pre="$MPI"
    rm -rf "$out"
    /usr/bin/time -f "%U %S" -o "$WORK/cpu" $pre "$P" train --model "$WORK/tiny" --tokens "$WORK/tokens.txt" --out "$out" \
        --steps "$STEPS" --lr 1e-3 --threads "$3" >/dev/null 2>&1
    /usr/bin/python3 - "$out/log.jsonl" "$WORK/cpu" <<'PY'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1])][1:]
cpu = sum(float(x) for x in open(sys.argv[2]).read().split()[-2:])
print(f'{lines[0]["tokens"] / statistics.median(l["seconds"] for l in lines)}/{cpu}')
PY
}
declare -A RESULT
for cfg in "1x1:1:1" "1x2:1:2" "2x1:2:1"; do
    IFS=: read -r name ranks threads <<<"$cfg"
    vals=()
    for _ in $(seq "$REPEATS"); do vals+=("$(run "$name" "$ranks" "$threads")"); done
    RESULT[$name]="${vals[*]}"
done
/usr/bin/python3 - "${RESULT[1x1]}" "${RESULT[1x2]}" "${RESULT[2x1]}" "$ROWS" "$SEQ" \
    "$STEPS" "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" <<'PY'
import json, statistics, sys
pairs = {k: [x.split("/") for x in v.split()] for k, v in zip(["1x1", "1x2", "2x1"], sys.argv[1:4])}
runs = {k: [float(a) for a, _ in v] for k, v in pairs.items()}
cpu = {k: [float(b) for _, b in v] for k, v in pairs.items()}
base = statistics.median(runs["1x1"])
for k, (ranks, threads) in {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1)}.items():
    med = statistics.median(runs[k])
    line = {"bench": "mpi_scaling", "shape": "tiny", "ranks": ranks, "threads_per_rank": threads,
            "global_batch": [int(sys.argv[4]), int(sys.argv[5])], "steps": int(sys.argv[6]),
            "tokens_per_s_median": round(med, 1),
            "tokens_per_s_runs": [round(x, 1) for x in runs[k]],
            "efficiency_vs_1x1": round(med / (ranks * threads * base), 3),
            "cpu_seconds_per_run_median": round(statistics.median(cpu[k]), 2),
            "commit": sys.argv[7]}
    print(json.dumps(line))
PY
