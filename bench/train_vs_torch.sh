#!/usr/bin/env bash
# Training throughput, recorded (never asserted): `polymoe bench train` (the trainer's own step:
# forward, backward, clip 1.0, AdamW; objective hf_z, f32 master weights) and the PyTorch
# reference (tools/bench_torch.py train, same shape, losses and optimizer) timed one after the
# other in the same run, then the ratio; each for f32 GEMMs and for bf16 compute (polymoe --compute bf16,
# PyTorch autocast bfloat16). Medians over the steps after the first (which
# allocates); polymoe's line also carries the GEMM peak measured in the same run and the MFU.
# Shapes: tiny (L4 H256 E16 K4 I128, B x S = 8 x 256) and, with --real-dims, OLMoE's real
# dimensions with 2 layers at B x S = 1 x 512 (~17 GB each for weights, gradients and AdamW
# moments: the two sides run one after the other, never together). Appends JSON lines to
# bench/results/<host>.jsonl.
# Usage: bench/train_vs_torch.sh [build dir] [steps] [threads] [--real-dims]
#        TORCH_REAL_STEPS=N: PyTorch steps timed at real dims (default 2; a step takes minutes)
#        COMPUTES="f32 bf16": the compute modes to run (default both)
# PyTorch needs a fast BLAS: python3-torch installed with --no-install-recommends falls back to
# the netlib reference BLAS (~10x slower). This script runs it on OpenBLAS's OpenMP build
# (libopenblas0-openmp, through LD_LIBRARY_PATH; measured faster than the pthread build, whose
# threads compete with PyTorch's OpenMP pool: 8.0 vs 9.9 s per tiny step, idle machine).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/release}/polymoe
steps=${2:-5}
threads=${3:-2}
real=${4:-}
out=bench/results/$(hostname -s).jsonl
torch_real_steps=${TORCH_REAL_STEPS:-2}
openblas=/usr/lib/x86_64-linux-gnu/openblas-openmp
[ -e "$openblas/libblas.so.3" ] || { echo "install libopenblas0-openmp first" >&2; exit 1; }

# run_pair <polymoe bench args...> -- <tools/bench_torch.py train args...>
run_pair() {
    local ours_args=() theirs_args=()
    while [ "$1" != "--" ]; do ours_args+=("$1"); shift; done
    shift
    local torch_steps=$steps
    [ "$1" = "--real" ] && { torch_steps=$torch_real_steps; shift; }
    theirs_args=("$@")
    ours=$("$bin" bench train "${ours_args[@]}" --repeats "$steps" --threads "$threads" \
        --objective hf_z --compute "$compute" | tail -1)
    echo "$ours" | tee -a "$out"
    theirs=$(LD_LIBRARY_PATH=$openblas /usr/bin/python3 tools/bench_torch.py train \
        "${theirs_args[@]}" --steps "$torch_steps" --threads "$threads" --compute "$compute")
    echo "$theirs" | tee -a "$out"
    /usr/bin/python3 -c "import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(json.dumps({'bench':'train_ratio','compute':a['compute'],'L':a['L'],'H':a['H'],'B':a['B'],'S':a['S'],'threads':a['threads'],'polymoe_over_pytorch': a['tokens_per_s']/b['tokens_per_s'],'polymoe_mfu':a['share_of_gemm_ref']}))" "$ours" "$theirs" | tee -a "$out"
}

for compute in ${COMPUTES:-f32 bf16}; do
    run_pair --preset tiny --batch 8 --seq 256 -- --layers 4 --hidden 256 --heads 8 --experts 16 \
        --topk 4 --inter 128 --batch 8 --seq 256
    if [ "$real" = "--real-dims" ]; then
        run_pair --preset olmoe-1b-7b --set num_hidden_layers=2 --batch 1 --seq 512 -- --real \
            --layers 2 --hidden 2048 --heads 16 --experts 64 --topk 8 --inter 1024 --batch 1 --seq 512
    fi
done
