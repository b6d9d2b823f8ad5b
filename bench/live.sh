#!/usr/bin/env bash
# live.sh - the balancer on real processes: makespan against the lower bound, against a
# shared pull-queue, and against the simulator's prediction (issue 10).
#
# For each scenario, on this machine (127.0.0.1):
#   - a real coordinator (SQLite store) and real `drover worker` processes of different
#     speeds run a seeded suite of --tests tests (lognormal durations, sigma 1, scaled so
#     the work bound is about --target seconds), once or twice (the second run is the
#     one measured: the balancer has learned the suite);
#   - in the same run, a shared pull-queue over the same slots and speeds: one loop per
#     slot taking the next test in submission order (what pytest-xdist's `load` and
#     `ctest -j` do) and running the same command;
#   - `drover sim` of the same fleet and suite (--durations with --fleet).
# It prints the makespan, the lower bound max(total work / sum(slots x speed), longest
# test / fastest speed) (with a late worker: the earliest end the fleet present could
# reach), the ratios, sim / live, the moves (/metrics drover_moves_total) and each
# scenario's bar from the issue.
#
# How workers get different speeds: each test is `bench/live_task.sh BASE_S`, which
# sleeps BASE_S x $DROVER_BENCH_SLOWDOWN. Tests inherit the environment of the worker
# that runs them, so a worker started with DROVER_BENCH_SLOWDOWN=3 is a machine three
# times slower; each speed group also gets its own --label (bench-gK), so the groups are
# separate worker classes, as different machines are. Workers announce speed 1: the
# balancer learns the rest.
#
# Scenarios (--scenarios a,b): mixed (2 fast + 2 at a third, 2 slots each; run 2), full8
# (one 8-slot worker; run 2), late (a 2-slot worker, a second joins 3 s after the
# submission; one run), restart (mixed, coordinator restarted between the runs), stragglers
# (mixed; in run 2 the first 3 tests one fast worker starts sleep 10 s more: the bound is
# the one without the hangs).
#
# Thermal management is off by default (--thermal default: the built-in thermal config),
# to measure placement, prefetch and stealing apart from it.
#
# Usage: bench/live.sh [BUILD_DIR] [--scenarios LIST] [--tests N] [--seed S]
#        [--target S] [--thermal off|default] [--no-queue] [--keep DIR]
# About a minute per scenario. Prints figures; asserts nothing (shared, noisy machines).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
if [[ $# -gt 0 && $1 != --* ]]; then
    build=$1
    shift
fi
exec /usr/bin/python3 "$root/bench/live.py" --drover "$build/drover" "$@"
