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
work=$(mktemp -d "${TMPDIR:-/tmp}/drover-bench-ctest.XXXXXX")
pids=()
stop_all() {
    disown -a 2>/dev/null || true
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap stop_all EXIT
trap "exit 143" TERM INT
now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }

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

"$drover" coordinator --listen 127.0.0.1:0 --db "$work/drover.db" --port-file "$work/port" \
    --quiet --worker-token bench --config "$root/bench/e2e-balancer.json" >"$work/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do [[ -s "$work/port" ]] && break; sleep 0.02; done
export DROVER_URL=http://127.0.0.1:$(cat "$work/port")
for w in $(seq 1 "$WORKERS"); do
    "$drover" worker --url "$DROVER_URL" --token bench --name "w$w" --slots "$SLOTS" --no-detect \
        >"$work/worker$w.log" 2>&1 &
    pids+=($!)
done
ok=""
for _ in $(seq 1 500); do
    curl -s "$DROVER_URL/api/v1/status" | grep -q "\"connected\":$WORKERS" && ok=1 && break
    sleep 0.02
done
[[ -n "$ok" ]] || { echo "bench: the workers did not connect:" >&2; cat "$work"/*.log >&2; exit 1; }
for k in 1 2; do
    t0=$(now)
    "$drover" ctest --build-dir "$work/build" --quiet >"$work/drover$k.out" 2>&1 || true
    t1=$(now)
    drover_s[$k]=$(calc "$t1 - $t0")
done
printf "ctest -j%d:        run 1 %6.2f s, run 2 %6.2f s\n" "$P" "${ctest_s[1]}" "${ctest_s[2]}"
printf "drover ctest (%dx%d): run 1 %6.2f s, run 2 %6.2f s\n" "$WORKERS" "$SLOTS" "${drover_s[1]}" "${drover_s[2]}"
printf "drover run 2 / ctest run 2: %.3f (bar: <= 1)\n" "$(calc "${drover_s[2]} / ${ctest_s[2]}")"
echo "moves (both drover runs): $(curl -s "$DROVER_URL/metrics" | awk '/^drover_moves_total / {m = $2} /^drover_moves_dropped_total / {d = $2} END {printf "%d, dropped %d", m, d}')"
echo "load average at the start: $load0; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
