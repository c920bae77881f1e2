#!/usr/bin/env bash
# Fuzz smoke run (issue 12), step of scripts/run_tests.sh: builds the `fuzz` preset (clang++,
# libFuzzer, ASan+UBSan) and runs every target for POLYMOE_FUZZ_SECONDS (default 20) seconds.
# Exits non-zero if a target crashes, leaks, times out or exceeds the memory limits.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
status=0
# The `fuzz` preset (clang, libFuzzer, ASan+UBSan) and each target for
# a fixed time from its committed seeds and regression inputs; new inputs go to a scratch folder,
# crashes to build/fuzz/artifacts/. fuzz/README.md has the longer runs and the commands.
fuzz_seconds=${POLYMOE_FUZZ_SECONDS:-20}
echo "=== fuzz: ${fuzz_seconds} s per target ==="
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs"
mkdir -p build/fuzz/artifacts build/fuzz/logs
for dir in fuzz/corpus/*/; do
    name=$(basename "$dir")
    scratch=$(mktemp -d)
    inputs=("$scratch" "fuzz/corpus/$name")
    if [ -d "fuzz/regressions/$name" ]; then inputs+=("fuzz/regressions/$name"); fi
    log=build/fuzz/logs/$name.log
    if "build/fuzz/fuzz/fuzz_$name" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 \
        -malloc_limit_mb=1024 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="build/fuzz/artifacts/$name-" "${inputs[@]}" >"$log" 2>&1; then
        echo "fuzz_$name: ok, $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" \
            | grep -o '[0-9]*$') executions"
    else
        echo "fuzz_$name: FAILED (crash input under build/fuzz/artifacts/); log tail:"
        tail -n 40 "$log"
        status=1
    fi
    rm -rf "$scratch"
done
exit $status
