#!/usr/bin/env bash
# ctest.sh - a CTest suite through `drover ctest` against `ctest -jN`, in the same run.
#
# Generates a CMake project with TESTS tests of known, varied durations (most short, a
# few long: durations drawn once with a fixed seed), builds it, then runs it
#   - with `ctest -jP` twice (the second run orders by ctest's own cost data), and
#   - with `drover ctest` twice on WORKERS local workers x SLOTS slots (P = their product;
#     the second run places with the durations drover learned in the first).
# Prints the four wall times and drover's second run over ctest's second. The bar:
# drover's second run <= ctest's second run. Prints figures; asserts nothing.
#
# Usage: bench/ctest.sh [BUILD_DIR]; env TESTS (300), WORKERS (2), SLOTS (2), SEED (1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
drover=${1:-$root/build}/drover
TESTS=${TESTS:-300}
WORKERS=${WORKERS:-2}
SLOTS=${SLOTS:-2}
SEED=${SEED:-1}
P=$((WORKERS * SLOTS))
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_begin ctest

# The project: test i sleeps d_i seconds (90% 0.01-0.2 s, 8% 0.5-2 s, 2% 4-8 s).
mkdir -p "$work/proj"
awk -v n="$TESTS" -v seed="$SEED" 'BEGIN {
    srand(seed)
    print "cmake_minimum_required(VERSION 3.16)\nproject(bench NONE)\nenable_testing()"
    for (i = 1; i <= n; i++) {
        r = rand()
        d = r < 0.90 ? 0.01 + rand() * 0.19 : r < 0.98 ? 0.5 + rand() * 1.5 : 4 + rand() * 4
        total += d
        printf "add_test(NAME t%04d COMMAND sleep %.3f)\n", i, d
    }
    printf "# total %.1f s of sleep\n", total
}' >"$work/proj/CMakeLists.txt"
total=$(tail -n 1 "$work/proj/CMakeLists.txt" | awk '{print $3}')
cmake -S "$work/proj" -B "$work/build" >/dev/null
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench/ctest: $TESTS tests, $total s of work in all, parallelism $P (lower bound $(calc "$total / $P") s)"

for k in 1 2; do
    t0=$(now)
    (cd "$work/build" && ctest -j"$P" -Q) || true
    t1=$(now)
    ctest_s[$k]=$(calc "$t1 - $t0")
done

coordinator_opts=(--config "$root/bench/e2e-balancer.json")
start_fleet "$work" --no-detect
export DROVER_URL=$url
for k in 1 2; do
    t0=$(now)
    "$drover" ctest --build-dir "$work/build" --quiet >"$work/drover$k.out" 2>&1 || true
    t1=$(now)
    drover_s[$k]=$(calc "$t1 - $t0")
done
printf "ctest -j%d:        run 1 %6.2f s, run 2 %6.2f s\n" "$P" "${ctest_s[1]}" "${ctest_s[2]}"
printf "drover ctest (%dx%d): run 1 %6.2f s, run 2 %6.2f s\n" "$WORKERS" "$SLOTS" "${drover_s[1]}" "${drover_s[2]}"
printf "drover run 2 / ctest run 2: %.3f (bar: <= 1)\n" "$(calc "${drover_s[2]} / ${ctest_s[2]}")"
echo "moves (both drover runs): $(moves_line)"
echo "load average at the start: $load0; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
