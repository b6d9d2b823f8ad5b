#!/usr/bin/env bash
# policies.sh - the standard comparison of scheduling policies (issue 4), on the
# simulator (`drover sim`: the real balancer on a virtual clock), each table printed as
# drover sim prints it:
#   1. a fixed seed, a heterogeneous generated fleet of 1,000 workers, 100,000 tests,
#      second_run (the same suite twice; run 2 with learned durations);
#   2. the knapsack test-duration file (../shared/traces) on 8, then 32 identical
#      workers, second_run;
#   3. the Alibaba GPU cluster trace (nodes as workers, pods as tests).
# Every policy runs, plus the baselines greedy (least loaded) and static_split (a
# duration-based split into N shares, as pytest-split and knapsack do). The bar for
# composite on second_run: makespan <= 1.05 x the lower bound, better than every single
# policy and than greedy.
#
# Usage: bench/policies.sh [BUILD_DIR]; env SHARED (default ../shared beside the
# checkout), QUICK=1 for a smaller first comparison (100 workers, 10,000 tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
drover=${1:-$root/build}/drover
shared=${SHARED:-$root/../shared}
traces=$shared/traces
[[ -x "$drover" ]] || { echo "bench/policies: $drover not found: make build first" >&2; exit 1; }
[[ -d "$traces" ]] || { echo "bench/policies: $traces not found (set SHARED)" >&2; exit 1; }
workers=1000
tests=100000
if [[ -n "${QUICK:-}" ]]; then workers=100; tests=10000; fi

section() { printf '\n==== %s\n' "$*"; }

section "generated heterogeneous fleet: $workers workers, $tests tests, second_run, seed 1"
"$drover" sim --scenario second_run --workers "$workers" --tests "$tests" --seed 1 --policies all

for n in 8 32; do
    section "knapsack durations (18F identity-idp rspec) on $n identical workers, second_run"
    "$drover" sim --scenario second_run --durations "$traces/18F-identity-idp-knapsack_rspec_report.json" \
        --workers "$n" --policies all
done

section "Alibaba GPU cluster trace (openb 2023, gpuspec33 pods)"
"$drover" sim --gpu-trace "$traces/alibaba-openb-2023-node_list_all_node.csv" \
    "$traces/alibaba-openb-2023-pod_list_gpuspec33.csv" --policies all
