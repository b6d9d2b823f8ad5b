#!/usr/bin/env bash
# pytest.sh - a generated pytest suite through `drover pytest` against `pytest -n N`
# (python3-pytest-xdist, --dist load), in the same run.
#
# TESTS tests (default 1000) in FILES files with varied durations (most a few ms, some
# up to a second or two: fixed seed), run with `pytest -n P --dist load` and with
# `drover pytest` twice on WORKERS local workers x SLOTS slots (P their product). Prints
# the wall times and drover's second run over xdist's. The bar: drover's second run <=
# xdist's. Prints figures; asserts nothing.
#
# Thermal management is off (as bench/live.sh's default): on this shared machine the
# workers' measured CPU pressure would cool them to 1 of 2 slots, while xdist runs its 4
# processes regardless; the bar compares the same 4 slots.
#
# Usage: bench/pytest.sh [BUILD_DIR]; env TESTS (1000), FILES (40), WORKERS (2), SLOTS (2),
# SEED (1), BY (auto), BATCH (drover's default: 50 tests while durations are unknown,
# then batches sized by predicted seconds).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
drover=$(cd "${1:-$root/build}" && pwd)/drover # absolute: the suite runs from its own directory
TESTS=${TESTS:-1000}
FILES=${FILES:-40}
WORKERS=${WORKERS:-2}
SLOTS=${SLOTS:-2}
SEED=${SEED:-1}
BY=${BY:-auto}
BATCH=${BATCH:-}
P=$((WORKERS * SLOTS))
py=/usr/bin/python3
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_begin pytest
$py -c 'import xdist' 2>/dev/null || { echo "bench/pytest: python3-pytest-xdist is needed (scripts/setup.sh)" >&2; exit 1; }

mkdir -p "$work/suite"
$py - "$work/suite" "$TESTS" "$FILES" "$SEED" <<'PY'
import random, sys
root, n, files, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
total = 0.0
per = [[] for _ in range(files)]
for i in range(n):
    r = rng.random()
    d = 0.001 + rng.random() * 0.01 if r < 0.9 else 0.05 + rng.random() * 0.3 if r < 0.99 else 1 + rng.random()
    total += d
    per[i % files].append((i, d))
for f, tests in enumerate(per):
    with open(f"{root}/test_gen_{f:03d}.py", "w") as out:
        out.write("import time\n")
        for i, d in tests:
            out.write(f"def test_{i:05d}():\n    time.sleep({d:.4f})\n")
print(f"{total:.1f}")
PY
cd "$work/suite"
total=$(grep -h "time.sleep" test_gen_*.py | awk -F'[()]' '{s += $2} END {printf "%.1f", s}')
echo "bench/pytest: $TESTS tests in $FILES files, $total s of work, parallelism $P (lower bound $(calc "$total / $P") s)"
t0=$(now)
PYTHONDONTWRITEBYTECODE=1 $py -m pytest -q -p no:cacheprovider -n "$P" --dist load >/dev/null 2>&1 || true
t1=$(now)
xdist_s=$(calc "$t1 - $t0")

"$py" -c 'import json, sys; json.dump({"settings": {"prefetch_max": 1024, "unschedulable_grace_s": 5,
    "thermal": {"initial_share": 1, "ramp_s": 0, "cpu_pressure_limit": 1e9, "memory_pressure_limit": 1e9,
                "freq_ratio_limit": 0, "temperature_limit_c": 1e9}}}, open(sys.argv[1], "w"))' "$work/balancer.json"
mkdir -p "$work/unmeasured"
coordinator_opts=(--config "$work/balancer.json")
start_fleet "$work" --no-detect --pressure-root "$work/unmeasured"
export DROVER_URL=$url
for k in 1 2; do
    t0=$(now)
    "$drover" pytest --quiet --by "$BY" ${BATCH:+--batch-size "$BATCH"} >"$work/drover$k.out" 2>&1 || true
    t1=$(now)
    drover_s[$k]=$(calc "$t1 - $t0")
done
tail -n 1 "$work/drover2.out"
printf "pytest -n %d --dist load: %6.2f s\n" "$P" "$xdist_s"
printf "drover pytest (%dx%d, --by %s): run 1 %6.2f s, run 2 %6.2f s\n" "$WORKERS" "$SLOTS" "$BY" "${drover_s[1]}" "${drover_s[2]}"
printf "drover run 2 / xdist: %.3f (bar: <= 1)\n" "$(calc "${drover_s[2]} / $xdist_s")"
echo "moves (both drover runs): $(moves_line)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
