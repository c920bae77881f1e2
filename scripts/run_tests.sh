#!/usr/bin/env bash
# The README's test command: install dependencies, check formatting, build the `ci` preset
# (release, -Werror) and the `ci-dev` preset (ASan+UBSan, -Werror), and run the unit, golden and
# CLI tests of both with CTest (which prints its summary line), then build the `fuzz` preset
# (clang libFuzzer) and run each fuzz target for a short fixed time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
jobs=$(nproc)
status=0
echo "=== clang-format --dry-run --Werror ==="
git ls-files -- 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp' 'fuzz/*.cpp' 'fuzz/*.h' \
    | xargs -r clang-format --dry-run --Werror || status=1
for preset in ci ci-dev; do
    echo "=== preset $preset ==="
    cmake --preset "$preset" >/dev/null
    cmake --build --preset "$preset" -j "$jobs"
    ctest --preset "$preset" -j "$jobs" || status=1
done
# Fuzz smoke run (issue 12): clang libFuzzer build, each target for a short fixed time.
bash scripts/fuzz_smoke.sh || status=1
exit $status
